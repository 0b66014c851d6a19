//! `goosectl sla` and `goosectl incident` against `goosectl dev`, as an operator and an
//! analyst would use them.

use crate::support::{goosectl, repo_root, run, Dev};

#[tokio::test]
async fn slos_and_incidents_from_the_terminal() {
    let dev = Dev::start().await;
    let root = repo_root();
    let (olga, ana) = (dev.user("olga", "operator"), dev.user("ana", "analyst"));
    let (code, out) = run(dev
        .cli(&olga)
        .args(["service", "apply", "-f"])
        .arg(root.join("deploy/examples/services/service-a.yaml")));
    assert_eq!(code, 0, "{out}");

    let slos = root.join("deploy/examples/slos/service-a.yaml");
    let (code, out) = run(dev.cli(&olga).args(["sla", "apply"]).arg(&slos));
    assert_eq!(code, 0, "{out}");
    let applied: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(applied[0]["name"], "service-a-availability", "{out}");
    assert_eq!(applied[1]["version"], 1, "{out}");
    // An analyst reads but does not define.
    let (code, out) = run(dev.cli(&ana).args(["sla", "apply"]).arg(&slos));
    assert_ne!(code, 0);
    assert!(out.contains("sla.define"), "{out}");
    let (code, out) = run(dev.cli(&ana).args(["sla", "list"]));
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(dev.cli(&ana).args([
        "sla",
        "status",
        "service-a-latency",
        "--at",
        "2026-12-01T12:00:00+01:00",
    ]));
    assert_eq!(code, 0, "{out}");
    let st: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (st["requests"].as_u64(), st["at"].as_i64()),
        (Some(0), Some(1_796_122_800)),
        "{out}"
    );

    let (code, out) = run(dev.cli(&ana).args([
        "incident",
        "report",
        "--type",
        "security_finding",
        "--severity",
        "error",
        "--title",
        "API key in a log line",
        "--service",
        "service-a",
    ]));
    assert_eq!(code, 0, "{out}");
    let id = serde_json::from_str::<serde_json::Value>(&out).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, out) = run(dev.cli(&olga).args(["incident", "ack", &id]));
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(dev.cli(&olga).args(["incident", "ack", &id]));
    assert_ne!(code, 0);
    assert!(out.contains("cannot be acknowledged"), "{out}");
    let (code, out) = run(dev
        .cli(&olga)
        .args(["incident", "resolve", &id, "key rotated"]));
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(dev
        .cli(&ana)
        .args(["incident", "list", "--status", "resolved"]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&id) && out.contains("key rotated"), "{out}");
    let (code, out) = run(dev.cli(&ana).args([
        "incident",
        "report",
        "--type",
        "outage",
        "--severity",
        "error",
        "--title",
        "x",
    ]));
    assert_ne!(code, 0, "{out}");
    report_bundle_verifies_offline_and_tampering_is_caught(&dev, &id);
    analytics_from_the_terminal(&dev, &olga, &ana, &id);
}

/// `goosectl query` and `goosectl kpi` over what this flow recorded.
fn analytics_from_the_terminal(dev: &Dev, olga: &str, ana: &str, incident: &str) {
    let (code, out) = run(dev.cli(ana).args([
        "query",
        "SELECT event_type, count(*) AS n FROM events WHERE aggregate_type = 'slo' GROUP BY event_type",
    ]));
    assert_eq!(code, 0, "{out}");
    // An aligned table: header, the two SLOs applied.
    assert!(out.contains("| event_type | n |"), "{out}");
    assert!(out.contains("| SloApplied | 2 |"), "{out}");
    let (code, out) = run(dev.cli(ana).args([
        "query",
        "--format",
        "csv",
        &format!("SELECT status, time_to_restore_ms IS NOT NULL AS restored FROM incidents WHERE incident_id = '{incident}'"),
    ]));
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, "status,restored\nresolved,true\n");
    let (code, out) = run(dev.cli(ana).arg("kpi"));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("dora (DORA: the four measures)"), "{out}");
    let (code, out) = run(dev
        .cli(ana)
        .args(["kpi", "dora_time_to_restore", "--format", "json"]));
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["rows"][0]["restored"], 1, "{out}");
    // The adapters: `goosectl dev` takes no software adapter for a GPU, and says so.
    let (code, out) = run(dev.cli(ana).args(["hardware"]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("GPU support: built in"), "{out}");
    assert!(out.contains("software adapters not allowed"), "{out}");
    let (code, out) = run(dev.cli(ana).args(["hardware", "--json"]));
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    if v["adapters"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["software"] == true)
    {
        assert!(v["selected"].is_null(), "{out}");
    }
    // Read-only, and only for those allowed.
    let (code, out) = run(dev.cli(ana).args(["query", "DELETE FROM events"]));
    assert_ne!(code, 0);
    assert!(out.contains("only read-only queries are allowed"), "{out}");
    let (code, out) = run(dev.cli(olga).args(["query", "SELECT 1"]));
    assert_ne!(code, 0);
    assert!(out.contains("analytics.query"), "{out}");
}

