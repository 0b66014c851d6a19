//! The promotion gates and their checks (seed 001 §3.2, §3.4), as pure functions of the facts
//! the orchestrator gathered from other services' events.
//!
//! Every check yields an [`Evaluation`]: pass, fail, or missing data (which never passes),
//! with a sentence saying why and the facts it read ([`FactRef`]: event id, position and
//! digest), so a decision can be explained and re-checked later from the chain.

use crate::approval::ApprovalStatus;
use crate::compliance::Requirement;
use crate::evidence::{EvidenceKind, EvidenceSummary};
use crate::policy::{GateType, Policy};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The three gates of the seed.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    DependencyCheck,
    EvidenceCollection,
    ApprovalCheck,
}

impl Gate {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::DependencyCheck => "dependency_check",
            Self::EvidenceCollection => "evidence_collection",
            Self::ApprovalCheck => "approval_check",
        }
    }

    pub fn gate_type(self, policy: &Policy) -> GateType {
        match self {
            Self::DependencyCheck => policy.dependency_check,
            Self::EvidenceCollection => policy.evidence_collection,
            Self::ApprovalCheck => policy.approval_check,
        }
    }
}

/// A check run by a gate.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// dependency_check: every dependency has a compliant version.
    DependenciesCompliant,
    /// evidence_collection: the policy's required evidence is there.
    EvidenceComplete,
    AllTestsPassing,
    SastResultsClean,
    /// No known vulnerability at or above the policy's severity, unless VEX answers it.
    NoKnownVulnerabilities,
    TestCoverageThreshold,
    PerformanceBaselineMet,
    /// The chain verifies up to the newest signed checkpoint.
    EvidenceChainValid,
    /// Every cited event is signed by a trusted key; every cited attestation by a trusted
    /// builder.
    SignaturesVerified,
    /// approval_check: the promotion's approval request is approved by others.
    ApprovalGranted,
}

impl Check {
    /// The checks run before a version becomes compliance_ready, in the order they run.
    pub const BLOCKING: [Check; 9] = [
        Self::DependenciesCompliant,
        Self::EvidenceComplete,
        Self::AllTestsPassing,
        Self::SastResultsClean,
        Self::NoKnownVulnerabilities,
        Self::TestCoverageThreshold,
        Self::PerformanceBaselineMet,
        Self::EvidenceChainValid,
        Self::SignaturesVerified,
    ];

    pub const fn gate(self) -> Gate {
        match self {
            Self::DependenciesCompliant => Gate::DependencyCheck,
            Self::ApprovalGranted => Gate::ApprovalCheck,
            _ => Gate::EvidenceCollection,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::DependenciesCompliant => "dependencies_compliant",
            Self::EvidenceComplete => "evidence_complete",
            Self::AllTestsPassing => "all_tests_passing",
            Self::SastResultsClean => "sast_results_clean",
            Self::NoKnownVulnerabilities => "no_known_vulnerabilities",
            Self::TestCoverageThreshold => "test_coverage_threshold",
            Self::PerformanceBaselineMet => "performance_baseline_met",
            Self::EvidenceChainValid => "evidence_chain_valid",
            Self::SignaturesVerified => "signatures_verified",
            Self::ApprovalGranted => "approval_granted",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    /// The data needed is not there (yet). Never passes.
    Missing,
}

/// A fact a decision read: an event on the chain (or the policy itself).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FactRef {
    /// `evidence`, `approval`, `promotion`, `checkpoint`, `policy`, `catalog`.
    pub kind: String,
    /// The event id (or the checkpoint's tree size, the policy's digest).
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub position: Option<u64>,
    /// SHA3-256 of the event's record (hex), as on the chain.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub digest: Option<String>,
    /// What the fact says, briefly.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub note: String,
}

/// One evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Evaluation {
    pub check: Check,
    pub outcome: Outcome,
    pub detail: String,
    pub inputs: Vec<FactRef>,
}

