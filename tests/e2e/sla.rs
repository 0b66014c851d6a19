//! The sla service through its real router (in process, embedded ledger): OpenSLO documents
//! applied and versioned, errors that name document, field and line, request samples
//! recorded as minute summaries (a retried batch not counted twice), and an SLO's status —
//! a fast burn firing, the budget overspent, percentiles — from what was recorded.

use crate::inprocess::start;
use crate::support::{user_with_token, Http};
use serde_json::{json, Value};

const AT: &str = "2026-12-01T12:00:00Z";
const AT_UNIX: i64 = 1_796_126_400;

fn examples(file: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../deploy/examples/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn put_slos(h: &Http, token: &str, text: &str) -> (u16, Value) {
    h.raw(
        "PUT",
        "/v1/slos",
        token,
        "application/yaml",
        text.as_bytes().to_vec(),
    )
    .await
}

fn sample(at: i64, latency_ms: f64, status: u16) -> Value {
    let t = time::OffsetDateTime::from_unix_timestamp(at)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    json!({"at": t, "latency_ms": latency_ms, "status": status})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objectives_measurements_and_burn_rates() {
    let sys = start().await;
    let (h, root) = (&sys.http, sys.admin.as_str());
    let olga = user_with_token(h, root, "olga", &["operator"]).await;
    let audrey = user_with_token(h, root, "audrey", &["auditor"]).await;
    let slos = examples("slos/service-a.yaml");

    // SLOs name catalog services.
    let (s, v) = put_slos(h, &olga, &slos).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(
        v["detail"], "service service-a is not in the catalog; onboard it first",
        "{v}"
    );
    h.raw(
        "POST",
        "/v1/services",
        &olga,
        "application/yaml",
        examples("services/service-a.yaml").into_bytes(),
    )
    .await;

    // Applied, versioned; the same text again changes nothing; a changed target is version 2.
    let (s, v) = put_slos(h, &olga, &slos).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!([
            {"name": "service-a-availability", "version": 1, "changed": true},
            {"name": "service-a-latency", "version": 1, "changed": true}
        ])
    );
    let (_, v) = put_slos(h, &olga, &slos).await;
    assert_eq!(
        v[0],
        json!({"name": "service-a-availability", "version": 1, "changed": false})
    );
    let changed = slos.replacen("target: 0.999", "target: 0.995", 1);
    let (_, v) = put_slos(h, &olga, &changed).await;
    assert_eq!(v[0]["version"], 2, "{v}");
    assert_eq!(v[1]["changed"], false, "{v}");
    let (_, v) = put_slos(h, &olga, &slos).await;
    assert_eq!(v[0]["version"], 3, "back to 99.9 %: {v}");
    let got = h
        .ok("GET", "/v1/slos/service-a-latency", &audrey, None)
        .await;
    assert_eq!(got["objectives"][0]["threshold_ms"], 250.0, "{got}");
    assert_eq!(got["alerts"][0]["factor"], 14.4, "{got}");
    let all = h.ok("GET", "/v1/slos", &audrey, None).await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    let (s, _) = h.call("GET", "/v1/slos/nothing", Some(&audrey), None).await;
    assert_eq!(s, 404);

    // Invalid documents: the document, the line and the field, and nothing recorded.
    let bad = slos.replacen("target: 0.999", "target: 1.5", 1);
    let (s, v) = put_slos(h, &olga, &bad).await;
    assert_eq!(s, 422, "{v}");
    let detail = v["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("document 1 line 29: spec.objectives[0].target: 1.5: must be in (0, 1]"),
        "{detail}"
    );
    let (s, v) = put_slos(h, &olga, "apiVersion: openslo/v1\nkind: SLO\nmetadata: [").await;
    assert_eq!(s, 422, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("line 3"), "{v}");
    let (_, v) = h
        .call(
            "GET",
            "/v1/slos/service-a-availability",
            Some(&audrey),
            None,
        )
        .await;
    assert_eq!(v["version"], 3, "{v}");

    // Measurements: a quiet month (20 requests an hour, 100 ms), then an hour with 10 %
    // errors — 100 times the 0.1 % the target allows.
    // A day per batch (a batch covers at most a day of minutes).
    for day in 0..29 {
        let mut samples = Vec::new();
        for hour in 0..24 {
            let t = AT_UNIX - 30 * 86_400 + (day * 24 + hour) * 3_600;
            if day == 0 && hour == 0 {
                continue;
            }
            samples.extend((0..20).map(|i| sample(t + i * 60, 100.0, 200)));
        }
        let batch =
            json!({"service": "service-a", "batch_id": format!("day-{day}"), "samples": samples});
        h.ok("POST", "/v1/measurements", &olga, Some(&batch)).await;
    }
    let mut samples = Vec::new();
    for i in 0..600 {
        let failed = i % 10 == 0;
        samples.push(sample(
            AT_UNIX - 3_600 + i * 6,
            if failed { 900.0 } else { 120.0 },
            if failed { 503 } else { 200 },
        ));
    }
    let batch = json!({"service": "service-a", "batch_id": "last-hour", "samples": samples});
    let rec = h.ok("POST", "/v1/measurements", &olga, Some(&batch)).await;
    assert_eq!(rec["duplicate"], false, "{rec}");
    assert_eq!(
        (rec["samples"].as_u64(), rec["minutes"].as_u64()),
        (Some(600), Some(60)),
        "{rec}"
    );
    let (s, v) = h
        .call(
            "POST",
            "/v1/measurements",
            Some(&olga),
            Some(&json!({"service": "service-a", "samples": (0..1441).map(|m| sample(AT_UNIX + m * 60, 1.0, 200)).collect::<Vec<_>>()})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("span 1441 minutes"),
        "{v}"
    );
    // The same batch again (a client retrying after a lost answer): recognised.
    let again = h.ok("POST", "/v1/measurements", &olga, Some(&batch)).await;
    assert_eq!(again["duplicate"], true, "{again}");

    let st = h
        .ok(
            "GET",
            &format!("/v1/slos/service-a-availability/status?at={AT}"),
            &audrey,
            None,
        )
        .await;
    let o = &st["objectives"][0];
    assert_eq!(
        st["requests"],
        29 * 24 * 20 - 20 + 600,
        "counted once: {st}"
    );
    assert_eq!(st["errors"], 60, "{st}");
    let fast = &o["alerts"][0];
    assert_eq!(fast["name"], "page-fast");
    assert_eq!(fast["firing"], true, "{fast}");
    let burn = fast["long_burn_rate"].as_f64().unwrap();
    assert!((burn - 100.0).abs() < 1e-6, "{fast}");
    assert!(o["budget_remaining"].as_f64().unwrap() < 0.0, "{o}");
    assert_eq!(o["met"], false, "{o}");
    // Two hours later the short window is quiet: the fast alert stops, the slow ones remain.
    let later = h
        .ok(
            "GET",
            "/v1/slos/service-a-availability/status?at=2026-12-01T14:00:00Z",
            &audrey,
            None,
        )
        .await;
    assert_eq!(
        later["objectives"][0]["alerts"][0]["firing"], false,
        "{later}"
    );
    // Latency over the latency SLO's 7 days: P99 is a failed request's 900 ms.
    let lat = h
        .ok(
            "GET",
            &format!("/v1/slos/service-a-latency/status?at={AT}"),
            &audrey,
            None,
        )
        .await;
    let p99 = lat["p99_ms"].as_f64().unwrap();
    assert!((p99 - 900.0).abs() < 1.0, "{lat}");
    assert_eq!(lat["objectives"][0]["met"], true, "{lat}");
    assert_eq!(
        lat["objectives"][1]["met"], false,
        "1.7 % over 800 ms: {lat}"
    );

    // Bad samples: clear errors, nothing recorded.
    let (s, v) = h
        .call(
            "POST",
            "/v1/measurements",
            Some(&olga),
            Some(&json!({"service": "service-a", "samples": [sample(AT_UNIX, -1.0, 200)]})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("samples[0].latency_ms"),
        "{v}"
    );
    let (s, v) = h
        .call(
            "POST",
            "/v1/measurements",
            Some(&olga),
            Some(&json!({"service": "service-a", "samples": [], "bogus": 1})),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = h
        .call(
            "POST",
            "/v1/measurements",
            Some(&olga),
            Some(&json!({"service": "service-z", "samples": [sample(AT_UNIX, 1.0, 200)]})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    let (s, v) = h
        .call(
            "POST",
            "/v1/measurements",
            Some(&olga),
            Some(&json!({"service": "service-a", "batch_id": "no spaces", "samples": [sample(AT_UNIX, 1.0, 200)]})),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let st2 = h
        .ok(
            "GET",
            &format!("/v1/slos/service-a-availability/status?at={AT}"),
            &audrey,
            None,
        )
        .await;
    assert_eq!(st2["requests"], st["requests"]);
    // A calendar day (UTC) of the same service: only the day so far counts — the last hour.
    let today = "apiVersion: openslo/v1
kind: SLO
metadata: {name: service-a-today}
spec:
  service: service-a
  budgetingMethod: Occurrences
  timeWindow: [{duration: 1d, isRolling: false, calendar: {startTime: \"2026-01-01 00:00:00\", timeZone: UTC}}]
  indicator:
    metadata: {name: a-requests}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: golden-goose, spec: {signal: requests}}}
        total: {metricSource: {type: golden-goose, spec: {signal: requests}}}
  objectives: [{displayName: availability, target: 0.99}]
";
    let (s, v) = put_slos(h, &olga, today).await;
    assert_eq!(s, 200, "{v}");
    let day = h
        .ok(
            "GET",
            &format!("/v1/slos/service-a-today/status?at={AT}"),
            &audrey,
            None,
        )
        .await;
    assert_eq!(day["window_start"], AT_UNIX - 12 * 3_600, "{day}");
    assert_eq!(
        (day["requests"].as_u64(), day["errors"].as_u64()),
        (Some(600), Some(60)),
        "{day}"
    );
    let (s, v) = h
        .call(
            "GET",
            "/v1/slos/service-a-availability/status?at=yesterday",
            Some(&audrey),
            None,
        )
        .await;
    assert_eq!(s, 400, "{v}");
}

/// A violation at the current moment: the evaluator records the alerts that began firing and
/// opens one `sla_breach` incident citing them; people take it through its lifecycle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_violation_opens_an_incident_that_people_resolve() {
    let sys = start().await;
    let (h, root) = (&sys.http, sys.admin.as_str());
    let olga = user_with_token(h, root, "olga", &["operator"]).await;
    let ana = user_with_token(h, root, "ana", &["analyst"]).await;
    let audrey = user_with_token(h, root, "audrey", &["auditor"]).await;
    h.raw(
        "POST",
        "/v1/services",
        &olga,
        "application/yaml",
        examples("services/service-a.yaml").into_bytes(),
    )
    .await;
    let (s, v) = put_slos(h, &olga, &examples("slos/service-a.yaml")).await;
    assert_eq!(s, 200, "{v}");

    // The last half hour: one request in five fails.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let samples: Vec<Value> = (0..300)
        .map(|i| {
            sample(
                now - 1_800 + i * 6,
                50.0,
                if i % 5 == 0 { 500 } else { 200 },
            )
        })
        .collect();
    h.ok(
        "POST",
        "/v1/measurements",
        &olga,
        Some(&json!({"service": "service-a", "samples": samples})),
    )
    .await;
    let incident = goose_testkit::eventually(
        std::time::Duration::from_secs(30),
        "the evaluator opens an incident",
        || async {
            let (_, v) = h
                .call("GET", "/v1/incidents?status=open", Some(&audrey), None)
                .await;
            v.as_array().and_then(|a| a.first().cloned())
        },
    )
    .await
    .unwrap();
    assert_eq!(incident["type"], "sla_breach", "{incident}");
    assert_eq!(incident["severity"], "critical", "{incident}");
    assert_eq!(incident["service"], "service-a");
    assert_eq!(
        incident["cause"], "slo:service-a-availability",
        "{incident}"
    );
    assert_eq!(incident["opened_by"], "goose-sla");
    // It cites the AlertFired events by ledger position; they are on the chain as such.
    let causes = incident["caused_by"].as_array().unwrap();
    assert_eq!(
        causes.len(),
        3,
        "page-fast, page-slow and ticket fired: {incident}"
    );
    // One open incident per cause, however many evaluations pass.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let (_, all) = h.call("GET", "/v1/incidents", Some(&audrey), None).await;
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");

    // The lifecycle, with its refusals.
    let id = incident["id"].as_str().unwrap();
    let at = |step: &str| format!("/v1/incidents/{id}/{step}");
    let v = h.ok("POST", &at("acknowledge"), &ana, None).await;
    assert_eq!(v["status"], "acknowledged", "{v}");
    let (s, v) = h.call("POST", &at("acknowledge"), Some(&ana), None).await;
    assert_eq!(s, 409, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("cannot be acknowledged"),
        "{v}"
    );
    h.ok(
        "POST",
        &at("assign"),
        &ana,
        Some(&json!({"assignee": "olga"})),
    )
    .await;
    let (s, v) = h
        .call("POST", &at("mitigate"), Some(&ana), Some(&json!({})))
        .await;
    assert_eq!(s, 400, "a mitigation says what was done: {v}");
    h.ok(
        "POST",
        &at("mitigate"),
        &olga,
        Some(&json!({"note": "rolled back to 1.0.0"})),
    )
    .await;
    let v = h
        .ok(
            "POST",
            &at("resolve"),
            &olga,
            Some(&json!({"note": "fixed in 1.0.1"})),
        )
        .await;
    assert_eq!(v["status"], "resolved", "{v}");
    assert_eq!(v["assignee"], "olga");
    let steps: Vec<&str> = v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "IncidentOpened",
            "IncidentAcknowledged",
            "IncidentAssigned",
            "IncidentMitigated",
            "IncidentResolved"
        ]
    );
    // Resolved while the alerts still fire: no new incident until an alert fires anew.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let (_, all) = h.call("GET", "/v1/incidents", Some(&audrey), None).await;
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
    let (s, _) = h
        .call(
            "POST",
            &at("reopen"),
            Some(&audrey),
            Some(&json!({"note": "x"})),
        )
        .await;
    assert_eq!(s, 403, "an auditor changes nothing");
    let v = h
        .ok(
            "POST",
            &at("reopen"),
            &ana,
            Some(&json!({"note": "errors again"})),
        )
        .await;
    assert_eq!(v["status"], "open", "{v}");
    let (s, _) = h
        .call("GET", "/v1/incidents/nope", Some(&audrey), None)
        .await;
    assert_eq!(s, 404);

    // By hand: its own incident.
    let (s, v) = h
        .call(
            "POST",
            "/v1/incidents",
            Some(&ana),
            Some(&json!({"type": "security_finding", "severity": "error", "title": "leaked key in logs", "service": "service-a"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["opened_by"], "ana");
    let (s, v) = h
        .call(
            "POST",
            "/v1/incidents",
            Some(&ana),
            Some(&json!({"type": "outage", "severity": "error", "title": "x"})),
        )
        .await;
    assert_eq!(s, 400, "six types: {v}");
}
