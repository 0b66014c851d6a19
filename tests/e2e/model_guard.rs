//! The model policy's automatic rollback through the real flows (in process): a model served by
//! service-a, two versions in production one after the other; drift measured on the live
//! traffic of version 2 (a `model-metrics` file through the evidence service) rolls it back;
//! version 2, put back, stays (the old reading is from before); then service-a's requests fail,
//! the sla service opens an SLA-breach incident and the registry rolls the model back again,
//! citing the incident. Each rollback is an event by goose-registry on the chain — once,
//! although a second registry replica runs its guard on the same ledger.

use crate::inprocess::start;
use crate::models::{approved, deployed, model_evidence, stream_events, version};
use crate::support::{user_with_token, Http};
use serde_json::{json, Value};
use std::time::Duration;

fn example(file: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../deploy/examples/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Version `v` of churn: staged, its evidence submitted, approved by ann, in production.
async fn to_production(h: &Http, mia: &str, ann: &str, v: u32) {
    deployed(
        h,
        mia,
        json!({"version": v.to_string(), "environment": "staging"}),
    )
    .await;
    model_evidence(h, mia, v, 0.9).await;
    let id = approved(h, mia, v, &[ann]).await;
    deployed(
        h,
        mia,
        json!({"version": v.to_string(), "environment": "production", "approval_id": id}),
    )
    .await;
}

/// Waits until churn's production version is `v`; returns the model.
async fn production_becomes(h: &Http, tok: &str, v: u32) -> Value {
    goose_testkit::eventually(
        Duration::from_secs(60),
        &format!("version {v} in production"),
        || async {
            let m = h.ok("GET", "/v1/models/churn", tok, None).await;
            (m["production"] == v).then_some(m)
        },
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_and_sla_breaches_roll_a_model_back_by_policy() {
    let sys = start().await;
    // A second registry replica on the same ledger: its guard races the first one's.
    let _replica = goose_registry::build(
        &sys.platform,
        goose_registry::RegistryConfig::new(None).unwrap(),
    )
    .await
    .unwrap();
    let (h, root) = (&sys.http, sys.admin.as_str());
    let olga = user_with_token(h, root, "olga", &["operator"]).await;
    let mia = user_with_token(h, root, "mia", &["operator"]).await;
    let ann = user_with_token(h, root, "ann", &["approver"]).await;
    let ana = user_with_token(h, root, "ana", &["analyst"]).await;
    let (s, v) = h
        .raw(
            "POST",
            "/v1/services",
            &olga,
            "application/yaml",
            example("services/service-a.yaml"),
        )
        .await;
    assert!(s == 200 || s == 201, "{v}");
    let (s, v) = h
        .raw(
            "PUT",
            "/v1/slos",
            &olga,
            "application/yaml",
            example("slos/service-a.yaml"),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = h
        .call(
            "POST",
            "/v1/models",
            Some(&mia),
            Some(&json!({"name": "churn", "risk": "low",
                         "tags": {"goose.serving_service": "service-a"}})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    for v in 1..=2 {
        let (s, r) = h
            .call(
                "POST",
                "/v1/models/churn/versions",
                Some(&mia),
                Some(&version(0.9, true)),
            )
            .await;
        assert_eq!(s, 201, "{r}");
        to_production(h, &mia, &ann, v).await;
    }
    production_becomes(h, &mia, 2).await;

    // Drift on live traffic past the policy's bound (psi ≤ 0.25) rolls version 2 back.
    let (s, r) = h
        .raw(
            "POST",
            "/v1/evidence?model=churn&version=2&kind=model-metrics",
            &mia,
            "application/json",
            br#"{"dataset": "live", "metrics": {"psi": 0.41}}"#.to_vec(),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let drift_id = r["id"].as_str().unwrap().to_owned();
    let m = production_becomes(h, &mia, 1).await;
    let last = m["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "rollback", "{last}");
    assert_eq!(last["actor"], "goose-registry", "{last}");
    let reason = last["reason"].as_str().unwrap();
    assert!(
        reason.contains("rollback.on_drift")
            && reason.contains("psi@live = 0.41 of version 2 is outside ≤ 0.25")
            && reason.contains(&drift_id),
        "{reason}"
    );

    // Version 2 put back: the reading is from before, so it stays (the guard looks on every
    // event it follows; the model's own deployment event was one).
    let id = approved(h, &mia, 2, &[&ann]).await;
    deployed(
        h,
        &mia,
        json!({"version": "2", "environment": "production", "approval_id": id}),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let m = h.ok("GET", "/v1/models/churn", &mia, None).await;
    assert_eq!(m["production"], 2, "{m}");

    // service-a's last half hour: one request in five fails; the sla service opens an
    // SLA-breach incident and the registry rolls the model back, citing it.
    crate::support::failing_half_hour(h, &olga, "service-a").await;
    let m = production_becomes(h, &mia, 1).await;
    let incidents = h.ok("GET", "/v1/incidents?status=open", &olga, None).await;
    let incident = incidents
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "sla_breach")
        .unwrap_or_else(|| panic!("{incidents}"));
    let last = m["history"].as_array().unwrap().last().unwrap().clone();
    let reason = last["reason"].as_str().unwrap();
    assert!(
        reason.contains("rollback.on_sla_breach")
            && reason.contains("service-a")
            && reason.contains(incident["id"].as_str().unwrap()),
        "{reason} / {incident}"
    );

    // On the chain: both rollbacks, by goose-registry.
    let rows = stream_events(h, &ana, "model/churn").await;
    let rollbacks: Vec<Value> = rows
        .iter()
        .filter(|r| r["event_type"] == "RolledBack")
        .map(|r| serde_json::from_str(r["payload"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(rollbacks.len(), 2, "{rollbacks:?}");
    assert!(rollbacks
        .iter()
        .all(|r| r["by"] == "goose-registry" && r["from"] == 2 && r["to"] == 1));
}