/// A piece of evidence of the version being promoted.
#[derive(Debug, Clone, PartialEq)]
pub struct EvidenceFact {
    pub fact: FactRef,
    pub kind: EvidenceKind,
    pub filename: String,
    pub summary: EvidenceSummary,
}

/// A dependency and the event that made one of its versions compliant, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct DependencyFact {
    pub service: String,
    /// `(version, the Transitioned-to-compliant event)`.
    pub compliant: Option<(String, FactRef)>,
    /// Open critical `sla_breach` incidents of the dependency (the events that opened them),
    /// which block its dependants while the policy says so.
    pub critical_incidents: Vec<FactRef>,
}

/// What the orchestrator's chain verifier has established.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChainFact {
    /// Events verified from position 0 (digests, links, signatures, Merkle nodes).
    pub verified: u64,
    /// The newest signed checkpoint: its size, and a fact naming its root.
    pub newest_checkpoint: Option<(u64, FactRef)>,
    /// The first problem found, if any.
    pub failure: Option<String>,
    /// Whether a log key is configured to check checkpoint signatures with.
    pub configured: bool,
}

/// The signature check of one cited event.
#[derive(Debug, Clone, PartialEq)]
pub struct SignatureFact {
    pub fact: FactRef,
    /// `Ok(key id)` or why it failed.
    pub verdict: Result<String, String>,
}

/// The promotion's approval request as rbac's events tell it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalFact {
    pub id: String,
    /// The newest event of the request.
    pub fact: FactRef,
    pub status: ApprovalStatus,
    pub subject: String,
    pub requester: String,
    pub approvers: Vec<String>,
    pub required: u8,
    pub rejected_by: Option<String>,
    pub rejection_reason: Option<String>,
}

/// Everything the gates read for one version.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TargetFacts {
    pub service: String,
    pub version: String,
    pub dependencies: Vec<DependencyFact>,
    /// The evidence considered (the newest per kind and file name, or the cited refs).
    pub evidence: Vec<EvidenceFact>,
    pub chain: ChainFact,
    /// Whether a keyring of trusted service keys is configured.
    pub keyring_configured: bool,
    pub signatures: Vec<SignatureFact>,
    pub approval: Option<ApprovalFact>,
    /// The policy's digest (a fact every waiver cites).
    pub policy: FactRef,
    /// The organisation's packaging rules (org-config `packaging`), for a package's targets:
    /// they tighten the policy (an SBOM required, signatures checked, a coverage minimum),
    /// never loosen it. `None` for promotions outside a package.
    pub packaging: Option<crate::org_config::Packaging>,
    /// What the `sla` source of `performance_baseline_met` reads: the service's SLOs and
    /// the minute summaries recorded for this version. None when the policy does not ask.
    pub sla: Option<SlaFacts>,
}

/// The service's SLOs and this version's measurements, as of `at`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SlaFacts {
    /// Unix time (seconds) of the evaluation: the staging window ends here.
    pub at: i64,
    /// Each SLO of the service (current version) and the event that applied it.
    pub slos: Vec<(crate::sla::openslo::Slo, FactRef)>,
    /// The version's minute summaries, each with the event that recorded it.
    pub summaries: Vec<(crate::sla::measure::MinuteSummary, FactRef)>,
}

fn eval(
    check: Check,
    outcome: Outcome,
    detail: impl Into<String>,
    inputs: Vec<FactRef>,
) -> Evaluation {
    Evaluation {
        check,
        outcome,
        detail: detail.into(),
        inputs,
    }
}

fn waived(check: Check, facts: &TargetFacts, why: &str) -> Evaluation {
    eval(
        check,
        Outcome::Pass,
        format!("waived: {why}"),
        vec![facts.policy.clone()],
    )
}

impl TargetFacts {
    fn of_kinds(&self, kinds: &[EvidenceKind]) -> Vec<&EvidenceFact> {
        self.evidence
            .iter()
            .filter(|e| kinds.contains(&e.kind))
            .collect()
    }
}

