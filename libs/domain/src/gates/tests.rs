use super::*;
use crate::evidence::{CoverageSummary, SastSummary, TestSummary};
use crate::policy::Policy;

fn fact(kind: &str, id: &str, position: u64) -> FactRef {
    FactRef {
        kind: kind.into(),
        id: id.into(),
        position: Some(position),
        digest: Some(format!("{position:064x}")),
        note: String::new(),
    }
}

fn evidence(
    kind: EvidenceKind,
    position: u64,
    f: impl FnOnce(&mut EvidenceSummary),
) -> EvidenceFact {
    let mut summary = EvidenceSummary::new(kind);
    f(&mut summary);
    EvidenceFact {
        fact: fact("evidence", &format!("ev{position}"), position),
        kind,
        filename: format!("{kind}"),
        summary,
    }
}

/// Facts under which every check of the shipped policy passes.
pub(crate) fn passing(service: &str) -> TargetFacts {
    let ev = vec![
        evidence(EvidenceKind::Junit, 1, |s| {
            s.tests = Some(TestSummary {
                passed: 10,
                failed: 0,
                skipped: 1,
            })
        }),
        evidence(EvidenceKind::Sarif, 2, |s| {
            s.sast = Some(SastSummary {
                medium: 3,
                ..SastSummary::default()
            })
        }),
        evidence(EvidenceKind::Lcov, 3, |s| {
            s.coverage = Some(CoverageSummary {
                lines_covered: 90,
                lines_total: 100,
                line_percent: 90.0,
            })
        }),
        evidence(EvidenceKind::Cyclonedx, 4, |_| {}),
    ];
    TargetFacts {
        service: service.into(),
        version: "1.0.0".into(),
        dependencies: vec![],
        signatures: ev
            .iter()
            .map(|e| SignatureFact {
                fact: e.fact.clone(),
                verdict: Ok("evidence+1234".into()),
            })
            .collect(),
        evidence: ev,
        chain: ChainFact {
            verified: 10,
            newest_checkpoint: Some((10, fact("checkpoint", "10", 9))),
            failure: None,
            configured: true,
        },
        keyring_configured: true,
        approval: Some(ApprovalFact {
            id: "ap1".into(),
            fact: fact("approval", "ap1-e2", 8),
            status: ApprovalStatus::Approved,
            subject: "promotion:p1".into(),
            requester: "olga".into(),
            approvers: vec!["ada".into()],
            required: 1,
            rejected_by: None,
            rejection_reason: None,
        }),
        policy: FactRef {
            kind: "policy".into(),
            id: "abc".into(),
            position: None,
            digest: None,
            note: String::new(),
        },
        packaging: None,
        sla: None,
    }
}

fn run(check: Check, facts: &TargetFacts) -> Evaluation {
    evaluate(check, &Policy::default_policy(), facts, "olga")
}

#[test]
fn every_check_passes_on_good_facts_and_cites_them() {
    let f = passing("service-a");
    for c in Check::BLOCKING.into_iter().chain([Check::ApprovalGranted]) {
        let e = run(c, &f);
        assert_eq!(e.outcome, Outcome::Pass, "{c}: {}", e.detail);
    }
    let e = run(Check::AllTestsPassing, &f);
    assert_eq!(e.detail, "10 passed, 0 failed, 1 skipped");
    assert_eq!(e.inputs[0].id, "ev1");
    let all: Vec<Check> = Check::BLOCKING
        .into_iter()
        .chain([Check::ApprovalGranted])
        .collect();
    assert_eq!(requirements_met(all).len(), 5);
}

#[test]
fn coverage_under_the_threshold_fails_with_the_numbers() {
    let mut f = passing("service-c");
    f.evidence[2].summary.coverage = Some(CoverageSummary {
        lines_covered: 11,
        lines_total: 15,
        line_percent: 73.33,
    });
    let e = run(Check::TestCoverageThreshold, &f);
    assert_eq!(e.outcome, Outcome::Fail);
    assert_eq!(
        e.detail,
        "below threshold: line coverage 73.33% (11 of 15 lines), threshold 80%"
    );
}

