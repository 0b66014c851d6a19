use super::*;
use goose_domain::evidence::{EvidenceKind as K, Severity, VexStatus};

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
<testsuites><testsuite name="s" tests="5" failures="1" errors="1" skipped="1">
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
fn junit_totals_must_match_the_test_cases() {
    for (doc, needle) in [
        (
            r#"<testsuite name="s" tests="3"><testcase name="a"/></testsuite>"#,
            "testsuite \"s\": tests=\"3\" but it holds 1",
        ),
        (
            r#"<testsuite name="s" failures="0"><testcase name="a"><failure/></testcase></testsuite>"#,
            "failures+errors=\"0\" but it holds 1",
        ),
        (
            r#"<testsuites tests="2"><testsuite name="x"><testcase name="a"/></testsuite></testsuites>"#,
            "tests=\"2\" but it holds 1",
        ),
        (
            r#"<testsuite name="s" tests="-1"></testsuite>"#,
            "tests=\"-1\" is not a non-negative whole number",
        ),
    ] {
        let e = summarize(K::Junit, doc.as_bytes(), &none()).unwrap_err();
        assert!(e.to_string().contains(needle), "{e} / {needle}");
    }
    // Nested suites add up; the fixtures written by pytest pass.
    let ok = r#"<testsuites tests="2" failures="1"><testsuite name="a" tests="1"><testcase name="x"/></testsuite><testsuite name="b" tests="1" failures="1"><testcase name="y"><failure/></testcase></testsuite></testsuites>"#;
    let t = summarize(K::Junit, ok.as_bytes(), &none())
        .unwrap()
        .tests
        .unwrap();
    assert_eq!((t.passed, t.failed), (1, 1));
    for f in ["junit.xml", "passing/junit.xml", "low-coverage/junit.xml"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/evidence")
            .join(f);
        summarize(K::Junit, &std::fs::read(path).unwrap(), &none()).unwrap();
    }
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
}

