//! `goosectl sla` and `goosectl incident` against `goosectl dev`, as an operator and an
//! analyst would use them.

use crate::support::{repo_root, run, Dev};

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
