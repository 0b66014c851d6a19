//! A critical SLA breach, end to end through the real flows (in process): service-a is
//! promoted to compliant; its requests start failing; the evaluator records the violation and
//! opens a critical `sla_breach` incident; the orchestrator (policy
//! `incidents.demote_on_critical_sla_breach`) demotes service-a to sandbox citing it; a
//! promotion of service-b, which depends on service-a, fails its dependency check naming the
//! incident; once the incident is resolved and service-a promoted again, service-b goes
//! through.

use crate::inprocess::start_with_policy;
use crate::support::{user_with_token, Http};
use serde_json::{json, Value};
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::support::BREACH_POLICY as POLICY;

fn example(file: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../deploy/examples/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Requests a promotion and waits for it to end; returns it.
async fn promote(h: &Http, token: &str, service: &str, version: &str) -> Value {
    let (s, v) = h
        .call(
            "POST",
            "/v1/promotions",
            Some(token),
            Some(&json!({"service": service, "version": version, "reason": "release"})),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    goose_testkit::eventually(Duration::from_secs(60), "the promotion ends", || async {
        let p = h
            .ok("GET", &format!("/v1/promotions/{id}"), token, None)
            .await;
        (!p["outcome"].is_null()).then_some(p)
    })
    .await
    .unwrap()
}

async fn state_of(h: &Http, token: &str, service: &str) -> Value {
    let all = h.ok("GET", "/v1/compliance", token, None).await;
    all.as_array()
        .unwrap()
        .iter()
        .find(|c| c["service"] == service)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_critical_breach_demotes_and_blocks_dependants_until_resolved() {
    let started = OffsetDateTime::now_utc();
    let sys = start_with_policy(Some(POLICY.into())).await;
    let (h, root) = (&sys.http, sys.admin.as_str());
    let olga = user_with_token(h, root, "olga", &["operator"]).await;
    let sam = user_with_token(h, root, "sam", &["operator"]).await;
    for f in ["services/service-a.yaml", "services/service-b.yaml"] {
        let (s, v) = h
            .raw(
                "POST",
                "/v1/services",
                &olga,
                "application/yaml",
                example(f),
            )
            .await;
        assert!(s == 200 || s == 201, "{v}");
    }
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
    let p = promote(h, &olga, "service-a", "1.0.0").await;
    assert_eq!(p["outcome"], "succeeded", "{p}");
    let st = state_of(h, &olga, "service-a").await;
    assert!(st.to_string().contains("compliant"), "{st}");

    // The last half hour of service-a: one request in five fails (200x the budget's rate).
    crate::support::failing_half_hour(h, &olga, "service-a").await;
    let incident =
        goose_testkit::eventually(Duration::from_secs(30), "a critical incident", || async {
            let v = h.ok("GET", "/v1/incidents?status=open", &olga, None).await;
            v.as_array()?
                .iter()
                .find(|i| i["severity"] == "critical" && i["type"] == "sla_breach")
                .cloned()
        })
        .await
        .unwrap();
    let id = incident["id"].as_str().unwrap().to_owned();

    // The orchestrator demotes service-a, citing the incident.
    let demoted =
        goose_testkit::eventually(Duration::from_secs(30), "service-a demoted", || async {
            let st = state_of(h, &olga, "service-a").await;
            (!st.to_string().contains("\"compliant\"")).then_some(st)
        })
        .await
        .unwrap();
    assert!(demoted.to_string().contains("sandbox"), "{demoted}");

    // service-b's promotion fails its dependency check, naming the incident.
    let p = promote(h, &sam, "service-b", "1.0.0").await;
    assert_eq!(p["outcome"], "failed", "{p}");
    let text = p.to_string();
    assert!(
        text.contains("blocked by open critical SLA breaches of dependencies: service-a (incident"),
        "{text}"
    );
    assert!(text.contains(&id), "{text}");
    // The failed promotion is an incident of its own (promotion_failure), citing its end.
    let pid = p["id"].as_str().unwrap().to_owned();
    let failure = goose_testkit::eventually(
        Duration::from_secs(30),
        "a promotion_failure incident",
        || async {
            let v = h.ok("GET", "/v1/incidents?status=open", &olga, None).await;
            v.as_array()?
                .iter()
                .find(|i| {
                    i["type"] == "promotion_failure" && i["cause"] == format!("promotion:{pid}")
                })
                .cloned()
        },
    )
    .await
    .unwrap();
    assert_eq!(failure["severity"], "warning", "{failure}");
    assert_eq!(failure["service"], "service-b", "{failure}");
    assert_eq!(
        failure["caused_by"].as_array().map(Vec::len),
        Some(1),
        "{failure}"
    );

    // An operator approving her own request is refused, and the attempt is an incident
    // (unauthorized_access) — a second attempt recurs on it instead of opening another.
    let raised = h
        .ok(
            "POST",
            "/v1/approvals",
            &sam,
            Some(&json!({"kind": "promotion", "subject": "service-b@9", "impact": "low"})),
        )
        .await;
    let aid = raised["id"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        let (s, v) = h
            .call(
                "POST",
                &format!("/v1/approvals/{aid}/grant"),
                Some(&sam),
                None,
            )
            .await;
        assert_eq!(s, 403, "{v}");
    }
    let refused = goose_testkit::eventually(
        Duration::from_secs(30),
        "an unauthorized_access incident citing both",
        || async {
            let v = h.ok("GET", "/v1/incidents", &olga, None).await;
            v.as_array()?
                .iter()
                .find(|i| {
                    i["type"] == "unauthorized_access"
                        && i["caused_by"].as_array().is_some_and(|c| c.len() == 2)
                })
                .cloned()
        },
    )
    .await
    .unwrap();
    assert!(
        refused["title"]
            .as_str()
            .unwrap()
            .starts_with("sam was refused"),
        "{refused}"
    );
    let all = h.ok("GET", "/v1/incidents", &olga, None).await;
    let unauthorized = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "unauthorized_access")
        .count();
    assert_eq!(unauthorized, 1, "{all}");

    // Resolved, service-a promoted again: service-b goes through.
    h.ok(
        "POST",
        &format!("/v1/incidents/{id}/resolve"),
        &olga,
        Some(&json!({"note": "rolled back the bad config"})),
    )
    .await;
    let p = promote(h, &olga, "service-a", "1.0.1").await;
    assert_eq!(p["outcome"], "succeeded", "{p}");
    let p = promote(h, &sam, "service-b", "1.0.0").await;
    assert_eq!(p["outcome"], "succeeded", "{p}");

    report_of_it_all(h, root, &olga, started, &id).await;
    crate::analytics::kpis_of_it_all(h, root, &id).await;
}

/// The compliance report of the last hour (the measurements reach half an hour back) shows all of it, each figure citing its events,
/// signed and recorded on the chain.
async fn report_of_it_all(h: &Http, root: &str, olga: &str, started: OffsetDateTime, breach: &str) {
    let audra = user_with_token(h, root, "audra", &["auditor"]).await;
    let from = (started - time::Duration::hours(1))
        .format(&Rfc3339)
        .unwrap();
    // An operator may not issue reports; bad periods are refused, saying why.
    let (s, v) = h
        .call(
            "POST",
            "/v1/reports",
            Some(olga),
            Some(&json!({"from": from})),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    for (body, says) in [
        (
            json!({"from": "yesterday"}),
            "from: \"yesterday\" is not an RFC 3339 time",
        ),
        (json!({"from": from, "to": from}), "must be before to"),
        (
            json!({"from": from, "to": "2999-01-01T00:00:00Z"}),
            "is in the future",
        ),
    ] {
        let (s, v) = h
            .call("POST", "/v1/reports", Some(&audra), Some(&body))
            .await;
        assert_eq!(s, 422, "{v}");
        assert!(v["detail"].as_str().unwrap().contains(says), "{v}");
    }
    let (s, signed) = h
        .call(
            "POST",
            "/v1/reports",
            Some(&audra),
            Some(&json!({"from": from})),
        )
        .await;
    assert_eq!(s, 201, "{signed}");
    let r = &signed["report"];
    let p = &r["promotions"];
    assert_eq!(
        (
            p["requested"].as_u64(),
            p["succeeded"].as_u64(),
            p["failed"].as_u64()
        ),
        (Some(4), Some(3), Some(1)),
        "{p}"
    );
    assert_eq!(p["lead_time"]["count"], 4, "{p}");
    let a = &r["approvals"];
    assert_eq!(a["segregation_of_duties_held"], true, "{a}");
    assert_eq!(a["pending"], 1, "{a}");
    assert_eq!(a["refused_attempts"].as_array().unwrap().len(), 2, "{a}");
    assert_eq!(a["refused_attempts"][0]["actor"], "sam", "{a}");
    let i = &r["incidents"];
    assert_eq!(i["by_type"]["sla_breach"], 1, "{i}");
    assert_eq!(i["by_type"]["promotion_failure"], 1, "{i}");
    assert_eq!(i["by_type"]["unauthorized_access"], 1, "{i}");
    assert_eq!(
        (i["resolved"].as_u64(), i["mttr"]["count"].as_u64()),
        (Some(1), Some(1)),
        "{i}"
    );
    let item = i["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == breach)
        .unwrap();
    assert_eq!(item["status"], "resolved", "{item}");
    assert!(
        item["time_to_resolve_seconds"].as_f64().unwrap() > 0.0,
        "{item}"
    );
    assert!(!r["violations"].as_array().unwrap().is_empty(), "{r}");
    let demoted = &r["demotions"][0];
    assert_eq!(
        (&demoted["service"], &demoted["to"]),
        (&json!("service-a"), &json!("sandbox")),
        "{r}"
    );
    assert!(
        demoted["reason"].as_str().unwrap().contains(breach),
        "{demoted}"
    );
    let availability = r["sla"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["slo"] == "service-a-availability")
        .unwrap();
    assert_eq!(availability["requests"], 300, "{availability}");
    assert_eq!(availability["errors"], 60, "{availability}");
    assert_eq!(
        availability["objectives"][0]["met"], false,
        "{availability}"
    );
    assert!(
        availability["violations"].as_u64().unwrap() >= 1,
        "{availability}"
    );
    // Every position an item cites is listed with its event id and digest.
    let listed: std::collections::BTreeSet<u64> = r["cited_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["position"].as_u64().unwrap())
        .collect();
    let text = r.to_string();
    let mut cited = 0;
    for section in ["promotions", "approvals", "incidents"] {
        for x in r[section]["items"].as_array().unwrap() {
            for c in x["cites"].as_array().unwrap() {
                assert!(listed.contains(&c.as_u64().unwrap()), "{c} in {text}");
                cited += 1;
            }
        }
    }
    assert!(cited >= 10, "{text}");

    // Signed by the sla service's key, the digest is the payload's, and it is on the chain.
    let envelope = serde_json::to_vec(&signed["envelope"]).unwrap();
    let vkey = goose_ledger::Vkey::parse(signed["signer_vkey"].as_str().unwrap()).unwrap();
    let mut keys = goose_evidence::dsse::TrustedKeys::new();
    keys.add(vkey.key_id(), vkey.key);
    let verified = goose_evidence::dsse::verify(&envelope, &keys).unwrap();
    assert_eq!(
        verified.payload_type,
        "application/vnd.golden-goose.compliance-report+json"
    );
    use sha3::Digest as _;
    assert_eq!(
        hex::encode(sha3::Sha3_256::digest(&verified.payload)),
        signed["report_digest"].as_str().unwrap()
    );
    let id = signed["id"].as_str().unwrap();
    let again = h
        .ok("GET", &format!("/v1/reports/{id}"), &audra, None)
        .await;
    assert_eq!(again["report_digest"], signed["report_digest"]);
    assert_eq!(again["report_event"], signed["report_event"]);
    let listed = h.ok("GET", "/v1/reports", &audra, None).await;
    assert_eq!(listed[0]["id"], id, "{listed}");
    let (s, v) = h
        .call("GET", &format!("/v1/reports/{id}"), Some(olga), None)
        .await;
    assert_eq!(s, 403, "reports are audit records: {v}");
    let (s, html) = h
        .call("GET", &format!("/v1/reports/{id}/html"), Some(&audra), None)
        .await;
    assert_eq!(s, 200);
    let html = html.as_str().unwrap().to_owned();
    for needle in [
        "<h1>Compliance report</h1>",
        breach,
        "Segregation of duties",
        "NOT held",
    ] {
        let want = needle != "NOT held";
        assert_eq!(html.contains(needle), want, "{needle}: {html}");
    }
}