/// Runs one check. `requester` is who asked for the promotion (never an approver of it).
pub fn evaluate(check: Check, policy: &Policy, facts: &TargetFacts, requester: &str) -> Evaluation {
    let gate = check.gate();
    if gate.gate_type(policy) == GateType::Automatic {
        return waived(
            check,
            facts,
            &format!("{} is automatic in the policy", gate.as_str()),
        );
    }
    let subject = &format!("{}@{}", facts.service, facts.version);
    match check {
        Check::DependenciesCompliant => dependencies_compliant(check, policy, facts),
        Check::EvidenceComplete => evidence_complete(check, policy, facts, subject),
        Check::AllTestsPassing => all_tests_passing(check, policy, facts, subject),
        Check::SastResultsClean => sast_results_clean(check, policy, facts, subject),
        Check::NoKnownVulnerabilities => {
            vulnerabilities::no_known_vulnerabilities(check, policy, facts, subject)
        }
        Check::TestCoverageThreshold => test_coverage_threshold(check, policy, facts, subject),
        Check::PerformanceBaselineMet => performance_baseline_met(check, policy, facts, subject),
        Check::EvidenceChainValid => evidence_chain_valid(check, policy, facts),
        Check::SignaturesVerified => signatures_verified(check, policy, facts),
        Check::ApprovalGranted => approval_granted(check, policy, facts, requester),
    }
}

/// The `dependencies_compliant` check.
fn dependencies_compliant(check: Check, policy: &Policy, facts: &TargetFacts) -> Evaluation {
    let breached: Vec<&DependencyFact> = facts
        .dependencies
        .iter()
        .filter(|d| !d.critical_incidents.is_empty())
        .collect();
    if policy.incidents.block_dependants_on_critical_sla_breach && !breached.is_empty() {
        let names: Vec<String> = breached
            .iter()
            .map(|d| {
                let ids: Vec<&str> = d
                    .critical_incidents
                    .iter()
                    .map(|f| f.note.as_str())
                    .collect();
                format!("{} ({})", d.service, ids.join(", "))
            })
            .collect();
        return eval(
            check,
            Outcome::Fail,
            format!(
                "blocked by open critical SLA breaches of dependencies: {} — resolve the incident first",
                names.join("; ")
            ),
            breached
                .iter()
                .flat_map(|d| d.critical_incidents.iter().cloned())
                .collect(),
        );
    }
    let not: Vec<&str> = facts
        .dependencies
        .iter()
        .filter(|d| d.compliant.is_none())
        .map(|d| d.service.as_str())
        .collect();
    let inputs: Vec<FactRef> = facts
        .dependencies
        .iter()
        .filter_map(|d| d.compliant.as_ref().map(|(_, f)| f.clone()))
        .collect();
    if facts.dependencies.is_empty() {
        eval(
            check,
            Outcome::Pass,
            format!("{} has no dependencies", facts.service),
            vec![],
        )
    } else if !not.is_empty() {
        eval(
            check,
            Outcome::Fail,
            format!(
                "not compliant: {} (promote them first, or in the same package)",
                not.join(", ")
            ),
            inputs,
        )
    } else {
        let list: Vec<String> = facts
            .dependencies
            .iter()
            .filter_map(|d| {
                d.compliant
                    .as_ref()
                    .map(|(v, _)| format!("{}@{v}", d.service))
            })
            .collect();
        eval(
            check,
            Outcome::Pass,
            format!("compliant: {}", list.join(", ")),
            inputs,
        )
    }
}

