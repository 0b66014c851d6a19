//! Security incidents. Someone with write access to the ledger's storage (the embedded
//! ledger's file; a database superuser is the same for PostgreSQL) inserts a checkpoint row of
//! their own and rewrites an event: the sla service's chain watch catches both, each opens one
//! critical `evidence_integrity` incident, and the compliance report states the failure. And
//! someone probing what they may do: a burst of refused requests opens `unauthorized_access`.

use crate::inprocess::start;
use crate::support::{user_with_token, Http};
use serde_json::{json, Value};
use std::time::Duration;

async fn sqlite(file: &std::path::Path) -> sqlx::SqlitePool {
    sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(file)
                .busy_timeout(Duration::from_secs(10)),
        )
        .await
        .unwrap()
}

/// A report from the start of 2026 to now, issued by `token`.
async fn report(h: &Http, token: &str) -> Value {
    let (s, v) = h
        .call(
            "POST",
            "/v1/reports",
            Some(token),
            Some(&json!({"from": "2026-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    v["report"].clone()
}

/// The incidents whose cause starts with `prefix`.
async fn incident(h: &Http, token: &str, prefix: &str) -> Vec<Value> {
    let v = h.ok("GET", "/v1/incidents", token, None).await;
    v.as_array()
        .unwrap()
        .iter()
        .filter(|i| i["cause"].as_str().unwrap().starts_with(prefix))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewritten_ledger_opens_evidence_integrity_incidents() {
    let sys = start().await;
    let (h, root) = (&sys.http, sys.admin.as_str());
    let olga = user_with_token(h, root, "olga", &["operator"]).await;
    let body = b"service:\n  name: service-a\n  spec:\n    api_version: v1\n    compliance_mode: sandbox\n".to_vec();
    let (s, v) = h
        .raw("POST", "/v1/services", &olga, "application/yaml", body)
        .await;
    assert!(s == 200 || s == 201, "{v}");
    let cp = h.ok("POST", "/v1/chain/checkpoints", root, None).await;
    // The answer is the signed note: origin, size, root.
    let size: u64 = cp
        .as_str()
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    // The watch verifies up to the checkpoint.
    goose_testkit::eventually(Duration::from_secs(30), "the chain verified", || async {
        let r = report(h, root).await;
        (r["chain"]["verified_up_to"].as_u64() >= Some(size)).then_some(())
    })
    .await
    .unwrap();
    let r = report(h, root).await;
    assert!(r["chain"]["verify_failure"].is_null(), "{r}");

    let db = sqlite(&sys.ledger_file()).await;
    // A checkpoint row signed by another key, for a larger tree than the log has.
    let mallory = goose_ledger::NoteKey::generate("inproc.test/log").unwrap();
    let forged = goose_ledger::Checkpoint {
        origin: "inproc.test/log".into(),
        size: size + 1_000,
        root: [7; 32],
    }
    .sign(&mallory)
    .unwrap();
    sqlx::query("INSERT INTO ledger_checkpoints (tree_size, root, note) VALUES (?, ?, ?)")
        .bind((size + 1_000) as i64)
        .bind(vec![7u8; 32])
        .bind(&forged.note)
        .execute(&db)
        .await
        .unwrap();
    let intrusion = goose_testkit::eventually(
        Duration::from_secs(30),
        "an incident for the forged checkpoint row",
        || async { incident(h, &olga, "chain:intrusion:").await.pop() },
    )
    .await
    .unwrap();
    assert_eq!(
        (&intrusion["type"], &intrusion["severity"]),
        (&json!("evidence_integrity"), &json!("critical")),
        "{intrusion}"
    );

    // An event rewritten after it was recorded: olga's name becomes someone else's.
    let body = b"service:\n  name: service-b\n  spec:\n    api_version: v1\n    compliance_mode: sandbox\n".to_vec();
    let (s, v) = h
        .raw("POST", "/v1/services", &olga, "application/yaml", body)
        .await;
    assert!(s == 200 || s == 201, "{v}");
    let (position, record): (i64, Vec<u8>) = sqlx::query_as(
        "SELECT position, record FROM ledger_events WHERE position >= ? AND instr(record, 'olga') > 0 ORDER BY position LIMIT 1",
    )
    .bind(size as i64)
    .fetch_one(&db)
    .await
    .unwrap_or_else(|e| panic!("no event after the checkpoint names olga: {e}"));
    let at = record.windows(4).position(|w| w == b"olga").unwrap();
    let mut changed = record.clone();
    changed[at..at + 4].copy_from_slice(b"mala");
    sqlx::query("DROP TRIGGER ledger_events_no_update")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE ledger_events SET record = ? WHERE position = ?")
        .bind(changed)
        .bind(position)
        .execute(&db)
        .await
        .unwrap();
    // The next checkpoint covers it; the watch reads it and fails.
    h.ok("POST", "/v1/chain/checkpoints", root, None).await;
    let broken = goose_testkit::eventually(
        Duration::from_secs(30),
        "an incident for the chain that does not verify",
        || async { incident(h, &olga, "chain:verify:").await.pop() },
    )
    .await
    .unwrap();
    assert_eq!(broken["severity"], "critical", "{broken}");
    let title = broken["title"].as_str().unwrap();
    assert!(
        title.starts_with("the evidence chain does not verify")
            && title.contains(&position.to_string()),
        "{broken}"
    );
    // Once per cause, however many evaluations follow.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(incident(h, &olga, "chain:verify:").await.len(), 1);
    assert_eq!(incident(h, &olga, "chain:intrusion:").await.len(), 1);

    // The report states it.
    let r = report(h, root).await;
    let chain = &r["chain"];
    assert!(chain["verify_failure"].as_str().is_some(), "{chain}");
    assert_eq!(chain["intrusions"].as_array().unwrap().len(), 1, "{chain}");
    assert_eq!(r["incidents"]["by_type"]["evidence_integrity"], 2, "{r}");
}

/// `n` refused requests of `token`'s user (an analyst applying SLOs).
async fn refuse(h: &Http, token: &str, n: usize) {
    for _ in 0..n {
        let (s, v) = h
            .raw(
                "PUT",
                "/v1/slos",
                token,
                "application/yaml",
                b"x: 1".to_vec(),
            )
            .await;
        assert_eq!(s, 403, "{v}");
    }
}

/// Someone probing what they may do: twenty refused requests within a minute are a burst, and
/// the burst one `unauthorized_access` incident; fewer refusals afterwards open nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_refused_requests_opens_an_unauthorized_access_incident() {
    let sys = start().await;
    let (h, root) = (&sys.http, sys.admin.as_str());
    let ana = user_with_token(h, root, "ana", &["analyst"]).await;
    refuse(h, &ana, 20).await;
    let burst = goose_testkit::eventually(
        Duration::from_secs(30),
        "an unauthorized_access incident for the burst",
        || async { incident(h, root, "access:ana:").await.pop() },
    )
    .await
    .unwrap();
    assert_eq!(burst["type"], "unauthorized_access", "{burst}");
    let title = burst["title"].as_str().unwrap();
    assert!(
        title.starts_with("ana was refused 20 requests") && title.contains("PUT /v1/slos"),
        "{burst}"
    );
    refuse(h, &ana, 19).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(incident(h, root, "access:ana:").await.len(), 1);
}