#[test]
fn missing_data_never_passes() {
    let mut f = passing("service-a");
    f.evidence.clear();
    f.signatures.clear();
    for c in [
        Check::EvidenceComplete,
        Check::AllTestsPassing,
        Check::SastResultsClean,
        Check::TestCoverageThreshold,
        Check::SignaturesVerified,
    ] {
        assert_eq!(run(c, &f).outcome, Outcome::Missing, "{c}");
    }
    assert_eq!(
        run(Check::EvidenceComplete, &f).detail,
        "no tests, sast, coverage, sbom evidence for service-a@1.0.0"
    );
    f.approval = None;
    assert_eq!(run(Check::ApprovalGranted, &f).outcome, Outcome::Missing);
    f.chain.newest_checkpoint = None;
    assert_eq!(run(Check::EvidenceChainValid, &f).outcome, Outcome::Missing);
    f.keyring_configured = false;
    f.chain.configured = false;
    assert_eq!(run(Check::SignaturesVerified, &f).outcome, Outcome::Missing);
    assert_eq!(run(Check::EvidenceChainValid, &f).outcome, Outcome::Missing);
}

#[test]
fn failures_are_named() {
    let mut f = passing("service-a");
    f.evidence[0].summary.tests = Some(TestSummary {
        passed: 2,
        failed: 1,
        skipped: 1,
    });
    assert_eq!(run(Check::AllTestsPassing, &f).outcome, Outcome::Fail);
    f.evidence[1].summary.sast = Some(SastSummary {
        high: 2,
        ..SastSummary::default()
    });
    assert_eq!(
        run(Check::SastResultsClean, &f).detail,
        "findings over the policy: 2 high (max 0)"
    );
    f.dependencies = vec![DependencyFact {
        service: "service-z".into(),
        critical_incidents: vec![],
        compliant: None,
    }];
    assert!(run(Check::DependenciesCompliant, &f)
        .detail
        .starts_with("not compliant: service-z"));
    f.chain.failure = Some("position 3: chain link broken".into());
    assert_eq!(run(Check::EvidenceChainValid, &f).outcome, Outcome::Fail);
    f.signatures[0].verdict = Err("signature does not verify".into());
    assert_eq!(run(Check::SignaturesVerified, &f).outcome, Outcome::Fail);
}

#[test]
fn approval_needs_someone_other_than_the_requester() {
    let mut f = passing("service-a");
    if let Some(a) = f.approval.as_mut() {
        a.approvers = vec!["olga".into()];
    }
    let e = run(Check::ApprovalGranted, &f);
    assert_eq!(e.outcome, Outcome::Fail);
    assert!(e.detail.contains("segregation of duties"), "{}", e.detail);
    if let Some(a) = f.approval.as_mut() {
        a.status = ApprovalStatus::Pending;
        a.approvers = vec!["ada".into()];
        a.required = 2;
    }
    assert_eq!(
        run(Check::ApprovalGranted, &f).detail,
        "awaiting approval ap1 (1 of 2 approvers, granted so far by ada)"
    );
    if let Some(a) = f.approval.as_mut() {
        a.status = ApprovalStatus::Rejected;
        a.rejected_by = Some("ada".into());
        a.rejection_reason = Some("no".into());
    }
    assert_eq!(run(Check::ApprovalGranted, &f).outcome, Outcome::Fail);
}

#[test]
fn automatic_gates_and_disabled_rules_are_recorded_as_waivers() {
    let mut p = Policy::default_policy();
    p.approval_check = GateType::Automatic;
    let mut f = passing("service-a");
    f.approval = None;
    let e = evaluate(Check::ApprovalGranted, &p, &f, "olga");
    assert_eq!(e.outcome, Outcome::Pass);
    assert_eq!(
        e.detail,
        "waived: approval_check is automatic in the policy"
    );
    assert_eq!(e.inputs[0].kind, "policy");
    let e = evaluate(Check::PerformanceBaselineMet, &p, &f, "olga");
    assert!(e.detail.starts_with("waived"), "{}", e.detail);
}

