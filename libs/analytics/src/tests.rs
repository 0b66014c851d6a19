//! The query engine's limits and the KPI views over the tables' schemas. How events become
//! rows is tested end to end (tests/e2e/analytics.rs) on events the services recorded.

use crate::query::{run, Limits, QueryError};
use crate::{kpis, Tables};
use std::time::Duration;

fn empty() -> Vec<crate::TableData> {
    Tables::default().snapshot().unwrap()
}

fn limits() -> Limits {
    Limits::default()
}

#[tokio::test]
async fn every_kpi_view_plans_and_runs_on_empty_tables() {
    let tables = empty();
    for k in kpis::KPIS {
        let a = run(
            &tables,
            0,
            &format!("SELECT * FROM {}", k.view()),
            &limits(),
        )
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", k.name));
        assert!(a.schema.fields().len() > 1, "{}", k.name);
        assert!(kpis::find(k.name).is_some() && kpis::find(&k.view()).is_some());
    }
}

#[tokio::test]
async fn tables_have_their_declared_columns() {
    let tables = empty();
    let a = run(
        &tables,
        0,
        "SELECT table_name, count(*) AS n FROM information_schema.columns \
         WHERE table_schema = 'public' GROUP BY table_name ORDER BY table_name",
        &limits(),
    )
    .await
    .unwrap();
    let json = crate::encode::json_rows(&a).unwrap();
    for def in Tables::defs() {
        let row = json
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["table_name"] == def.name)
            .unwrap_or_else(|| panic!("{} is not registered", def.name));
        assert_eq!(row["n"], def.fields.len(), "{}", def.name);
    }
}

#[tokio::test]
async fn statements_that_change_anything_are_refused() {
    let tables = empty();
    for sql in [
        "CREATE TABLE x (a INT)",
        "CREATE VIEW v AS SELECT 1",
        "DROP TABLE events",
        "INSERT INTO events SELECT * FROM events",
        "COPY (SELECT 1) TO '/tmp/goose-analytics-copy.csv'",
        "SET datafusion.execution.batch_size = 1",
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
    ] {
        match run(&tables, 0, sql, &limits()).await {
            Err(QueryError::Refused(_)) => {}
            other => panic!("{sql}: {other:?}"),
        }
    }
    assert!(!std::path::Path::new("/tmp/goose-analytics-copy.csv").exists());
}

#[tokio::test]
async fn bad_sql_says_what_is_wrong() {
    let tables = empty();
    match run(&tables, 0, "SELECT nope FROM events", &limits()).await {
        Err(QueryError::Invalid(m)) => assert!(m.contains("nope"), "{m}"),
        other => panic!("{other:?}"),
    }
    match run(&tables, 0, "SELEC 1", &limits()).await {
        Err(QueryError::Invalid(_)) => {}
        other => panic!("{other:?}"),
    }
    // A query that fails on its data is the query's fault (422), not the service's (500).
    for sql in [
        "SELECT CAST('x' AS INT)",
        "SELECT value / (value - value) FROM range(0, 3)",
    ] {
        match run(&tables, 0, sql, &limits()).await {
            Err(QueryError::Execution(_) | QueryError::Invalid(_)) => {}
            other => panic!("{sql}: {:?}", other.map(|a| a.rows)),
        }
    }
    assert!(matches!(
        run(&tables, 0, "  ", &limits()).await,
        Err(QueryError::Invalid(_))
    ));
    let huge = format!("SELECT '{}'", "x".repeat(crate::query::MAX_SQL_BYTES));
    assert!(matches!(
        run(&tables, 0, &huge, &limits()).await,
        Err(QueryError::Invalid(_))
    ));
}

#[tokio::test]
async fn rows_past_the_cap_are_cut_and_said_to_be() {
    let tables = empty();
    let l = Limits {
        max_rows: 1000,
        ..limits()
    };
    let a = run(&tables, 7, "SELECT value FROM range(0, 50000)", &l)
        .await
        .unwrap();
    assert_eq!((a.rows, a.truncated, a.position), (1000, true, 7));
    let n: usize = a.batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(n, 1000);
    let a = run(&tables, 7, "SELECT value FROM range(0, 1000)", &l)
        .await
        .unwrap();
    assert_eq!((a.rows, a.truncated), (1000, false));
}

