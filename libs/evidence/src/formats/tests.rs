use super::*;
use goose_domain::evidence::EvidenceKind as K;

fn none() -> TrustedKeys {
    TrustedKeys::new()
}

#[test]
fn sarif_counts_by_severity() {
    let doc = r#"{"version":"2.1.0","$schema":"https://json.schemastore.org/sarif-2.1.0.json","runs":[{"tool":{"driver":{"name":"clippy","rules":[
        {"id":"r-crit","properties":{"security-severity":"9.8"}},
        {"id":"r-note","defaultConfiguration":{"level":"note"}}]}},
      "results":[
        {"ruleId":"r-crit","message":{"text":"x"}},
        {"ruleId":"r-note","message":{"text":"x"}},
        {"ruleId":"other","level":"error","message":{"text":"x"}},
        {"ruleId":"other","message":{"text":"x"}}]}]}"#;
    let s = summarize(K::Sarif, doc.as_bytes(), &none())
        .unwrap()
        .sast
        .unwrap();
    assert_eq!(
        (s.critical, s.high, s.medium, s.low, s.info),
        (1, 1, 1, 1, 0)
    );
    assert_eq!(s.tools, vec!["clippy"]);
    let e = summarize(K::Sarif, br#"{"version":"2.0.0","runs":[]}"#, &none()).unwrap_err();
    assert!(e.to_string().contains("expected 2.1.0"), "{e}");
}

#[test]
fn junit_counts_outcomes() {
    let xml = r#"<?xml version="1.0"?>
<testsuites><testsuite name="s" tests="4">
  <testcase name="a"/>
  <testcase name="b"><failure message="boom">trace</failure></testcase>
  <testcase name="c"><skipped/></testcase>
  <testcase name="d"><system-out>ok</system-out></testcase>
  <testcase name="e"><error/></testcase>
</testsuite></testsuites>"#;
    let t = summarize(K::Junit, xml.as_bytes(), &none())
        .unwrap()
        .tests
        .unwrap();
    assert_eq!((t.passed, t.failed, t.skipped), (2, 2, 1));
    let e = summarize(K::Junit, b"<html><body/></html>", &none()).unwrap_err();
    assert!(e.to_string().contains("root element <html>"), "{e}");
    let e = summarize(K::Junit, b"<testsuite><testcase></testsuite>", &none()).unwrap_err();
    assert!(matches!(e, FormatError::Malformed { .. }), "{e}");
}

#[test]
fn coverage_formats() {
    let lcov = "TN:\nSF:src/a.rs\nDA:1,1\nDA:2,0\nLF:2\nLH:1\nend_of_record\nSF:src/b.rs\nDA:1,3\nDA:2,3\nend_of_record\n";
    let c = summarize(K::Lcov, lcov.as_bytes(), &none())
        .unwrap()
        .coverage
        .unwrap();
    assert_eq!((c.lines_covered, c.lines_total), (3, 4));
    assert!((c.line_percent - 75.0).abs() < 1e-9);
    assert!(summarize(K::Lcov, b"SF:x\nDA:1,1\n", &none()).is_err());

    let cob = r#"<?xml version="1.0"?><coverage line-rate="0.5" version="1"><packages><package><classes>
      <class name="a"><methods><method name="m"><lines><line number="1" hits="1"/></lines></method></methods>
      <lines><line number="1" hits="1"/><line number="2" hits="0"/></lines></class></classes></package></packages></coverage>"#;
    let c = summarize(K::Cobertura, cob.as_bytes(), &none())
        .unwrap()
        .coverage
        .unwrap();
    assert_eq!((c.lines_covered, c.lines_total), (1, 2));
    assert!((c.line_percent - 50.0).abs() < 1e-9);
    let cob2 = r#"<coverage lines-covered="80" lines-valid="100" line-rate="0.8"></coverage>"#;
    let c = summarize(K::Cobertura, cob2.as_bytes(), &none())
        .unwrap()
        .coverage
        .unwrap();
    assert!((c.line_percent - 80.0).abs() < 1e-9);
}

#[test]
fn sboms() {
    let cdx = r#"{"bomFormat":"CycloneDX","specVersion":"1.5","components":[
        {"bom-ref":"a","name":"a","components":[{"bom-ref":"a1","name":"a1"}]},{"bom-ref":"b","name":"b"}],
        "vulnerabilities":[{"id":"CVE-1","affects":[{"ref":"a1"},{"ref":"zz"}]},{"id":"CVE-2","affects":[{"ref":"a1"}]}]}"#;
    let s = summarize(K::Cyclonedx, cdx.as_bytes(), &none())
        .unwrap()
        .sbom
        .unwrap();
    assert_eq!((s.components, s.vulnerable_components), (3, 1));
    let spdx = r#"{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"x","packages":[
        {"SPDXID":"SPDXRef-a","name":"a"},
        {"SPDXID":"SPDXRef-b","name":"b","externalRefs":[{"referenceCategory":"SECURITY","referenceType":"advisory","referenceLocator":"https://x"}]}]}"#;
    let s = summarize(K::Spdx, spdx.as_bytes(), &none())
        .unwrap()
        .sbom
        .unwrap();
    assert_eq!((s.components, s.vulnerable_components), (2, 1));
}

#[test]
fn a_declared_kind_that_does_not_match_is_named() {
    let cdx = br#"{"bomFormat":"CycloneDX","specVersion":"1.5","components":[]}"#;
    let e = summarize(K::Sarif, cdx, &none()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "declared sarif but the file looks like cyclonedx"
    );
    let e = summarize(K::Junit, b"SF:a\nend_of_record\n", &none()).unwrap_err();
    assert!(
        matches!(
            e,
            FormatError::Mismatch {
                detected: K::Lcov,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn in_toto_statements_need_a_trusted_signature() {
    let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let mut keys = TrustedKeys::new();
    keys.add("ci-builder", key.verifying_key());
    let stmt = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "service-a", "digest": {"sha256": "ab".repeat(32)}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {"buildDefinition": {}}
    });
    let env = crate::dsse::sign(
        crate::dsse::IN_TOTO_PAYLOAD_TYPE,
        &serde_json::to_vec(&stmt).unwrap(),
        "ci-builder",
        &key,
    );
    let a = summarize(K::InToto, &serde_json::to_vec(&env).unwrap(), &keys)
        .unwrap()
        .attestation
        .unwrap();
    assert_eq!(a.predicate_type, "https://slsa.dev/provenance/v1");
    assert_eq!(a.signed_by, vec!["ci-builder"]);
    assert_eq!(a.subjects[0].1, format!("sha256:{}", "ab".repeat(32)));
    let e = summarize(K::InToto, &serde_json::to_vec(&env).unwrap(), &none()).unwrap_err();
    assert!(matches!(e, FormatError::Untrusted { .. }), "{e}");
}