/// The `evidence_complete` check.
fn evidence_complete(
    check: Check,
    policy: &Policy,
    facts: &TargetFacts,
    subject: &str,
) -> Evaluation {
    let mut missing: Vec<&str> = policy
        .required_evidence
        .iter()
        .filter(|g| facts.of_kinds(g.kinds()).is_empty())
        .map(|g| g.as_str())
        .collect();
    let org_sbom = facts.packaging.as_ref().is_some_and(|p| p.require_sbom);
    if org_sbom
        && facts
            .of_kinds(&[EvidenceKind::Cyclonedx, EvidenceKind::Spdx])
            .is_empty()
        && !missing.contains(&"sbom")
    {
        missing.push("sbom (org-config packaging.require_sbom)");
    }
    let inputs: Vec<FactRef> = facts.evidence.iter().map(|e| e.fact.clone()).collect();
    if missing.is_empty() {
        let kinds: Vec<&str> = facts.evidence.iter().map(|e| e.kind.as_str()).collect();
        eval(
            check,
            Outcome::Pass,
            format!(
                "{} pieces of evidence ({})",
                facts.evidence.len(),
                kinds.join(", ")
            ),
            inputs,
        )
    } else {
        eval(
            check,
            Outcome::Missing,
            format!("no {} evidence for {subject}", missing.join(", ")),
            inputs,
        )
    }
}

/// The `all_tests_passing` check.
fn all_tests_passing(
    check: Check,
    policy: &Policy,
    facts: &TargetFacts,
    subject: &str,
) -> Evaluation {
    let Some(rule) = &policy.rules.all_tests_passing else {
        return waived(check, facts, "all_tests_passing is disabled in the policy");
    };
    let junit = facts.of_kinds(&[EvidenceKind::Junit]);
    if junit.is_empty() {
        return eval(
            check,
            Outcome::Missing,
            format!("no test results (junit) for {subject}"),
            vec![],
        );
    }
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for e in &junit {
        if let Some(t) = &e.summary.tests {
            passed += t.passed;
            failed += t.failed;
            skipped += t.skipped;
        }
    }
    let inputs = junit.iter().map(|e| e.fact.clone()).collect();
    let counts = format!("{passed} passed, {failed} failed, {skipped} skipped");
    if failed > 0 {
        eval(check, Outcome::Fail, counts, inputs)
    } else if passed < rule.min_passed {
        eval(
            check,
            Outcome::Fail,
            format!(
                "{counts}; the policy needs at least {} passing",
                rule.min_passed
            ),
            inputs,
        )
    } else {
        eval(check, Outcome::Pass, counts, inputs)
    }
}

/// The `sast_results_clean` check.
fn sast_results_clean(
    check: Check,
    policy: &Policy,
    facts: &TargetFacts,
    subject: &str,
) -> Evaluation {
    let Some(rule) = &policy.rules.sast_results_clean else {
        return waived(check, facts, "sast_results_clean is disabled in the policy");
    };
    let sarif = facts.of_kinds(&[EvidenceKind::Sarif]);
    if sarif.is_empty() {
        return eval(
            check,
            Outcome::Missing,
            format!("no static analysis results (sarif) for {subject}"),
            vec![],
        );
    }
    let (mut critical, mut high, mut medium) = (0, 0, 0);
    for e in &sarif {
        if let Some(s) = &e.summary.sast {
            critical += s.critical;
            high += s.high;
            medium += s.medium;
        }
    }
    let inputs = sarif.iter().map(|e| e.fact.clone()).collect();
    let mut over = Vec::new();
    if critical > rule.max_critical {
        over.push(format!("{critical} critical (max {})", rule.max_critical));
    }
    if high > rule.max_high {
        over.push(format!("{high} high (max {})", rule.max_high));
    }
    if let Some(m) = rule.max_medium {
        if medium > m {
            over.push(format!("{medium} medium (max {m})"));
        }
    }
    if over.is_empty() {
        eval(
            check,
            Outcome::Pass,
            format!("{critical} critical, {high} high, {medium} medium findings"),
            inputs,
        )
    } else {
        eval(
            check,
            Outcome::Fail,
            format!("findings over the policy: {}", over.join(", ")),
            inputs,
        )
    }
}