#[test]
fn coverage_is_counted_from_the_lines_and_forged_summaries_are_refused() {
    let refused = |k, doc: &str, needle: &str| {
        let e = summarize(k, doc.as_bytes(), &none()).unwrap_err();
        assert!(e.to_string().contains(needle), "{e} / {needle}");
    };
    // Summaries with no lines behind them.
    refused(
        K::Cobertura,
        r#"<coverage lines-covered="80" lines-valid="100" line-rate="0.8"></coverage>"#,
        "lines-valid=\"100\" but the file has 0 <line> records",
    );
    refused(
        K::Cobertura,
        r#"<coverage lines-valid="-1" lines-covered="-1" line-rate="1"></coverage>"#,
        "lines-covered=\"-1\" is not a non-negative whole number",
    );
    let one_of_two = r#"<class filename="a.py"><lines><line number="1" hits="1"/><line number="2" hits="0"/></lines></class>"#;
    refused(
        K::Cobertura,
        &format!(r#"<coverage lines-covered="2" lines-valid="2">{one_of_two}</coverage>"#),
        "lines-covered=\"2\" but 1 of its <line> records have hits",
    );
    refused(
        K::Cobertura,
        &format!(r#"<coverage line-rate="1.0">{one_of_two}</coverage>"#),
        "line-rate=\"1\" but its <line> records give 0.5000",
    );
    refused(
        K::Cobertura,
        r#"<coverage><class filename="a"><lines><line number="1" hits="-3"/></lines></class></coverage>"#,
        "hits=\"-3\"",
    );
    // LCOV: LF/LH that the DA lines do not bear out.
    refused(
        K::Lcov,
        "SF:a.rs\nDA:1,0\nDA:2,0\nDA:3,0\nLF:3\nLH:3\nend_of_record\n",
        "SF:a.rs: LH:3 but 0 DA lines with hits",
    );
    refused(
        K::Lcov,
        "SF:a.rs\nDA:1,1\nLF:1\nLH:999\nend_of_record\n",
        "LH:999 but 1 DA lines with hits",
    );
    refused(
        K::Lcov,
        "SF:a.rs\nLF:5\nLH:5\nend_of_record\n",
        "LF:5 but 0 DA lines",
    );
    // A line listed twice (per class and per method, or merged reports) counts once.
    let c = summarize(
        K::Lcov,
        b"SF:a.rs\nDA:1,0\nDA:1,4\nDA:2,0\nend_of_record\n",
        &none(),
    )
    .unwrap()
    .coverage
    .unwrap();
    assert_eq!((c.lines_covered, c.lines_total), (1, 2));
    // The real files of the fixtures (coverage.py) pass as they are.
    for (k, f) in [(K::Cobertura, "cobertura.xml"), (K::Lcov, "coverage.lcov")] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/evidence")
            .join(f);
        summarize(k, &std::fs::read(path).unwrap(), &none()).unwrap();
    }
}

#[test]
fn absurdly_deep_xml_is_refused() {
    let deep = format!(
        "<testsuites>{}{}</testsuites>",
        "<a>".repeat(100_000),
        "</a>".repeat(100_000)
    );
    let e = summarize(K::Junit, deep.as_bytes(), &none()).unwrap_err();
    assert!(e.to_string().contains("nested deeper than 64"), "{e}");
    let deep = format!("<coverage>{}</coverage>", "<a>".repeat(1000));
    let e = summarize(K::Cobertura, deep.as_bytes(), &none()).unwrap_err();
    assert!(e.to_string().contains("nested deeper than 64"), "{e}");
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

#[test]
fn cyclonedx_vulnerabilities_keep_their_ratings_and_components() {
    // As pip-audit writes it (no ratings), and as Trivy/Grype do (ratings, purls).
    let cdx = r#"{"bomFormat":"CycloneDX","specVersion":"1.4","components":[
        {"bom-ref":"r1","name":"requests","version":"2.25.0","type":"library"},
        {"bom-ref":"u1","name":"urllib3","version":"1.26.0","purl":"pkg:pypi/urllib3@1.26.0"}],
      "vulnerabilities":[
        {"id":"PYSEC-2023-74","affects":[{"ref":"r1"}]},
        {"id":"CVE-2023-43804","references":[{"id":"GHSA-v845-jxx5-vc9f","source":{}}],
         "ratings":[{"score":5.9,"method":"CVSSv31"},{"severity":"high","method":"other"}],
         "affects":[{"ref":"u1"}]},
        {"id":"CVE-2020-1","ratings":[{"severity":"unknown"},{"score":3.1}],"affects":[{"ref":"u1"}]}]}"#;
    let s = summarize(K::Cyclonedx, cdx.as_bytes(), &none())
        .unwrap()
        .sbom
        .unwrap();
    let v = &s.vulnerabilities;
    assert_eq!(v.len(), 3);
    assert_eq!(
        (v[0].id.as_str(), v[0].severity, v[0].components.clone()),
        (
            "PYSEC-2023-74",
            Severity::Unrated,
            vec!["requests@2.25.0".to_owned()]
        )
    );
    assert_eq!(v[1].severity, Severity::High, "the highest rating counts");
    assert_eq!(v[1].aliases, vec!["GHSA-v845-jxx5-vc9f"]);
    assert_eq!(v[1].components, vec!["pkg:pypi/urllib3@1.26.0"]);
    assert_eq!(
        v[2].severity,
        Severity::Low,
        "a score without a word is banded"
    );
    let e = summarize(
        K::Cyclonedx,
        br#"{"bomFormat":"CycloneDX","specVersion":"1.4","vulnerabilities":[{"affects":[]}]}"#,
        &none(),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("vulnerabilities[0] has no id"),
        "{e}"
    );
}

#[test]
fn spdx_advisories_are_unrated_vulnerabilities() {
    let spdx = r#"{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","packages":[
        {"SPDXID":"SPDXRef-b","name":"b","versionInfo":"1.0","externalRefs":[
          {"referenceCategory":"PACKAGE-MANAGER","referenceType":"purl","referenceLocator":"pkg:npm/b@1.0"},
          {"referenceCategory":"SECURITY","referenceType":"advisory","referenceLocator":"https://nvd.nist.gov/vuln/detail/CVE-2021-9"}]}]}"#;
    let s = summarize(K::Spdx, spdx.as_bytes(), &none())
        .unwrap()
        .sbom
        .unwrap();
    assert_eq!(s.vulnerabilities[0].id, "CVE-2021-9");
    assert_eq!(s.vulnerabilities[0].severity, Severity::Unrated);
    assert_eq!(s.vulnerabilities[0].components, vec!["pkg:npm/b@1.0"]);
}