/// `goosectl report` as an auditor: the bundle checks offline with only the keys; a changed
/// figure, a missing proof, a report re-signed by another key and the wrong log key are each
/// caught.
fn report_bundle_verifies_offline_and_tampering_is_caught(dev: &Dev, incident: &str) {
    let audra = dev.user("audra", "auditor");
    let from = (time::OffsetDateTime::now_utc() - time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (code, out) = run(dev.cli(&audra).arg("report"));
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("say the period"), "{out}");
    let (code, out) = run(dev
        .cli(&audra)
        .args(["report", "--from", &from, "--format", "html"]));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("<h1>Compliance report</h1>") && out.contains(incident),
        "{out}"
    );
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("report");
    let (code, out) = run(dev
        .cli(&audra)
        .args(["report", "--from", &from, "--out"])
        .arg(&bundle));
    assert_eq!(code, 0, "{out}");
    let (_, log_key) = run(goosectl()
        .arg("--data-dir")
        .arg(dev.data.path())
        .args(["keys", "show"]));
    let log_key = log_key.trim().to_owned();
    let signer = std::fs::read_to_string(bundle.join("signer.vkey")).unwrap();
    let signer = signer.trim().to_owned();
    let verify = |dir: &std::path::Path, log_key: &str| {
        run(goosectl().args(["report", "verify"]).arg(dir).args([
            "--log-key",
            log_key,
            "--signer-key",
            &signer,
        ]))
    };
    let (code, out) = verify(&bundle, &log_key);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK: compliance report"), "{out}");
    assert!(out.contains("incidents: 1 opened, 1 resolved"), "{out}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("report.json")).unwrap()).unwrap();
    assert!(
        report["incidents"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == incident),
        "{report}"
    );
    assert!(std::fs::read_to_string(bundle.join("report.html"))
        .unwrap()
        .contains(incident));

    let copy = |name: &str| {
        let to = dir.path().join(name);
        let (code, out) = run(std::process::Command::new("cp")
            .arg("-r")
            .arg(&bundle)
            .arg(&to));
        assert_eq!(code, 0, "{out}");
        to
    };
    // A changed figure in report.json.
    let t = copy("changed");
    let text = std::fs::read_to_string(t.join("report.json")).unwrap();
    let changed = text.replace("\"resolved\":1", "\"resolved\":2");
    assert_ne!(text, changed);
    std::fs::write(t.join("report.json"), changed).unwrap();
    let (code, out) = verify(&t, &log_key);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("report.json is not the signed report"),
        "{out}"
    );
    // A missing proof.
    let t = copy("missing");
    let proof = std::fs::read_dir(t.join("proofs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::remove_file(&proof).unwrap();
    let (code, out) = verify(&t, &log_key);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("FAILED"), "{out}");
    // The figures changed and signed again by someone else's key.
    let t = copy("resigned");
    let mallory = goose_ledger::NoteKey::generate("goosectl-dev").unwrap();
    let payload = changed_payload(&std::fs::read(t.join("report.json")).unwrap());
    let envelope = goose_evidence::dsse::sign(
        "application/vnd.golden-goose.compliance-report+json",
        &payload,
        mallory.key_id(),
        mallory.signing_key(),
    );
    std::fs::write(t.join("report.dsse.json"), envelope.to_string()).unwrap();
    std::fs::write(t.join("report.json"), &payload).unwrap();
    let (code, out) = verify(&t, &log_key);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("signature of report.dsse.json"), "{out}");
    // Another log's key.
    let other = goose_ledger::NoteKey::generate("other.example/log").unwrap();
    let (code, out) = verify(&bundle, &other.vkey());
    assert_ne!(code, 0, "{out}");
}

/// The report with its incident count raised.
fn changed_payload(bytes: &[u8]) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    v["incidents"]["opened"] = serde_json::json!(0);
    serde_json::to_vec(&v).unwrap()
}