/// The gate passed on "4 events verified up to the newest checkpoint (size 4)" while what it
/// cited sat at positions 13–22: a cited fact beyond the verified checkpoint keeps the check
/// missing, saying which event waits for which coverage; once covered, it passes.
#[test]
fn cited_facts_beyond_the_verified_checkpoint_keep_the_chain_check_missing() {
    let mut f = passing("svc");
    f.chain.verified = 4;
    f.chain.newest_checkpoint = Some((4, fact("checkpoint", "4", 3)));
    let e = run(Check::EvidenceChainValid, &f);
    assert_eq!(e.outcome, Outcome::Missing, "{}", e.detail);
    assert!(e.detail.starts_with(AWAITING_CHECKPOINT), "{}", e.detail);
    assert!(e.detail.contains("verified up to 4"), "{}", e.detail);
    // A checkpoint covers them, but the watch has not verified that far: still missing.
    f.chain.newest_checkpoint = Some((30, fact("checkpoint", "30", 29)));
    f.chain.verified = 12;
    assert_eq!(run(Check::EvidenceChainValid, &f).outcome, Outcome::Missing);
    f.chain.verified = 30;
    assert_eq!(run(Check::EvidenceChainValid, &f).outcome, Outcome::Pass);

    // The approval is cited the same way...
    f.approval.as_mut().unwrap().fact = fact("approval", "ap1-e9", 31);
    let e = run(Check::ApprovalGranted, &f);
    assert_eq!(e.outcome, Outcome::Missing, "{}", e.detail);
    assert!(
        e.detail.contains("approval event at position 31"),
        "{}",
        e.detail
    );
    // ...unless the policy does not check the chain at all.
    let mut policy = Policy::default_policy();
    policy.rules.evidence_chain_valid = false;
    assert_eq!(
        evaluate(Check::ApprovalGranted, &policy, &f, "olga").outcome,
        Outcome::Pass
    );
}

/// The org's packaging rules tighten the policy for a package's targets: an SBOM required, a
/// higher coverage minimum, signatures checked even where the policy waives them — each named.
#[test]
fn org_packaging_rules_tighten_the_policy_and_are_named() {
    use crate::org_config::{Packaging, VersionScheme};
    let mut f = passing("svc");
    let rules = Packaging {
        version_scheme: VersionScheme::Semver,
        require_sbom: true,
        require_signatures: true,
        min_coverage_percent: 95,
    };
    f.packaging = Some(rules);
    // passing() has 80% coverage over the policy's 70%: the org's 95% binds.
    let e = run(Check::TestCoverageThreshold, &f);
    assert_eq!(e.outcome, Outcome::Fail, "{}", e.detail);
    assert!(
        e.detail
            .contains("org-config packaging.min_coverage_percent"),
        "{}",
        e.detail
    );
    // No SBOM: evidence incomplete, naming the org rule.
    f.evidence
        .retain(|e| !matches!(e.kind, EvidenceKind::Cyclonedx | EvidenceKind::Spdx));
    let mut policy = Policy::default_policy();
    policy.required_evidence.retain(|g| g.as_str() != "sbom");
    let e = evaluate(Check::EvidenceComplete, &policy, &f, "olga");
    assert_eq!(e.outcome, Outcome::Missing, "{}", e.detail);
    assert!(
        e.detail.contains("org-config packaging.require_sbom"),
        "{}",
        e.detail
    );
    // Signatures: the policy waives them, the org does not.
    policy.rules.signatures_verified = false;
    f.signatures[0].verdict = Err("not signed by a trusted key".into());
    let e = evaluate(Check::SignaturesVerified, &policy, &f, "olga");
    assert_eq!(e.outcome, Outcome::Fail, "{}", e.detail);
    // Outside a package, the policy alone decides.
    f.packaging = None;
    let e = evaluate(Check::SignaturesVerified, &policy, &f, "olga");
    assert_eq!(e.outcome, Outcome::Pass, "{}", e.detail);
}