#[test]
fn sarif_advisory_results_are_vulnerabilities_not_code_findings() {
    // Trivy's SARIF: the rule id is the CVE, the security-severity its CVSS score.
    let doc = r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"Trivy","rules":[
        {"id":"CVE-2023-32681","properties":{"security-severity":"6.1"}},
        {"id":"CVE-2024-0001","properties":{"security-severity":"9.8"}},
        {"id":"py/sql-injection","properties":{"security-severity":"8.8"}}]}},
      "results":[
        {"ruleId":"CVE-2023-32681","message":{"text":"x"},"locations":[{"physicalLocation":{"artifactLocation":{"uri":"requirements.txt"}}}]},
        {"ruleId":"CVE-2024-0001","message":{"text":"x"},"locations":[{"physicalLocation":{"artifactLocation":{"uri":"a.txt"}}}]},
        {"ruleId":"CVE-2024-0001","message":{"text":"x"},"locations":[{"physicalLocation":{"artifactLocation":{"uri":"b.txt"}}}]},
        {"ruleId":"py/sql-injection","message":{"text":"x"}}]}]}"#;
    let s = summarize(K::Sarif, doc.as_bytes(), &none())
        .unwrap()
        .sast
        .unwrap();
    assert_eq!(
        (s.critical, s.high, s.medium),
        (0, 1, 0),
        "only the code weakness"
    );
    assert_eq!(s.vulnerabilities.len(), 2);
    assert_eq!(s.vulnerabilities[0].severity, Severity::Medium);
    assert_eq!(s.vulnerabilities[1].severity, Severity::Critical);
    assert_eq!(s.vulnerabilities[1].components, vec!["a.txt", "b.txt"]);
}

fn vex(statements: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://example.com/vex/1",
        "author": "security@example.com",
        "timestamp": "2026-12-01T10:00:00Z",
        "version": 1,
        "statements": statements,
    }))
    .unwrap()
}

#[test]
fn openvex_documents_are_read_and_checked() {
    let doc = vex(serde_json::json!([
        {"vulnerability": {"name": "PYSEC-2023-74", "aliases": ["CVE-2023-32681"]},
         "products": [{"@id": "pkg:pypi/requests@2.25.0"}],
         "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"},
        {"vulnerability": "CVE-1", "products": ["pkg:npm/x@1"], "status": "fixed"}
    ]));
    let v = summarize(K::Openvex, &doc, &none()).unwrap().vex.unwrap();
    assert_eq!(v.author, "security@example.com");
    assert_eq!(
        v.statements[0].vulnerability,
        vec!["PYSEC-2023-74", "CVE-2023-32681"]
    );
    assert_eq!(v.statements[0].products, vec!["pkg:pypi/requests@2.25.0"]);
    assert_eq!(v.statements[1].status, VexStatus::Fixed);
    for (statements, needle) in [
        (
            serde_json::json!([{"vulnerability": {"name": "X"}, "status": "not_affected"}]),
            "statements[0].justification: a not_affected statement needs a justification",
        ),
        (
            serde_json::json!([{"vulnerability": {"name": "X"}, "status": "not_affected", "justification": "trust me"}]),
            "\"trust me\" is not one of component_not_present",
        ),
        (
            serde_json::json!([{"vulnerability": {"name": "X"}, "status": "affected"}]),
            "statements[0].action_statement",
        ),
        (
            serde_json::json!([{"vulnerability": {"name": ""}, "status": "fixed"}]),
            "statements[0].vulnerability.name: must not be empty",
        ),
        (
            serde_json::json!([{"vulnerability": {"name": "X"}, "status": "maybe"}]),
            "\"maybe\" is not one of",
        ),
        (serde_json::json!([]), "statements must not be empty"),
    ] {
        let e = summarize(K::Openvex, &vex(statements), &none()).unwrap_err();
        assert!(e.to_string().contains(needle), "{e} / {needle}");
    }
    let cdx = br#"{"bomFormat":"CycloneDX","specVersion":"1.5","components":[]}"#;
    let e = summarize(K::Openvex, cdx, &none()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "declared openvex but the file looks like cyclonedx"
    );
}

