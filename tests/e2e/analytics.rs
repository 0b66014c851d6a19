//! The analytics service over what the services recorded in the breach flow
//! (sla_breach.rs): the tables follow the ledger, and the KPIs give that flow's figures.

use crate::support::{user_with_token, Http};
use goose_analytics::datafusion::arrow::ipc::reader::StreamReader;
use serde_json::{json, Value};

async fn sql(h: &Http, token: &str, sql: &str) -> Value {
    h.ok(
        "POST",
        "/v1/analytics/query",
        token,
        Some(&json!({ "sql": sql })),
    )
    .await
}

fn rows(answer: &Value) -> &Vec<Value> {
    answer["rows"].as_array().unwrap()
}

/// Called at the end of the breach flow: 4 promotions (3 succeeded, 1 failed on its
/// dependency check naming the breach), service-a 1.0.0 demoted, the breach incident
/// resolved, 300 requests of service-a with 60 errors, an approval request with 2 refused
/// self-approvals.
pub async fn kpis_of_it_all(h: &Http, root: &str, breach: &str) {
    let ana = user_with_token(h, root, "ana-lytics", &["analyst"]).await;
    let olga = user_with_token(h, root, "olga-2", &["operator"]).await;

    // Operators may not query; analysts, auditors and admins may.
    let (s, v) = h
        .call(
            "POST",
            "/v1/analytics/query",
            Some(&olga),
            Some(&json!({"sql": "SELECT 1"})),
        )
        .await;
    assert_eq!(s, 403, "{v}");

    // `events` is the whole ledger: as many rows as positions, none missing.
    let a = sql(
        h,
        &ana,
        "SELECT count(*) AS n, min(position) AS first, max(position) AS last, \
         count(DISTINCT digest) AS digests FROM events",
    )
    .await;
    let position = a["position"].as_u64().unwrap();
    let r = &rows(&a)[0];
    assert_eq!(r["n"].as_u64(), Some(position), "{a}");
    assert_eq!(r["digests"].as_u64(), Some(position), "{a}");
    assert_eq!(
        (r["first"].as_u64(), r["last"].as_u64()),
        (Some(0), Some(position - 1))
    );

    let a = sql(
        h,
        &ana,
        "SELECT service, version, outcome FROM promotion_targets ORDER BY requested_at",
    )
    .await;
    let got: Vec<(String, String, String)> = rows(&a)
        .iter()
        .map(|r| {
            (
                r["service"].as_str().unwrap().to_owned(),
                r["version"].as_str().unwrap().to_owned(),
                r["outcome"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    let want = [
        ("service-a", "1.0.0", "promoted"),
        ("service-b", "1.0.0", "failed"),
        ("service-a", "1.0.1", "promoted"),
        ("service-b", "1.0.0", "promoted"),
    ];
    assert_eq!(
        got,
        want.map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned())),
        "{a}"
    );

    let k = h
        .ok(
            "GET",
            "/v1/analytics/kpis/promotion_success_rate",
            &ana,
            None,
        )
        .await;
    let r = &rows(&k)[0];
    assert_eq!(
        (&r["completed"], &r["succeeded"], &r["failed"]),
        (&json!(4), &json!(3), &json!(1)),
        "{k}"
    );
    assert_eq!(r["success_rate"], json!(0.75), "{k}");

    // The failed dependency check, ranked first, with the breach in its reason.
    let k = h
        .ok("GET", "/v1/analytics/kpis/gate_failure_reasons", &ana, None)
        .await;
    let top = &rows(&k)[0];
    assert_eq!(top["check"], "dependencies_compliant", "{k}");
    assert!(top["reason"].as_str().unwrap().contains(breach), "{k}");
    assert_eq!(top["promotions"], 1, "{k}");

    // DORA: a@1.0.0, a@1.0.1, b@1.0.0 promoted; a@1.0.0 demoted; the breach restored.
    let k = h
        .ok(
            "GET",
            "/v1/analytics/kpis/dora_change_failure_rate",
            &ana,
            None,
        )
        .await;
    let r = &rows(&k)[0];
    assert_eq!(
        (&r["promoted_versions"], &r["failed_versions"]),
        (&json!(3), &json!(1)),
        "{k}"
    );
    let a = sql(
        h,
        &ana,
        &format!(
            "SELECT type, severity, status, time_to_restore_ms FROM incidents \
             WHERE incident_id = '{breach}'"
        ),
    )
    .await;
    let r = &rows(&a)[0];
    assert_eq!(
        (&r["type"], &r["status"]),
        (&json!("sla_breach"), &json!("resolved")),
        "{a}"
    );
    assert!(r["time_to_restore_ms"].as_i64().unwrap() >= 0, "{a}");
    let k = h.ok("GET", "/v1/analytics/kpis/dora", &ana, None).await;
    let r = &rows(&k)[0];
    assert!(
        (r["change_failure_rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9,
        "{k}"
    );
    assert!(r["deployments_per_week"].as_f64().unwrap() > 0.0, "{k}");
    assert!(!r["time_to_restore_p50_h"].is_null(), "{k}");

    // The measurements: 300 requests of service-a, one in five failed.
    let k = h
        .ok("GET", "/v1/analytics/kpis/sla_attainment", &ana, None)
        .await;
    let a_row = rows(&k)
        .iter()
        .find(|r| r["service"] == "service-a")
        .unwrap();
    assert_eq!(
        (&a_row["requests"], &a_row["errors"]),
        (&json!(300), &json!(60)),
        "{k}"
    );
    assert!(
        (a_row["availability"].as_f64().unwrap() - 0.8).abs() < 1e-9,
        "{k}"
    );

    // The approval request and the two self-approvals the rules refused.
    let k = h
        .ok("GET", "/v1/analytics/kpis/approval_wait", &ana, None)
        .await;
    let r = rows(&k).iter().find(|r| r["kind"] == "promotion").unwrap();
    assert!(r["pending"].as_i64().unwrap() >= 1, "{k}");
    assert_eq!(r["refused_attempts"], 2, "{k}");

    // Read-only, and bad SQL says why.
    for (statement, title) in [
        ("DROP TABLE events", "statement not allowed"),
        ("COPY (SELECT 1) TO '/tmp/x.csv'", "statement not allowed"),
        ("SELECT nope FROM events", "invalid query"),
    ] {
        let (s, v) = h
            .call(
                "POST",
                "/v1/analytics/query",
                Some(&ana),
                Some(&json!({ "sql": statement })),
            )
            .await;
        assert_eq!(
            (s, v["title"].as_str()),
            (422, Some(title)),
            "{statement}: {v}"
        );
    }
    let (s, v) = h
        .call("GET", "/v1/analytics/kpis/happiness", Some(&ana), None)
        .await;
    assert_eq!(s, 404, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("dora"), "{v}");

    // CSV and an Arrow IPC stream, the same numbers.
    let (s, csv) = h
        .call(
            "POST",
            "/v1/analytics/query",
            Some(&ana),
            Some(&json!({"sql": "SELECT outcome, count(*) AS n FROM promotions GROUP BY outcome ORDER BY outcome", "format": "csv"})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        csv.as_str().unwrap(),
        "outcome,n\nfailed,1\nsucceeded,3\n",
        "{csv}"
    );
    let bytes = reqwest::Client::new()
        .post(format!("{}/v1/analytics/query", h.base))
        .bearer_auth(&ana)
        .header("accept", "application/vnd.apache.arrow.stream")
        .json(&json!({"sql": "SELECT count(*) AS n FROM promotions"}))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let batches: Vec<_> = StreamReader::try_new(std::io::Cursor::new(bytes.to_vec()), None)
        .unwrap()
        .map(|b| b.unwrap())
        .collect();
    let n = goose_analytics::datafusion::arrow::array::AsArray::as_primitive::<
        goose_analytics::datafusion::arrow::datatypes::Int64Type,
    >(batches[0].column(0))
    .value(0);
    assert_eq!(n, 4);

    // `ledger_events` reads the ledger (PostgreSQL) itself: only the positions asked for,
    // and the same rows as the in-memory `events`.
    let a = sql(
        h,
        &ana,
        "SELECT count(*) AS n, min(position) AS lo, max(position) AS hi FROM ledger_events \
         WHERE position BETWEEN 10 AND 19 AND event_type <> ''",
    )
    .await;
    assert_eq!(rows(&a)[0], json!({"n": 10, "lo": 10, "hi": 19}), "{a}");
    assert_eq!(
        a["ledger_rows_read"], 10,
        "the position bounds were pushed down: {a}"
    );
    let a = sql(
        h,
        &ana,
        "SELECT count(*) AS n FROM events e JOIN ledger_events l ON l.position = e.position \
         WHERE l.digest = e.digest AND l.payload = e.payload AND l.recorded_at = e.recorded_at \
         AND l.event_type = e.event_type AND l.actor = e.actor",
    )
    .await;
    assert_eq!(rows(&a)[0]["n"].as_u64(), a["position"].as_u64(), "{a}");
    assert_eq!(
        a["ledger_rows_read"].as_u64(),
        a["position"].as_u64(),
        "{a}"
    );

    // The chain as the analytics service's own chain watch verified it.
    let k = h
        .ok("GET", "/v1/analytics/kpis/chain_integrity", &ana, None)
        .await;
    let r = &rows(&k)[0];
    assert!(r["failure"].is_null(), "{k}");
    assert_eq!(r["witnessed"], false, "no witnesses configured: {k}");
    let (size, log) = (
        r["checkpoint_size"].as_i64(),
        r["log_size"].as_i64().unwrap(),
    );
    if let Some(size) = size {
        assert_eq!(r["verified"], true, "{k}");
        assert!(r["events_verified"].as_i64().unwrap() >= size, "{k}");
        assert_eq!(r["uncovered_events"].as_i64(), Some(log - size), "{k}");
    } else {
        assert_eq!(r["verified"], false, "no checkpoint yet: {k}");
        assert_eq!(r["uncovered_events"].as_i64(), Some(log), "{k}");
    }
    if r["uncovered_events"].as_i64() > Some(0) {
        assert!(r["checkpoint_lag_s"].as_f64().unwrap() >= 0.0, "{k}");
        assert!(!r["oldest_uncovered_at"].is_null(), "{k}");
    }

    gpu_offload_matches_the_cpu(h, &ana).await;
    parquet_export_reads_alike_in_duckdb(h, &ana).await;
    flight_sql_answers_an_adbc_client(h, &ana, &olga).await;
    kpi_stream_follows_a_promotion(h, &ana, &olga).await;
}

fn python_script(packages: &[&str], script: &str, args: &[&str]) -> Value {
    let python = goose_testkit::python_env(packages).unwrap();
    let path = format!("{}/e2e/py/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(python)
        .arg(&path)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{script} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn close(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(1.0),
        _ => a == b,
    }
}

/// The export (written every half second through the whole flow, so incrementally) read by
/// DuckDB from PyPI: every event once, each in its day's partition, and the same KPI figures
/// as the service's own SQL.
async fn parquet_export_reads_alike_in_duckdb(h: &Http, ana: &str) {
    let position = sql(h, ana, "SELECT 1").await["position"].as_u64().unwrap();
    let status = goose_testkit::eventually(
        std::time::Duration::from_secs(60),
        "the export to reach the tables",
        || async {
            let v = h.ok("GET", "/v1/analytics/export", ana, None).await;
            (v["position"].as_u64() >= Some(position)).then_some(v)
        },
    )
    .await
    .unwrap();
    assert_eq!(status["configured"], true, "{status}");
    assert!(status["last_error"].is_null(), "{status}");
    let location = status["location"].as_str().unwrap();
    let d = python_script(&["duckdb==2.0.1"], "duckdb_export.py", &[location]);
    let p = d["manifest_position"].as_u64().unwrap();
    assert!(p >= position, "{d}");
    let e = &d["events"];
    assert_eq!(
        (e["below"].as_u64(), e["distinct_below"].as_u64()),
        (Some(p), Some(p)),
        "{d}"
    );
    assert_eq!(
        e["rows"], e["distinct_rows"],
        "an event exported twice: {d}"
    );
    assert_eq!(e["misfiled"], 0, "{d}");
    assert!(
        d["files"].as_u64().unwrap() > 1,
        "written incrementally: {d}"
    );

    // This service reads the export back as schema `archive`: the same rows.
    let a = sql(
        h,
        ana,
        &format!(
            "SELECT count(*) FILTER (WHERE position < {p}) AS below, count(*) AS n, \
             count(DISTINCT position) AS distinct_rows, \
             count(*) FILTER (WHERE date <> to_char(recorded_at, '%Y-%m-%d')) AS misfiled \
             FROM archive.events"
        ),
    )
    .await;
    let r = &rows(&a)[0];
    assert_eq!(r["below"].as_u64(), Some(p), "{a}");
    assert_eq!(r["n"], r["distinct_rows"], "{a}");
    assert_eq!(r["misfiled"], 0, "{a}");
    let a = sql(
        h,
        ana,
        "SELECT count(*) FILTER (WHERE outcome = 'succeeded') AS succeeded, \
         count(*) FILTER (WHERE outcome IS NOT NULL) AS completed FROM archive.promotions",
    )
    .await;
    assert_eq!(rows(&a)[0], json!({"succeeded": 3, "completed": 4}), "{a}");

    let ours = |name: &'static str| async move {
        rows(
            &h.ok("GET", &format!("/v1/analytics/kpis/{name}"), ana, None)
                .await,
        )[0]
        .clone()
    };
    let r = ours("promotion_success_rate").await;
    for k in ["completed", "succeeded", "failed", "success_rate"] {
        assert!(
            close(&r[k], &d["promotion_success_rate"][k]),
            "{k}: {r} vs {d}"
        );
    }
    let r = ours("promotion_duration").await;
    for k in ["p50_s", "p90_s", "mean_s", "max_s"] {
        assert!(close(&r[k], &d["promotion_duration"][k]), "{k}: {r} vs {d}");
    }
    let r = ours("gate_failure_reasons").await;
    for k in ["check", "reason", "failures", "promotions"] {
        assert_eq!(r[k], d["gate_failure_reasons"][k], "{k}");
    }
    let k = h
        .ok("GET", "/v1/analytics/kpis/approval_wait", ana, None)
        .await;
    let r = rows(&k).iter().find(|r| r["kind"] == "promotion").unwrap();
    for k in ["requests", "refused_attempts"] {
        assert!(close(&r[k], &d["approval_wait"][k]), "{k}: {r} vs {d}");
    }
    let k = h
        .ok("GET", "/v1/analytics/kpis/sla_attainment", ana, None)
        .await;
    let r = rows(&k)
        .iter()
        .find(|r| r["service"] == "service-a")
        .unwrap();
    for k in ["requests", "errors", "availability"] {
        assert!(close(&r[k], &d["sla_attainment"][k]), "{k}: {r} vs {d}");
    }
}

/// Arrow Flight SQL with the ADBC driver from PyPI: answers, refusals of writes, server info,
/// the tables listed, and the same bearer tokens and permissions as REST.
async fn flight_sql_answers_an_adbc_client(h: &Http, ana: &str, olga: &str) {
    let uri = h.base.replace("http://", "grpc://");
    let f = python_script(
        &["adbc-driver-flightsql==1.13.0", "pyarrow==26.0.1"],
        "flight_sql.py",
        &[&uri, ana, olga],
    );
    assert_eq!(
        f["outcomes"]["ok"],
        json!([{"outcome": "failed", "n": 1}, {"outcome": "succeeded", "n": 3}]),
        "{f}"
    );
    assert_eq!(
        f["kpi"]["ok"],
        json!([{"completed": 4, "succeeded": 3, "failed": 1}]),
        "{f}"
    );
    let n = f["events"]["ok"][0]["n"].as_u64().unwrap();
    assert_eq!(f["events"]["ok"][0]["last"].as_u64(), Some(n - 1), "{f}");
    // Dictionary-encoded columns arrive as strings, and the counts add up.
    let by_type = f["by_type"]["ok"].as_array().unwrap();
    assert!(
        by_type
            .iter()
            .any(|r| r["event_type"] == "PromotionCompleted"),
        "{f}"
    );
    let total: u64 = by_type.iter().filter_map(|r| r["n"].as_u64()).sum();
    assert_eq!(total, n, "{f}");
    assert_eq!(f["by_type_schema"], json!(["string", "string"]), "{f}");
    for w in ["drop", "insert"] {
        let e = f[w]["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{w} ran: {f}"));
        assert!(e.contains("only read-only queries"), "{w}: {e}");
    }
    assert!(f["bad"]["error"].as_str().unwrap().contains("nope"), "{f}");
    assert_eq!(f["vendor"], "goose-analytics", "{f}");
    let tables: Vec<&str> = f["tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for t in ["events", "promotions", "kpi_dora"] {
        assert!(tables.contains(&t), "{t} not listed: {f}");
    }
    let denied = f["denied"]["error"].as_str().unwrap();
    assert!(denied.contains("lacks permission"), "{denied}");
    let unauthenticated = f["unauthenticated"]["error"].as_str().unwrap();
    assert!(
        unauthenticated.to_lowercase().contains("unauthenticated"),
        "{unauthenticated}"
    );
}

/// The `data` of each complete server-sent `kpi` event in `buf` (consumed).
fn kpi_events(buf: &mut String) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(end) = buf.find("\n\n") {
        let block: String = buf.drain(..end + 2).collect();
        if block.lines().any(|l| l == "event: kpi") {
            let data: String = block
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect();
            out.push(serde_json::from_str(&data).unwrap());
        }
    }
    out
}

/// A KPI stream sends the value at once, and the new one when a promotion completes.
async fn kpi_stream_follows_a_promotion(h: &Http, ana: &str, olga: &str) {
    let mut resp = reqwest::Client::new()
        .get(format!(
            "{}/v1/analytics/kpis/promotion_success_rate/stream",
            h.base
        ))
        .bearer_auth(ana)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut buf = String::new();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut promoted = false;
    loop {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .expect("a kpi event in time")
            .unwrap()
            .expect("the stream stays open");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        for e in kpi_events(&mut buf) {
            seen.push(e["rows"][0]["completed"].as_u64().unwrap());
        }
        if seen.first() == Some(&4) && !promoted {
            promoted = true;
            let (s, v) = h
                .call(
                    "POST",
                    "/v1/promotions",
                    Some(olga),
                    Some(&json!({"service": "service-a", "version": "1.0.2", "reason": "stream"})),
                )
                .await;
            assert_eq!(s, 202, "{v}");
        }
        if seen.last() == Some(&5) {
            break;
        }
    }
    // Values are sent when they change: 4, then 5 (nothing repeated in between).
    assert_eq!(seen, vec![4, 5]);
}

/// `percentile_exact` and `sum_exact` through the service on the GPU adapter (lavapipe in CI):
/// the adapter is reported, the aggregates ran there, and the answers equal DataFusion's
/// `percentile_cont` and `sum`.
async fn gpu_offload_matches_the_cpu(h: &Http, ana: &str) {
    let hw = h.ok("GET", "/v1/analytics/hardware", ana, None).await;
    assert_eq!(hw["gpu_support"], true, "{hw}");
    let adapter = &hw["selected"];
    assert!(
        adapter["name"].is_string(),
        "no adapter chosen (CI installs mesa-vulkan-drivers): {hw}"
    );
    let before = hw["offloaded"].as_u64().unwrap();
    let a = sql(
        h,
        ana,
        "SELECT percentile_exact(v, 0.99) AS ours, \
         percentile_cont(0.99) WITHIN GROUP (ORDER BY v) AS reference \
         FROM (SELECT (value * 48271) % 2147483647 AS v FROM range(0, 50000))",
    )
    .await;
    let r = &rows(&a)[0];
    assert_eq!(r["ours"], r["reference"], "{a}");
    let hw = h.ok("GET", "/v1/analytics/hardware", ana, None).await;
    let after_percentile = hw["offloaded"].as_u64().unwrap();
    assert!(after_percentile > before, "not offloaded: {hw}");
    // Grouped sums: `sum_exact` equals `sum` in every group, negatives included.
    let a = sql(
        h,
        ana,
        "SELECT value % 7 AS k, sum_exact(value * 3 - 70000) AS ours, \
         sum(value * 3 - 70000) AS reference FROM range(0, 50000) GROUP BY 1 ORDER BY 1",
    )
    .await;
    assert_eq!(rows(&a).len(), 7, "{a}");
    for r in rows(&a) {
        assert_eq!(r["ours"], r["reference"], "{a}");
    }
    let hw = h.ok("GET", "/v1/analytics/hardware", ana, None).await;
    assert!(
        hw["offloaded"].as_u64().unwrap() > after_percentile,
        "sum_exact not offloaded: {hw}"
    );
}