/// The `test_coverage_threshold` check.
fn test_coverage_threshold(
    check: Check,
    policy: &Policy,
    facts: &TargetFacts,
    subject: &str,
) -> Evaluation {
    // The org's packaging minimum applies on top of the policy's (the higher one binds).
    let org_min = facts
        .packaging
        .as_ref()
        .map(|p| f64::from(p.min_coverage_percent))
        .filter(|m| *m > 0.0);
    let policy_min = policy
        .rules
        .test_coverage_threshold
        .as_ref()
        .map(|r| r.min_line_percent);
    let (min_line_percent, source) = match (policy_min, org_min) {
        (None, None) => {
            return waived(
                check,
                facts,
                "test_coverage_threshold is disabled in the policy",
            )
        }
        (Some(p), Some(o)) if o > p => (o, " (org-config packaging.min_coverage_percent)"),
        (Some(p), _) => (p, ""),
        (None, Some(o)) => (o, " (org-config packaging.min_coverage_percent)"),
    };
    // Several coverage files of one version describe the same code: the newest counts.
    let newest = facts
        .of_kinds(&[EvidenceKind::Lcov, EvidenceKind::Cobertura])
        .into_iter()
        .max_by_key(|e| e.fact.position);
    let Some(e) = newest else {
        return eval(
            check,
            Outcome::Missing,
            format!("no coverage (lcov or cobertura) for {subject}"),
            vec![],
        );
    };
    let Some(c) = &e.summary.coverage else {
        return eval(
            check,
            Outcome::Missing,
            "the coverage file has no line totals",
            vec![e.fact.clone()],
        );
    };
    let text = format!(
        "line coverage {:.2}% ({} of {} lines), threshold {}%{source}",
        c.line_percent, c.lines_covered, c.lines_total, min_line_percent
    );
    if c.line_percent + 1e-9 >= min_line_percent {
        eval(check, Outcome::Pass, text, vec![e.fact.clone()])
    } else {
        eval(
            check,
            Outcome::Fail,
            format!("below threshold: {text}"),
            vec![e.fact.clone()],
        )
    }
}

/// The `performance_baseline_met` check.
fn performance_baseline_met(
    check: Check,
    policy: &Policy,
    facts: &TargetFacts,
    subject: &str,
) -> Evaluation {
    let Some(rule) = &policy.rules.performance_baseline_met else {
        return waived(
            check,
            facts,
            "performance_baseline_met is disabled in the policy",
        );
    };
    if let Some(baseline) = &rule.sla {
        return sla_baseline(check, baseline, facts);
    }
    let predicate_type = rule.predicate_type.as_deref().unwrap_or_default();
    let found: Vec<&EvidenceFact> = facts
        .of_kinds(&[EvidenceKind::InToto])
        .into_iter()
        .filter(|e| {
            e.summary
                .attestation
                .as_ref()
                .is_some_and(|a| a.predicate_type == predicate_type)
        })
        .collect();
    let signed: Vec<&EvidenceFact> = found
        .iter()
        .copied()
        .filter(|e| {
            e.summary
                .attestation
                .as_ref()
                .is_some_and(|a| !a.signed_by.is_empty())
        })
        .collect();
    if let Some(e) = signed.first() {
        let by = e
            .summary
            .attestation
            .as_ref()
            .map(|a| a.signed_by.join(", "))
            .unwrap_or_default();
        eval(
            check,
            Outcome::Pass,
            format!("baseline attestation signed by {by}"),
            vec![e.fact.clone()],
        )
    } else if !found.is_empty() {
        eval(
            check,
            Outcome::Fail,
            format!(
                "the {} attestation is not signed by a trusted key",
                predicate_type
            ),
            found.iter().map(|e| e.fact.clone()).collect(),
        )
    } else {
        eval(
            check,
            Outcome::Missing,
            format!(
                "no in-toto attestation of predicate type {} for {subject}",
                predicate_type
            ),
            vec![],
        )
    }
}