#[test]
fn openapi_documents_must_be_openapi_3() {
    let json = r#"{"openapi":"3.1.0","info":{"title":"goose-rbac","version":"0.1.0"},
      "paths":{"/v1/users":{"get":{"responses":{"200":{"description":"ok"}}},"post":{"responses":{"201":{"description":"ok"}}}}}}"#;
    let a = summarize(K::Openapi, json.as_bytes(), &none())
        .unwrap()
        .api
        .unwrap();
    assert_eq!(
        (a.title.as_str(), a.paths, a.operations),
        ("goose-rbac", 1, 2)
    );
    let yaml = "openapi: 3.0.3\ninfo:\n  title: t\n  version: '1'\npaths:\n  /x:\n    get:\n      responses:\n        '200':\n          description: ok\n";
    let a = summarize(K::Openapi, yaml.as_bytes(), &none())
        .unwrap()
        .api
        .unwrap();
    assert_eq!(a.openapi, "3.0.3");
    for (doc, needle) in [
        (
            r#"{"swagger":"2.0","info":{"title":"t","version":"1"},"paths":{}}"#,
            "openapi",
        ),
        (
            r#"{"openapi":"2.0.0","info":{"title":"t","version":"1"}}"#,
            "expected 3.0.x or 3.1.x",
        ),
        (
            r#"{"openapi":"3.1.0","info":{"title":"","version":"1"}}"#,
            "info.title",
        ),
        (
            r#"{"openapi":"3.1.0","info":{"title":"t","version":"1"},"paths":{"x":{}}}"#,
            "does not start with /",
        ),
    ] {
        let e = summarize(K::Openapi, doc.as_bytes(), &none()).unwrap_err();
        assert!(e.to_string().contains(needle), "{e} / {needle}");
    }
}

#[test]
fn sarif_that_would_hide_findings_is_refused_with_the_reason() {
    let run = |body: &str| format!(r#"{{"version":"2.1.0","runs":[{body}]}}"#);
    let cases = [
        (r#"{"version":"2.1.0","runs":[]}"#.to_owned(), "no runs"),
        (
            run(r#"{"tool":{"driver":{"name":"t"}}}"#),
            "no results array",
        ),
        (
            run(
                r#"{"tool":{"driver":{"name":"t"}},"invocations":[{"executionSuccessful":false}],"results":[]}"#,
            ),
            "did not succeed",
        ),
        (
            run(
                r#"{"tool":{"driver":{"name":"t","rules":[{"id":"r","properties":{"security-severity":"9.8"}},{"id":"r","properties":{"security-severity":"0.1"}}]}},"results":[]}"#,
            ),
            "defines rule \"r\" twice",
        ),
        (
            run(
                r#"{"tool":{"driver":{"name":"t","rules":[{"id":"r","properties":{"security-severity":"-1"}}]}},"results":[]}"#,
            ),
            "outside the CVSS range",
        ),
        (
            run(
                r#"{"tool":{"driver":{"name":"t","rules":[{"id":"r","properties":{"security-severity":"high"}}]}},"results":[]}"#,
            ),
            "is not a number",
        ),
        (
            run(
                r#"{"tool":{"driver":{"name":"t"}},"results":[{"ruleId":"x","level":"ERROR","message":{"text":"m"}}]}"#,
            ),
            "not a SARIF level",
        ),
        (
            run(
                r#"{"tool":{"driver":{"name":"t","rules":[{"id":"r","defaultConfiguration":{"level":"critical"}}]}},"results":[]}"#,
            ),
            "not a SARIF level",
        ),
        (
            run(
                r#"{"tool":{"driver":{"name":"t"}},"results":[{"ruleId":"x","kind":"ignored","message":{"text":"m"}}]}"#,
            ),
            "not a SARIF result kind",
        ),
        (
            run(
                r#"{"tool":{"driver":{"name":"t"}},"results":[{"ruleId":"x","kind":"pass","level":"error","message":{"text":"m"}}]}"#,
            ),
            "contradicts itself",
        ),
    ];
    for (doc, words) in cases {
        let e = summarize(K::Sarif, doc.as_bytes(), &none()).unwrap_err();
        assert!(e.to_string().contains(words), "{doc}: {e}");
    }
    // Passes and informational results are not findings; an empty array is a clean run.
    let ok = run(
        r#"{"tool":{"driver":{"name":"t"}},"invocations":[{"executionSuccessful":true}],"results":[
        {"ruleId":"x","kind":"pass","message":{"text":"m"}},
        {"ruleId":"x","kind":"informational","level":"none","message":{"text":"m"}},
        {"ruleId":"x","kind":"fail","level":"error","message":{"text":"m"}}]}"#,
    );
    let s = summarize(K::Sarif, ok.as_bytes(), &none())
        .unwrap()
        .sast
        .unwrap();
    assert_eq!((s.high, s.info), (1, 0));
}