#[tokio::test]
async fn a_query_over_its_memory_limit_fails_without_spilling() {
    let tables = empty();
    let l = Limits {
        memory_bytes: 4 << 20,
        ..limits()
    };
    match run(
        &tables,
        0,
        "SELECT value FROM range(0, 5000000) ORDER BY value DESC LIMIT 3 OFFSET 10",
        &Limits {
            memory_bytes: 4 << 20,
            ..limits()
        },
    )
    .await
    {
        // A top-k sort needs little memory: this one fits.
        Ok(a) => assert_eq!(a.rows, 3),
        Err(e) => panic!("{e}"),
    }
    match run(
        &tables,
        0,
        "SELECT value % 3000000 AS k, count(*) FROM range(0, 6000000) GROUP BY 1",
        &l,
    )
    .await
    {
        Err(QueryError::Memory { limit, .. }) => assert_eq!(limit, 4 << 20),
        other => panic!("{:?}", other.map(|a| a.rows)),
    }
}

/// The caller's runtime has one thread here: the answer still comes at the timeout, because
/// the query computes on its own threads (a join's batch may compute for long without yielding).
#[tokio::test]
async fn a_long_query_is_stopped_at_its_timeout() {
    let tables = empty();
    let l = Limits {
        timeout: Duration::from_millis(300),
        memory_bytes: 1 << 30,
        ..limits()
    };
    let started = std::time::Instant::now();
    match run(
        &tables,
        0,
        "SELECT count(*) FROM range(0, 200000) a CROSS JOIN range(0, 200000) b WHERE a.value + b.value = 7",
        &l,
    )
    .await
    {
        Err(QueryError::Timeout(t)) => assert_eq!(t, Duration::from_millis(300)),
        other => panic!("{:?}", other.map(|a| a.rows)),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn answers_encode_as_json_csv_and_arrow() {
    let tables = empty();
    let a = run(
        &tables,
        0,
        "SELECT value AS n, CAST(value AS VARCHAR) AS s FROM range(0, 3)",
        &limits(),
    )
    .await
    .unwrap();
    assert_eq!(
        crate::encode::json_rows(&a).unwrap(),
        serde_json::json!([{"n": 0, "s": "0"}, {"n": 1, "s": "1"}, {"n": 2, "s": "2"}])
    );
    assert_eq!(
        String::from_utf8(crate::encode::csv(&a).unwrap()).unwrap(),
        "n,s\n0,0\n1,1\n2,2\n"
    );
    let ipc = crate::encode::arrow_ipc(&a).unwrap();
    let reader =
        datafusion::arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(ipc), None)
            .unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 3);
    let none = run(&tables, 0, "SELECT * FROM promotions", &limits())
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8(crate::encode::csv(&none).unwrap())
            .unwrap()
            .lines()
            .count(),
        1,
        "a header without rows"
    );
}

pub(crate) fn promotion(id: &str, requested_at: i64) -> crate::rows::PromotionRow {
    crate::rows::PromotionRow {
        promotion_id: id.into(),
        position: 0,
        requested_at,
        requester: "olga".into(),
        package: None,
        impact: "low".into(),
        reason: String::new(),
        policy_digest: String::new(),
        targets: 1,
        completed_at: None,
        outcome: None,
        promoted: None,
        failed: None,
        blocked: None,
        duration_ms: None,
        first_started_at: None,
        wall_ms: None,
        critical_path_ms: None,
        serial_ms: None,
    }
}

