//! The seed's runbooks run against `goosectl dev` after the quick start's promotion (service-c
//! failed its coverage gate): promotion_failure names what is wrong, compliance_violation
//! takes service-a out of compliance and out of the mesh, writes an audit export that verifies
//! offline and opens the investigation; an operator without the right to demote cannot
//! isolate anything; every run is recorded and the chain still verifies.

use crate::support::{approve_and_watch, goosectl, quick_start_promotion, run, Dev};
use serde_json::Value;

async fn states(dev: &Dev, service: &str) -> Vec<(String, String)> {
    let rows: Value = reqwest::Client::new()
        .get(format!("{}/v1/compliance?service={service}", dev.url))
        .bearer_auth(&dev.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["version"].as_str().unwrap().to_owned(),
                r["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn runbooks_run_against_the_live_system_and_are_recorded() {
    let mut dev = Dev::start().await;
    let (olga, ada) = (dev.user("olga", "operator"), dev.user("ada", "approver"));
    let (_package, promotion) = quick_start_promotion(&dev, &olga).await;
    approve_and_watch(&dev, &ada, &olga, &promotion);
    let work = dev.data.path().join("runbooks");
    // The on-call SRE: operator, approver and auditor (admins manage users, not services).
    let sre = dev.user("sre", "operator");
    for role in ["approver", "auditor"] {
        let (code, out) = run(dev.cli(&dev.admin).args(["user", "grant", "sre", role]));
        assert_eq!(code, 0, "{out}");
    }

    // promotion_failure: dependencies fine, chain fine, the failed check named. Exit 1: a
    // finding needs attention.
    let (code, out) = run(dev
        .cli(&sre)
        .args([
            "runbook",
            "run",
            "promotion_failure",
            "--service",
            "service-c",
            "--promotion",
            &promotion,
            "--out",
        ])
        .arg(&work));
    assert_eq!(code, 1, "{out}");
    for needle in [
        "[ok] verify_dependencies",
        "service-b (data): compliant at 1.0.0",
        "[ok] check_evidence_chain",
        "newest checkpoint: size",
        "evidence record(s) of service-c",
        "[ATTENTION] validate_compliance_state",
        "service-c@1.0.0 failed",
        "test_coverage_threshold: fail — below threshold: line coverage 40.00%",
        "recorded as runbook run",
    ] {
        assert!(out.contains(needle), "{needle:?} in {out}");
    }

    // An operator may record runs but not demote: isolate_service fails, nothing changes.
    let (code, out) = run(dev
        .cli(&olga)
        .args([
            "runbook",
            "run",
            "compliance_violation",
            "--service",
            "service-b",
            "--out",
        ])
        .arg(&work));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("[FAILED] isolate_service"), "{out}");
    assert!(
        out.contains("promotion.approve"),
        "the refusal names the permission: {out}"
    );
    assert_eq!(
        states(&dev, "service-b").await,
        vec![("1.0.0".to_owned(), "compliant".to_owned())]
    );

    // compliance_violation on service-a by someone who may: demoted, a DENY policy, an audit
    // export that verifies offline, an incident.
    let (code, out) = run(dev
        .cli(&sre)
        .args([
            "runbook",
            "run",
            "compliance_violation",
            "--service",
            "service-a",
            "--namespace",
            "shop",
            "--out",
        ])
        .arg(&work));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("service-a@1.0.0 demoted to sandbox (dependants reported: service-b)"),
        "{out}"
    );
    assert_eq!(
        states(&dev, "service-a").await,
        vec![("1.0.0".to_owned(), "sandbox".to_owned())]
    );
    let policy = std::fs::read_to_string(work.join("service-a-isolated.yaml")).unwrap();
    assert!(policy.contains("action: DENY"), "{policy}");
    assert!(policy.contains("namespace: shop"), "{policy}");
    assert!(
        policy.contains("notPrincipals:\n        - cluster.local/ns/monitoring/sa/prometheus"),
        "{policy}"
    );
    let (code, vkey) = run(goosectl()
        .arg("--data-dir")
        .arg(dev.data.path())
        .args(["keys", "show"]));
    assert_eq!(code, 0, "{vkey}");
    let (code, verified) = run(goosectl()
        .args(["audit", "verify", "--log-key", vkey.trim()])
        .arg(work.join("audit")));
    assert_eq!(code, 0, "the export verifies offline: {verified}");
    let incident_id = out
        .split("incident ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_owned();
    let (code, shown) = run(dev.cli(&sre).args(["incident", "show", &incident_id]));
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains("compliance_violation") && shown.contains("service-a"),
        "{shown}"
    );
    assert!(
        shown.contains("isolate_service (ok), collect_evidence (ok)"),
        "{shown}"
    );

    // Every run is on the record, with who ran it and each step's findings.
    let (code, runs) = run(dev.cli(&dev.admin).args(["runbook", "runs"]));
    assert_eq!(code, 0, "{runs}");
    let runs: Value = serde_json::from_str(&runs).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert_eq!(runs[0]["runbook"], "promotion_failure");
    assert_eq!(runs[0]["promotion"], promotion.as_str());
    assert_eq!(runs[1]["run_by"], "olga");
    assert_eq!(runs[1]["steps"][0]["outcome"], "failed");
    assert_eq!(runs[2]["run_by"], "sre");
    assert_eq!(runs[2]["steps"].as_array().unwrap().len(), 3);
    // A forged run is refused: an unknown step is not recorded.
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/runbook-runs", dev.url))
        .bearer_auth(&olga)
        .json(&serde_json::json!({
            "runbook": "compliance_violation",
            "service": "service-a",
            "steps": [{"step": "delete_history", "outcome": "ok", "findings": []}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);

    // All of it is on a chain that verifies offline.
    dev.kill();
    let (code, out) = run(goosectl()
        .arg("--data-dir")
        .arg(dev.data.path())
        .arg("verify"));
    assert_eq!(code, 0, "{out}");
}