/// `performance_baseline_met` from the sla service's data: every objective of every SLO of
/// the service, judged over the version's own measurements in the staging window.
fn sla_baseline(check: Check, b: &crate::policy::SlaBaseline, facts: &TargetFacts) -> Evaluation {
    use crate::sla::{rules::duration, status};
    let (service, version) = (&facts.service, &facts.version);
    let window = duration(b.window_seconds);
    let Some(sla) = &facts.sla else {
        return eval(check, Outcome::Missing, "no SLA data was gathered", vec![]);
    };
    if sla.slos.is_empty() {
        return eval(
            check,
            Outcome::Missing,
            format!("{service} has no SLO to measure {version} against (PUT /v1/slos)"),
            vec![],
        );
    }
    let from = sla.at - b.window_seconds as i64;
    let in_window: Vec<&(crate::sla::measure::MinuteSummary, FactRef)> = sla
        .summaries
        .iter()
        .filter(|(m, _)| m.minute >= from && m.minute < sla.at)
        .collect();
    let summaries: Vec<_> = in_window.iter().map(|(m, _)| m.clone()).collect();
    let mut inputs: Vec<FactRef> = sla.slos.iter().map(|(_, f)| f.clone()).collect();
    let mut seen = std::collections::BTreeSet::new();
    for (_, f) in &in_window {
        if seen.insert(f.id.clone()) {
            inputs.push(f.clone());
        }
    }
    let mut figures = Vec::new();
    let mut failed = false;
    let mut requests = 0;
    for (slo, _) in &sla.slos {
        // The SLO's objectives over the staging window instead of its own.
        let staged = crate::sla::openslo::Slo {
            window_seconds: b.window_seconds,
            calendar: None,
            alerts: Vec::new(),
            ..slo.clone()
        };
        let st = match status::status(&staged, &summaries, sla.at) {
            Ok(st) => st,
            Err(e) => return eval(check, Outcome::Fail, format!("{}: {e}", slo.name), inputs),
        };
        requests = st.requests;
        for o in &st.objectives {
            let Some(a) = o.attainment else { continue };
            let met = o.met == Some(true);
            failed |= !met;
            figures.push(format!(
                "{} / {}: {:.2} % of {} requests {} target {} %",
                slo.name,
                o.name,
                a * 100.0,
                o.total,
                if met { "meet" } else { "miss" },
                o.target * 100.0
            ));
        }
        if st.approximate_latency {
            figures.push(format!(
                "{}: latencies from histogram buckets (approximate)",
                slo.name
            ));
        }
    }
    if requests < b.min_requests {
        return eval(
            check,
            Outcome::Missing,
            format!(
                "{requests} requests of {service}@{version} measured over the last {window}; at least {} needed (send measurements with \"version\": \"{version}\")",
                b.min_requests
            ),
            inputs,
        );
    }
    eval(
        check,
        if failed { Outcome::Fail } else { Outcome::Pass },
        format!(
            "{service}@{version} over the last {window}: {}",
            figures.join("; ")
        ),
        inputs,
    )
}

/// The words a check's detail starts with when it waits for a checkpoint to cover what it
/// cites; the evidence service signs one on seeing them in a `GateEvaluated` event.
pub const AWAITING_CHECKPOINT: &str = "awaiting a checkpoint";

/// Whether the chain is checked at all for this promotion (the policy asks for it and a log
/// key is configured): then a cited event counts only once a verified checkpoint covers it.
fn chain_checked(policy: &Policy, facts: &TargetFacts) -> bool {
    policy.rules.evidence_chain_valid && facts.chain.configured
}

/// The cited facts no verified checkpoint covers yet: `(covered below, first such fact)`.
fn first_uncovered<'a>(
    facts: &TargetFacts,
    cited: impl IntoIterator<Item = &'a FactRef>,
) -> Option<(u64, &'a FactRef)> {
    let covered = facts
        .chain
        .newest_checkpoint
        .as_ref()
        .map_or(0, |(size, _)| (*size).min(facts.chain.verified));
    cited
        .into_iter()
        .filter(|f| f.position.is_some_and(|p| p >= covered))
        .min_by_key(|f| f.position)
        .map(|f| (covered, f))
}