/// `goosectl sla rules` for the example SLOs: `promtool check rules` accepts them and
/// `promtool test rules` shows the burn-rate alerts firing on a 10 % error burst and a slow
/// latency bucket, and staying quiet on healthy traffic (Debian's prometheus package).
#[test]
fn generated_rules_pass_promtool_check_and_unit_tests() {
    let root = repo_root();
    let out = crate::support::goosectl()
        .args(["sla", "rules"])
        .arg(root.join("deploy/examples/slos/service-a.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("slo-rules.yaml");
    std::fs::write(&rules, &out.stdout).unwrap();
    let promtool = goose_testkit::promtool().unwrap();
    let check = std::process::Command::new(&promtool)
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stdout).into_owned();
    assert!(
        check.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(said.contains("SUCCESS: 23 rules found"), "{said}");

    // The alerts as generated, to state what promtool must see (labels and annotations).
    let file: serde_json::Value = serde_saphyr::from_slice(&out.stdout).unwrap();
    let alert = |group: usize, name: &str, objective: &str| {
        let r = file["groups"][group]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["alert"] == name && r["labels"]["goose_objective"] == objective)
            .unwrap_or_else(|| panic!("no alert {name} for {objective}"))
            .clone();
        serde_json::json!({"exp_labels": r["labels"], "exp_annotations": r["annotations"]})
    };
    let avail = "99.9 % of requests succeed";
    let p95 = "P95 under 250 ms";
    let tests = serde_json::json!({
        "rule_files": [rules.display().to_string()],
        "evaluation_interval": "1m",
        "tests": [
            {
                // 10 % errors and a tenth of requests slower than 250 ms for two hours.
                "interval": "1m",
                "input_series": [
                    {"series": "http_requests_total{service=\"service-a\",code=\"200\"}", "values": "0+900x120"},
                    {"series": "http_requests_total{service=\"service-a\",code=\"503\"}", "values": "0+100x120"},
                    {"series": "http_request_duration_seconds_bucket{service=\"service-a\",le=\"0.25\"}", "values": "0+900x120"},
                    {"series": "http_request_duration_seconds_bucket{service=\"service-a\",le=\"0.8\"}", "values": "0+1000x120"},
                    {"series": "http_request_duration_seconds_count{service=\"service-a\"}", "values": "0+1000x120"}
                ],
                "alert_rule_test": [
                    {"eval_time": "1h", "alertname": "page-fast", "exp_alerts": [alert(0, "page-fast", avail)]},
                    {"eval_time": "1h", "alertname": "ticket", "exp_alerts": [alert(0, "ticket", avail)]},
                    // 10 % slow burns a 5 % budget 2x: under the 14.4x page.
                    {"eval_time": "1h", "alertname": "service-a-burn-14", "exp_alerts": []}
                ],
                "promql_expr_test": [{
                    "expr": "round(goose_slo:sli_error:ratio_rate1h{goose_slo=\"service-a-availability\"}, 0.001)",
                    "eval_time": "1h",
                    "exp_samples": [{"labels": format!("{{goose_objective=\"{avail}\",goose_slo=\"service-a-availability\",service=\"service-a\"}}"), "value": 0.1}]
                }]
            },
            {
                // Healthy: 0.05 % errors, everything fast — but 80 % slower than 250 ms pages.
                "interval": "1m",
                "input_series": [
                    {"series": "http_requests_total{service=\"service-a\",code=\"200\"}", "values": "0+1999x120"},
                    {"series": "http_requests_total{service=\"service-a\",code=\"500\"}", "values": "0+1x120"},
                    {"series": "http_request_duration_seconds_bucket{service=\"service-a\",le=\"0.25\"}", "values": "0+400x120"},
                    {"series": "http_request_duration_seconds_bucket{service=\"service-a\",le=\"0.8\"}", "values": "0+2000x120"},
                    {"series": "http_request_duration_seconds_count{service=\"service-a\"}", "values": "0+2000x120"}
                ],
                "alert_rule_test": [
                    {"eval_time": "1h", "alertname": "page-fast", "exp_alerts": []},
                    {"eval_time": "1h", "alertname": "service-a-burn-14", "exp_alerts": [alert(1, "service-a-burn-14", p95)]}
                ]
            }
        ]
    });
    let test_file = dir.path().join("slo-rules.test.yaml");
    std::fs::write(&test_file, serde_json::to_string_pretty(&tests).unwrap()).unwrap();
    let t = std::process::Command::new(&promtool)
        .args(["test", "rules"])
        .arg(&test_file)
        .output()
        .unwrap();
    assert!(
        t.status.success(),
        "{}{}",
        String::from_utf8_lossy(&t.stdout),
        String::from_utf8_lossy(&t.stderr)
    );
}