/// The forecasts' arithmetic on a series with a known line: 2, 4, 6, 8 promotions on four
/// consecutive days is 2 more a day, exactly (no residual: the band is the line).
#[tokio::test]
async fn linear_forecasts_extend_a_known_line() {
    const DAY: i64 = 86_400_000_000;
    let start = 20_000 * DAY; // 2024-10-04, a day boundary
    let mut t = Tables::default();
    for day in 0..4i64 {
        for i in 0..(2 * (day + 1)) {
            t.promotions.insert(
                format!("p{day}-{i}"),
                promotion(&format!("p{day}-{i}"), start + day * DAY + i * 1_000_000),
            );
        }
        t.evidence.push(crate::rows::EvidenceRow {
            position: day,
            evidence_id: format!("e{day}"),
            service: "a".into(),
            version: "1".into(),
            kind: "junit".into(),
            filename: "r.xml".into(),
            size_bytes: 1_000,
            digest: String::new(),
            submitted_at: start + day * DAY,
            submitted_by: "olga".into(),
            retain_until: start,
            subject: "service".into(),
        });
    }
    let tables = t.snapshot().unwrap();
    let a = run(
        &tables,
        0,
        "SELECT * FROM kpi_forecast_promotion_volume",
        &limits(),
    )
    .await
    .unwrap();
    let rows = crate::encode::json_rows(&a).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 7);
    let close = |v: &serde_json::Value, want: f64| (v.as_f64().unwrap() - want).abs() < 1e-6;
    assert!(close(&rows[0]["predicted"], 10.0), "{rows:?}");
    assert!(close(&rows[6]["predicted"], 22.0), "{rows:?}");
    assert!(
        close(&rows[0]["lower"], 10.0) && close(&rows[0]["upper"], 10.0),
        "{rows:?}"
    );
    assert!(close(&rows[0]["per_day_change"], 2.0), "{rows:?}");
    assert_eq!(rows[0]["day"], "2024-10-08T00:00:00", "{rows:?}");

    // Cumulative evidence: 1000, 2000, 3000, 4000 bytes: 1000 a day.
    let a = run(
        &tables,
        0,
        "SELECT * FROM kpi_forecast_evidence_storage",
        &limits(),
    )
    .await
    .unwrap();
    let rows = crate::encode::json_rows(&a).unwrap();
    let r = &rows[0];
    assert!(close(&r["bytes_per_day"], 1000.0), "{r}");
    assert!(close(&r["bytes_in_30_days"], 34_000.0), "{r}");
    assert_eq!(r["bytes_now"], 4000.0, "{r}");

    // Fewer than three days: no forecast rather than a line through two points.
    let mut short = Tables::default();
    short.promotions.insert("x".into(), promotion("x", start));
    let a = run(
        &short.snapshot().unwrap(),
        0,
        "SELECT * FROM kpi_forecast_promotion_volume",
        &limits(),
    )
    .await
    .unwrap();
    assert_eq!(a.rows, 0);
}

/// Slots: with one, a second query waits; a query past its timeout keeps its slot only until
/// its threads stop, after which queries run again.
#[tokio::test]
async fn the_engine_bounds_queries_at_once_and_frees_slots_of_cancelled_ones() {
    let tables = empty();
    let engine = crate::Engine::new(Limits {
        timeout: Duration::from_millis(400),
        concurrent: 1,
        memory_bytes: 1 << 30,
        ..limits()
    });
    let slow = "SELECT count(*) FROM range(0, 200000) a CROSS JOIN range(0, 200000) b WHERE a.value + b.value = 7";
    let started = std::time::Instant::now();
    let (a, b) = tokio::join!(
        engine.run(&tables, 0, slow, None),
        engine.run(&tables, 0, slow, None)
    );
    for r in [a, b] {
        match r {
            Err(QueryError::Timeout(_) | QueryError::Busy(_)) => {}
            other => panic!("{:?}", other.map(|a| a.rows)),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    // The cancelled queries stop at their next batch and give their slot back.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match engine.run(&tables, 0, "SELECT 41 + 1 AS n", Some(5)).await {
            Ok(a) => {
                assert_eq!(
                    crate::encode::json_rows(&a).unwrap(),
                    serde_json::json!([{"n": 42}])
                );
                break;
            }
            // Busy while the cancelled queries finish their batch; on a loaded machine even
            // this query's planning may pass 400 ms.
            Err(QueryError::Busy(_) | QueryError::Timeout(_))
                if std::time::Instant::now() < deadline => {}
            Err(e) => panic!("the slot never came back: {e}"),
        }
    }
}