fn awaiting(check: Check, covered: u64, fact: &FactRef, mut inputs: Vec<FactRef>) -> Evaluation {
    inputs.push(fact.clone());
    eval(
        check,
        Outcome::Missing,
        format!(
            "{AWAITING_CHECKPOINT}: the {} event at position {} is not covered by a verified checkpoint yet (verified up to {covered})",
            fact.kind,
            fact.position.unwrap_or_default()
        ),
        inputs,
    )
}

/// The `evidence_chain_valid` check.
fn evidence_chain_valid(check: Check, policy: &Policy, facts: &TargetFacts) -> Evaluation {
    if !policy.rules.evidence_chain_valid {
        return waived(
            check,
            facts,
            "evidence_chain_valid is disabled in the policy",
        );
    }
    let c = &facts.chain;
    if !c.configured {
        return eval(
            check,
            Outcome::Missing,
            "no log verifier key is configured (--log-vkey), so the chain cannot be checked",
            vec![],
        );
    }
    if let Some(f) = &c.failure {
        return eval(
            check,
            Outcome::Fail,
            format!("the chain does not verify: {f}"),
            vec![],
        );
    }
    match &c.newest_checkpoint {
        None => eval(check, Outcome::Missing, "no signed checkpoint yet", vec![]),
        Some((size, fact)) if c.verified >= *size => {
            // Every fact the gates cite must be under that checkpoint: a fact no checkpoint
            // covers could still be rewritten without a trace.
            let cited = facts.evidence.iter().map(|e| &e.fact).chain(
                facts
                    .dependencies
                    .iter()
                    .filter_map(|d| d.compliant.as_ref().map(|(_, f)| f)),
            );
            if let Some((covered, f)) = first_uncovered(facts, cited) {
                return awaiting(check, covered, f, vec![fact.clone()]);
            }
            eval(
                check,
                Outcome::Pass,
                format!(
                    "{} events verified up to the newest checkpoint (size {size}), covering every cited fact",
                    c.verified
                ),
                vec![fact.clone()],
            )
        }
        Some((size, fact)) => eval(
            check,
            Outcome::Missing,
            format!(
                "verifying the chain: {} of {size} events so far",
                c.verified
            ),
            vec![fact.clone()],
        ),
    }
}

/// The `signatures_verified` check.
fn signatures_verified(check: Check, policy: &Policy, facts: &TargetFacts) -> Evaluation {
    let org_requires = facts
        .packaging
        .as_ref()
        .is_some_and(|p| p.require_signatures);
    if !policy.rules.signatures_verified && !org_requires {
        return waived(
            check,
            facts,
            "signatures_verified is disabled in the policy",
        );
    }
    if !facts.keyring_configured {
        return eval(
            check,
            Outcome::Missing,
            "no keyring of trusted service keys is configured (--keyring)",
            vec![],
        );
    }
    let inputs: Vec<FactRef> = facts.signatures.iter().map(|s| s.fact.clone()).collect();
    let bad: Vec<String> = facts
        .signatures
        .iter()
        .filter_map(|s| {
            s.verdict.as_ref().err().map(|e| {
                format!(
                    "{} at position {}: {e}",
                    s.fact.kind,
                    s.fact.position.unwrap_or_default()
                )
            })
        })
        .collect();
    if !bad.is_empty() {
        return eval(check, Outcome::Fail, bad.join("; "), inputs);
    }
    let unsigned: Vec<&str> = facts
        .of_kinds(&[EvidenceKind::InToto])
        .into_iter()
        .filter(|e| {
            e.summary
                .attestation
                .as_ref()
                .is_none_or(|a| a.signed_by.is_empty())
        })
        .map(|e| e.filename.as_str())
        .collect();
    if !unsigned.is_empty() {
        return eval(
            check,
            Outcome::Fail,
            format!(
                "attestations not signed by a trusted builder: {}",
                unsigned.join(", ")
            ),
            inputs,
        );
    }
    if facts.signatures.is_empty() {
        return eval(check, Outcome::Missing, "no cited events to check", inputs);
    }
    let mut keys: Vec<&str> = facts
        .signatures
        .iter()
        .filter_map(|s| s.verdict.as_deref().ok())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    eval(
        check,
        Outcome::Pass,
        format!(
            "{} cited events signed by {}",
            facts.signatures.len(),
            keys.join(", ")
        ),
        inputs,
    )
}