/// `performance_baseline_met` from the sla service: the version's own measurements over the
/// staging window against every objective of the service's SLOs — pass and fail with the
/// figures, missing without an SLO or with too few requests, citing the SLO and batch events.
#[test]
fn performance_baseline_from_the_versions_measurements() {
    use crate::sla::measure::{summarize, Sample};
    let policy = Policy::parse(
        "gates:\n  dependency_check: {type: blocking}\n  evidence_collection: {type: blocking}\n  approval_check: {type: automatic}\nrules:\n  performance_baseline_met: {source: sla, staging_window: 30m, min_requests: 100}\n",
    )
    .unwrap();
    let slos = crate::sla::openslo::parse(include_str!(
        "../../../../deploy/examples/slos/service-a.yaml"
    ))
    .unwrap();
    let at = 1_796_126_400;
    let batch = |errors_every: u64, latency_ms: f64, n: u64| {
        let samples: Vec<Sample> = (0..n)
            .map(|i| Sample {
                at: time::OffsetDateTime::from_unix_timestamp(at - 1_200 + (i as i64 % 600))
                    .unwrap(),
                latency_ms,
                status: Some(if i % errors_every == 0 { 503 } else { 200 }),
                ok: None,
            })
            .collect();
        summarize("service-a", &samples)
            .unwrap()
            .into_iter()
            .enumerate()
            .map(|(k, m)| (m, fact("measurement", &format!("batch{k}"), 100 + k as u64)))
            .collect::<Vec<_>>()
    };
    let mut f = passing("service-a");
    let with = |summaries, slos: &[crate::sla::openslo::Slo]| SlaFacts {
        at,
        slos: slos
            .iter()
            .enumerate()
            .map(|(k, s)| (s.clone(), fact("slo", &format!("slo{k}"), k as u64 + 1)))
            .collect(),
        summaries,
    };
    // Healthy: 1 error in 10,000, 100 ms.
    f.sla = Some(with(batch(10_000, 100.0, 10_000), &slos));
    let e = evaluate(Check::PerformanceBaselineMet, &policy, &f, "olga");
    assert_eq!(e.outcome, Outcome::Pass, "{}", e.detail);
    assert!(e.detail.starts_with("service-a@1.0.0 over the last 30m: service-a-availability / 99.9 % of requests succeed: 99.99 % of 10000 requests meet target 99.9 %"), "{}", e.detail);
    assert_eq!(e.inputs.iter().filter(|i| i.kind == "slo").count(), 2);
    assert!(e.inputs.iter().any(|i| i.kind == "measurement"));
    // 1 % errors and slow: fails, saying which objective missed by how much.
    f.sla = Some(with(batch(100, 900.0, 10_000), &slos));
    let e = evaluate(Check::PerformanceBaselineMet, &policy, &f, "olga");
    assert_eq!(e.outcome, Outcome::Fail, "{}", e.detail);
    assert!(
        e.detail
            .contains("99.00 % of 10000 requests miss target 99.9 %"),
        "{}",
        e.detail
    );
    assert!(
        e.detail
            .contains("P95 under 250 ms: 0.00 % of 10000 requests miss"),
        "{}",
        e.detail
    );
    // Too few requests, or none in the window: missing, not a verdict.
    f.sla = Some(with(batch(10_000, 100.0, 50), &slos));
    let e = evaluate(Check::PerformanceBaselineMet, &policy, &f, "olga");
    assert_eq!(e.outcome, Outcome::Missing, "{}", e.detail);
    assert!(
        e.detail.starts_with(
            "50 requests of service-a@1.0.0 measured over the last 30m; at least 100 needed"
        ),
        "{}",
        e.detail
    );
    // No SLO at all.
    f.sla = Some(with(batch(10_000, 100.0, 10_000), &[]));
    let e = evaluate(Check::PerformanceBaselineMet, &policy, &f, "olga");
    assert_eq!(e.outcome, Outcome::Missing);
    assert!(e.detail.contains("has no SLO"), "{}", e.detail);
    // A bad staging window is refused with its line.
    let bad = Policy::parse(
        "gates:\n  dependency_check: {type: blocking}\n  evidence_collection: {type: blocking}\n  approval_check: {type: automatic}\nrules:\n  performance_baseline_met:\n    source: sla\n    staging_window: 5s\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        bad.contains("staging_window") && bad.contains("line 8"),
        "{bad}"
    );
}