#[test]
fn a_session_registers_the_views_a_statement_needs() {
    let names = |sql: &str| -> Vec<&str> { kpis::needed(sql).iter().map(|k| k.name).collect() };
    assert!(names("SELECT * FROM promotions").is_empty());
    assert_eq!(
        names("SELECT * FROM KPI_SLA_ATTAINMENT"),
        ["sla_attainment"]
    );
    // `dora` reads the four DORA views.
    let dora = names("SELECT * FROM kpi_dora");
    for k in [
        "dora_deployment_frequency",
        "dora_lead_time",
        "dora_change_failure_rate",
        "dora_time_to_restore",
        "dora",
    ] {
        assert!(dora.contains(&k), "{k}: {dora:?}");
    }
    // Not a prefix match: kpi_dora_lead_time alone does not need kpi_dora.
    assert_eq!(
        names("select * from kpi_dora_lead_time"),
        ["dora_lead_time"]
    );
    assert_eq!(
        names("SELECT * FROM information_schema.tables").len(),
        kpis::KPIS.len()
    );
}

fn evidence_row(position: i64) -> crate::rows::EvidenceRow {
    crate::rows::EvidenceRow {
        position,
        evidence_id: format!("e{position}"),
        service: "a".into(),
        version: "1".into(),
        kind: "junit".into(),
        filename: "r.xml".into(),
        size_bytes: 1_000,
        digest: String::new(),
        submitted_at: 1_700_000_000_000_000 + position,
        submitted_by: "olga".into(),
        retain_until: 0,
        subject: "service".into(),
    }
}

/// An engine shares a snapshot's tables and planned views between its queries (the batches'
/// identity says when a snapshot is the same), never answers from another snapshot, and keeps
/// what is a query's own (the `chain` row of the moment) its own.
#[tokio::test]
async fn queries_share_a_snapshots_setup_and_never_answer_from_another() {
    use crate::session::SnapshotKey;
    let engine = crate::query::Engine::new(limits());
    let first =
        |a: &crate::query::Answer, col: &str| crate::encode::json_rows(a).unwrap()[0][col].clone();
    let sql = "SELECT sum(files) AS files FROM kpi_evidence_volume";
    let mut t = Tables::default();
    t.evidence.push(evidence_row(0));
    let one = t.snapshot().unwrap();
    assert_eq!(
        first(&engine.run(&one, 1, sql, None).await.unwrap(), "files"),
        1
    );
    let same = t.snapshot().unwrap();
    assert_eq!(
        SnapshotKey::of(&one),
        SnapshotKey::of(&same),
        "an unchanged table is the same batches"
    );
    assert_eq!(
        first(&engine.run(&same, 1, sql, None).await.unwrap(), "files"),
        1
    );
    t.evidence.push(evidence_row(1));
    let two = t.snapshot().unwrap();
    assert_ne!(SnapshotKey::of(&one), SnapshotKey::of(&two));
    assert_eq!(
        first(&engine.run(&two, 2, sql, None).await.unwrap(), "files"),
        2,
        "the view planned over the first snapshot is not reused"
    );
    assert_eq!(
        first(&engine.run(&one, 1, sql, None).await.unwrap(), "files"),
        1
    );

    // The chain row differs per query; the rest is shared.
    let row = crate::rows::ChainRow {
        checked_at: 0,
        configured: true,
        log_size: 7,
        verified: 7,
        checkpoint_size: Some(7),
        checkpoint_root: None,
        failure: None,
        witness_threshold: 0,
        witnesses: 0,
    };
    let mut with_chain = two.clone();
    for t in &mut with_chain {
        if t.def.name == "chain" {
            *t = Tables::chain_table(Some(&row)).unwrap();
        }
    }
    assert_eq!(SnapshotKey::of(&two), SnapshotKey::of(&with_chain));
    let chain = "SELECT count(*) AS n FROM chain";
    assert_eq!(
        first(&engine.run(&with_chain, 2, chain, None).await.unwrap(), "n"),
        1
    );
    assert_eq!(
        first(&engine.run(&two, 2, chain, None).await.unwrap(), "n"),
        0
    );
    let kpi = "SELECT verified FROM kpi_chain_integrity";
    let a = engine.run(&with_chain, 2, kpi, None).await.unwrap();
    assert_eq!(
        first(&a, "verified"),
        true,
        "{:?}",
        crate::encode::json_rows(&a)
    );
    let a = engine.run(&two, 2, kpi, None).await.unwrap();
    assert_ne!(
        crate::encode::json_rows(&a).unwrap().to_string(),
        "[{\"verified\":true}]"
    );
}