/// The `approval_granted` check.
fn approval_granted(
    check: Check,
    policy: &Policy,
    facts: &TargetFacts,
    requester: &str,
) -> Evaluation {
    let Some(a) = &facts.approval else {
        return eval(
            check,
            Outcome::Missing,
            "no approval request is linked to this promotion",
            vec![],
        );
    };
    let inputs = vec![a.fact.clone()];
    if a.status == ApprovalStatus::Approved && chain_checked(policy, facts) {
        if let Some((covered, f)) = first_uncovered(facts, [&a.fact]) {
            return awaiting(check, covered, f, Vec::new());
        }
    }
    match a.status {
        ApprovalStatus::Approved => {
            // rbac refuses self-approval; checked again here because the gate, not
            // rbac, is what the promotion's record answers for.
            if a.approvers.iter().any(|x| x == requester) {
                eval(check, Outcome::Fail, format!("segregation of duties: {requester} requested the promotion and is among its approvers"), inputs)
            } else {
                eval(
                    check,
                    Outcome::Pass,
                    format!("approved by {}", a.approvers.join(", ")),
                    inputs,
                )
            }
        }
        ApprovalStatus::Rejected => eval(
            check,
            Outcome::Fail,
            format!(
                "rejected by {}: {}",
                a.rejected_by.as_deref().unwrap_or("?"),
                a.rejection_reason.as_deref().unwrap_or("")
            ),
            inputs,
        ),
        ApprovalStatus::Pending | ApprovalStatus::New => {
            let so_far = if a.approvers.is_empty() {
                String::new()
            } else {
                format!(", granted so far by {}", a.approvers.join(", "))
            };
            eval(
                check,
                Outcome::Missing,
                format!(
                    "awaiting approval {} ({} of {} approvers{so_far})",
                    a.id,
                    a.approvers.len(),
                    a.required
                ),
                inputs,
            )
        }
    }
}
/// The compliance requirements a set of passing checks meets.
pub fn requirements_met(
    passed: impl IntoIterator<Item = Check>,
) -> std::collections::BTreeSet<Requirement> {
    let passed: std::collections::BTreeSet<Check> = passed.into_iter().collect();
    let mut met = std::collections::BTreeSet::new();
    if passed.contains(&Check::AllTestsPassing) {
        met.insert(Requirement::AllTestsPassing);
    }
    if passed.contains(&Check::SastResultsClean) {
        met.insert(Requirement::SastClean);
    }
    if passed.contains(&Check::DependenciesCompliant) {
        met.insert(Requirement::DependenciesCompliant);
    }
    if passed.contains(&Check::ApprovalGranted) {
        met.insert(Requirement::ApprovedPromotion);
    }
    let evidence_checks = [
        Check::EvidenceComplete,
        Check::NoKnownVulnerabilities,
        Check::TestCoverageThreshold,
        Check::PerformanceBaselineMet,
        Check::EvidenceChainValid,
        Check::SignaturesVerified,
    ];
    if evidence_checks.iter().all(|c| passed.contains(c)) {
        met.insert(Requirement::EvidenceCollected);
    }
    met
}

#[cfg(test)]
pub(crate) mod tests;
mod vulnerabilities;
