use super::super::tests::passing;
use super::super::*;
use crate::evidence::{
    EvidenceSummary, SbomSummary, Severity, VexStatement, VexStatus, VexSummary, Vulnerability,
};
use proptest::prelude::*;

fn vuln(id: &str, severity: Severity, component: &str) -> Vulnerability {
    Vulnerability {
        id: id.into(),
        aliases: vec![],
        severity,
        components: vec![component.into()],
    }
}

fn with_sbom(vulns: Vec<Vulnerability>) -> TargetFacts {
    let mut f = passing("service-a");
    let sbom = f
        .evidence
        .iter_mut()
        .find(|e| e.kind == EvidenceKind::Cyclonedx)
        .unwrap();
    sbom.summary.sbom = Some(SbomSummary {
        spec_version: "1.4".into(),
        components: 3,
        vulnerable_components: vulns.len() as u64,
        vulnerabilities: vulns,
    });
    f
}

fn add_vex(f: &mut TargetFacts, position: u64, statements: Vec<VexStatement>) {
    let mut summary = EvidenceSummary::new(EvidenceKind::Openvex);
    summary.vex = Some(VexSummary {
        id: format!("vex{position}"),
        author: "sec".into(),
        statements,
    });
    f.evidence.push(EvidenceFact {
        fact: FactRef {
            kind: "evidence".into(),
            id: format!("vex{position}"),
            position: Some(position),
            digest: None,
            note: String::new(),
        },
        kind: EvidenceKind::Openvex,
        filename: "vex.json".into(),
        summary,
    });
}

fn statement(id: &str, product: Option<&str>, status: VexStatus) -> VexStatement {
    VexStatement {
        vulnerability: vec![id.into()],
        products: product.into_iter().map(str::to_owned).collect(),
        status,
        justification: (status == VexStatus::NotAffected)
            .then(|| "vulnerable_code_not_in_execute_path".to_owned()),
        impact_statement: None,
    }
}

fn run(f: &TargetFacts) -> Evaluation {
    evaluate(
        Check::NoKnownVulnerabilities,
        &Policy::default_policy(),
        f,
        "olga",
    )
}

#[test]
fn an_unrated_or_high_finding_fails_and_is_named() {
    let f = with_sbom(vec![
        vuln("PYSEC-2023-74", Severity::Unrated, "requests@2.25.0"),
        vuln("CVE-2", Severity::High, "pkg:pypi/x@1"),
        vuln("CVE-3", Severity::Medium, "pkg:pypi/y@1"),
    ]);
    let e = run(&f);
    assert_eq!(e.outcome, Outcome::Fail, "{}", e.detail);
    assert_eq!(
        e.detail,
        "known vulnerabilities at or above high (unrated ones count): PYSEC-2023-74 (unrated) in requests@2.25.0; CVE-2 (high) in pkg:pypi/x@1"
    );
}

#[test]
fn not_affected_answers_a_finding_and_is_cited() {
    let mut f = with_sbom(vec![vuln(
        "PYSEC-2023-74",
        Severity::Unrated,
        "requests@2.25.0",
    )]);
    add_vex(
        &mut f,
        20,
        vec![statement(
            "pysec-2023-74",
            Some("pkg:pypi/requests@2.25.0?foo=bar"),
            VexStatus::NotAffected,
        )],
    );
    let e = run(&f);
    assert_eq!(e.outcome, Outcome::Pass, "{}", e.detail);
    assert!(
        e.detail.ends_with(
            "answered by VEX: PYSEC-2023-74 not_affected (vulnerable_code_not_in_execute_path)"
        ),
        "{}",
        e.detail
    );
    assert!(e.inputs.iter().any(|i| i.id == "vex20"), "{:?}", e.inputs);
}

#[test]
fn vex_for_another_product_or_a_newer_affected_statement_does_not_answer() {
    let mut f = with_sbom(vec![vuln("CVE-9", Severity::Critical, "pkg:npm/a@1.0.0")]);
    add_vex(
        &mut f,
        20,
        vec![statement(
            "CVE-9",
            Some("pkg:npm/a@2.0.0"),
            VexStatus::NotAffected,
        )],
    );
    assert_eq!(run(&f).outcome, Outcome::Fail);
    add_vex(&mut f, 21, vec![statement("CVE-9", None, VexStatus::Fixed)]);
    assert_eq!(run(&f).outcome, Outcome::Pass);
    let mut later = statement("CVE-9", None, VexStatus::Affected);
    later.justification = None;
    add_vex(&mut f, 22, vec![later]);
    let e = run(&f);
    assert_eq!(e.outcome, Outcome::Fail, "the newest statement counts");
    assert!(e.detail.contains("[VEX: affected]"), "{}", e.detail);
}

#[test]
fn without_an_sbom_or_sarif_the_data_is_missing() {
    let mut f = passing("service-a");
    f.evidence
        .retain(|e| !matches!(e.kind, EvidenceKind::Cyclonedx | EvidenceKind::Sarif));
    let e = run(&f);
    assert_eq!(e.outcome, Outcome::Missing);
    assert_eq!(
        e.detail,
        "no vulnerability data (an SBOM or a SARIF scan) for service-a@1.0.0"
    );
}

#[test]
fn the_threshold_comes_from_the_policy() {
    let f = with_sbom(vec![vuln("CVE-3", Severity::Medium, "x@1")]);
    assert_eq!(run(&f).outcome, Outcome::Pass);
    let strict = Policy::parse(
        &crate::policy::DEFAULT_POLICY_YAML.replace("fail_at: high", "fail_at: medium"),
    )
    .unwrap();
    let e = evaluate(Check::NoKnownVulnerabilities, &strict, &f, "olga");
    assert_eq!(e.outcome, Outcome::Fail, "{}", e.detail);
    let e = Policy::parse(
        &crate::policy::DEFAULT_POLICY_YAML.replace("fail_at: high", "fail_at: unrated"),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("rules.no_known_vulnerabilities.fail_at: unrated is not a threshold"),
        "{e}"
    );
}

fn severity() -> impl Strategy<Value = Severity> {
    prop_oneof![
        Just(Severity::None),
        Just(Severity::Low),
        Just(Severity::Medium),
        Just(Severity::High),
        Just(Severity::Critical),
        Just(Severity::Unrated),
    ]
}

proptest! {
    /// Whatever is found, a not_affected statement for each finding passes the check, and
    /// the check fails exactly when some unanswered finding is high, critical or unrated.
    #[test]
    fn vex_answers_exactly_what_it_names(
        found in proptest::collection::vec((0u8..20, severity(), 0u8..5), 0..12),
        answered in proptest::collection::btree_set(0u8..20, 0..20),
    ) {
        let vulns: Vec<Vulnerability> = found
            .iter()
            .map(|(id, s, c)| vuln(&format!("CVE-{id}"), *s, &format!("pkg:pypi/p{c}@1")))
            .collect();
        let mut f = with_sbom(vulns.clone());
        add_vex(
            &mut f,
            30,
            answered
                .iter()
                .map(|id| statement(&format!("CVE-{id}"), None, VexStatus::NotAffected))
                .collect(),
        );
        let open = found
            .iter()
            .any(|(id, s, _)| *s >= Severity::High && !answered.contains(id));
        let e = run(&f);
        prop_assert_eq!(e.outcome, if open { Outcome::Fail } else { Outcome::Pass }, "{}", e.detail);
    }
}