/// The `events` table's few-valued strings are dictionary-encoded: grouping by one goes
/// through [`crate::dict_group`] and answers as grouping plain strings would; filters,
/// `date_trunc` and every answer format see strings. Over more than one chunk, so that the
/// table is split between the query's threads.
#[tokio::test]
async fn events_group_by_their_dictionary_columns() {
    let mut t = Tables::default();
    let rows = crate::table::CHUNK * 2 + 5;
    for i in 0..rows {
        t.events.push(crate::rows::EventRow {
            position: i as i64,
            // One event a minute from 2026-01-01.
            recorded_at: 1_767_225_600_000_000 + i as i64 * 60_000_000,
            stream: format!("promotion-{i}"),
            aggregate_type: "promotion".into(),
            aggregate_id: format!("{i}"),
            stream_version: 1,
            event_id: format!("e{i}"),
            event_type: ["PromotionRequested", "GateEvaluated", "TargetPromoted"][i % 3].into(),
            service: "goose-orchestrator".into(),
            actor: if i % 2 == 0 { "olga" } else { "ada" }.into(),
            digest: String::new(),
            payload: "{}".into(),
        });
    }
    let snap = t.snapshot().unwrap();
    let mut l = limits();
    l.partitions = 2;
    let sql = "SELECT event_type, count(*) AS n, count(*) FILTER (WHERE actor = 'olga') AS olga \
               FROM events GROUP BY event_type ORDER BY event_type";
    let plan = run(&snap, rows as u64, &format!("EXPLAIN {sql}"), &l)
        .await
        .unwrap();
    let shown = datafusion::arrow::util::pretty::pretty_format_batches(&plan.batches)
        .unwrap()
        .to_string();
    assert!(shown.contains("DictionaryAggregateExec"), "{shown}");
    let a = run(&snap, rows as u64, sql, &l).await.unwrap();
    let types = ["PromotionRequested", "GateEvaluated", "TargetPromoted"];
    let mut expected = std::collections::BTreeMap::new();
    for i in 0..rows {
        let e = expected.entry(types[i % 3]).or_insert((0u64, 0u64));
        e.0 += 1;
        e.1 += u64::from(i % 2 == 0);
    }
    let expected: Vec<serde_json::Value> = expected
        .iter()
        .map(|(t, (n, olga))| serde_json::json!({"event_type": t, "n": n, "olga": olga}))
        .collect();
    assert_eq!(
        crate::encode::json_rows(&a).unwrap(),
        serde_json::Value::Array(expected)
    );
    let csv = String::from_utf8(crate::encode::csv(&a).unwrap()).unwrap();
    assert!(
        csv.starts_with("event_type,n,olga\nGateEvaluated,"),
        "{csv}"
    );
    let per_day = "SELECT date_trunc('day', recorded_at) AS day, count(*) AS n FROM events \
                   WHERE event_type = 'TargetPromoted' AND actor LIKE 'o%' GROUP BY 1 ORDER BY 1";
    let a = run(&snap, rows as u64, per_day, &l).await.unwrap();
    let json = crate::encode::json_rows(&a).unwrap();
    assert_eq!(json[0]["day"], "2026-01-01T00:00:00Z", "{json}");
    let n: u64 = json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["n"].as_u64().unwrap())
        .sum();
    let promoted_by_olga = (0..rows).filter(|i| i % 3 == 2 && i % 2 == 0).count();
    assert_eq!(n as usize, promoted_by_olga);
    // Rows from two batches (two dictionaries) in one Arrow IPC stream.
    let span = "SELECT position, actor FROM events WHERE position >= 8000 AND position < 8400 \
                ORDER BY position";
    let ipc = crate::encode::arrow_ipc(&run(&snap, 0, span, &l).await.unwrap()).unwrap();
    let reader =
        datafusion::arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(ipc), None)
            .unwrap();
    let mut actors = Vec::new();
    for b in reader {
        let b = b.unwrap();
        let a = datafusion::arrow::compute::cast(
            b.column(1),
            &datafusion::arrow::datatypes::DataType::Utf8,
        )
        .unwrap();
        let a = datafusion::arrow::array::AsArray::as_string::<i32>(&a);
        actors.extend(a.iter().map(|v| v.unwrap().to_owned()));
    }
    let expected: Vec<String> = (8000..8400)
        .map(|i| if i % 2 == 0 { "olga" } else { "ada" }.to_owned())
        .collect();
    assert_eq!(actors, expected);
}
