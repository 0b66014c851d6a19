//! PostgreSQL-only properties: the roles and append-only guards, and tampering that `verify`
//! must catch at the right position. Whole-history rewrites are in `attacks.rs`.

use crate::support::{self, event, Fixture};
use base64::Engine as _;
use goose_ledger::canonical;
use goose_ledger::merkle::Frontier;
use goose_ledger::{Metadata, NewEvent, NoteKey, Seal, StreamId};
use sqlx::{Executor as _, PgPool, Row as _};

pub async fn superuser(f: &Fixture) -> PgPool {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .after_connect(|conn, _| {
            Box::pin(async move {
                // Triggers do not fire for replication sessions: what an attacker with
                // superuser access would do.
                conn.execute("SET session_replication_role = replica")
                    .await?;
                Ok(())
            })
        })
        .connect(f.database_url.as_deref().unwrap())
        .await
        .unwrap();
    pool
}

pub async fn filled(events: u64, checkpoints_at: &[u64]) -> Fixture {
    let f = support::postgres().await;
    for i in 0..events {
        if checkpoints_at.contains(&i) {
            f.ledger.sign_checkpoint(&f.log_key).await.unwrap();
        }
        let s = StreamId::new("widget", format!("w{}", i % 3)).unwrap();
        f.ledger
            .append(&s, i / 3, vec![event("Tick", i)])
            .await
            .unwrap();
    }
    if checkpoints_at.contains(&events) {
        f.ledger.sign_checkpoint(&f.log_key).await.unwrap();
    }
    assert!(f.verify().await.is_ok());
    f
}

async fn record_at(pool: &PgPool, position: i64) -> Vec<u8> {
    sqlx::query_scalar("SELECT record FROM ledger_events WHERE position = $1")
        .bind(position)
        .fetch_one(pool)
        .await
        .unwrap()
}

pub async fn expect_failure(f: &Fixture, position: u64, words: &str) {
    let failure = f.verify().await.expect_err("tampering must be detected");
    assert_eq!(failure.position, position, "{failure}");
    assert!(failure.problem.contains(words), "{failure}");
}

#[tokio::test]
async fn the_application_role_cannot_change_events_and_the_trigger_stops_everyone() {
    let f = filled(3, &[3]).await;
    let pool = PgPool::connect(f.database_url.as_deref().unwrap())
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    tx.execute("SET LOCAL ROLE goose_app").await.unwrap();
    let err = tx
        .execute("UPDATE ledger_events SET event_type = 'x' WHERE position = 0")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
    drop(tx);
    let mut tx = pool.begin().await.unwrap();
    tx.execute("SET LOCAL ROLE goose_app").await.unwrap();
    let err = tx
        .execute("DELETE FROM ledger_checkpoints")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
    drop(tx);
    // The owner (here a superuser) is stopped by the trigger.
    for sql in [
        "UPDATE ledger_events SET event_type = 'x' WHERE position = 0",
        "DELETE FROM ledger_events WHERE position = 2",
        "TRUNCATE ledger_events",
        "DELETE FROM ledger_checkpoints",
    ] {
        let err = pool.execute(sql).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(f.ledger.size().await.unwrap(), 3);
    assert!(f.verify().await.is_ok());
}

#[tokio::test]
async fn a_changed_payload_byte_is_found() {
    let f = filled(20, &[12]).await;
    let pool = superuser(&f).await;
    let mut rec = record_at(&pool, 7).await;
    let at = rec.windows(5).position(|w| w == b"\"n\":7").unwrap();
    rec[at + 4] = b'8';
    sqlx::query("UPDATE ledger_events SET record = $1 WHERE position = 7")
        .bind(&rec)
        .execute(&pool)
        .await
        .unwrap();
    expect_failure(&f, 7, "record altered").await;
    // Recomputing the digest too does not help: the Merkle nodes stored with it differ.
    sqlx::query("UPDATE ledger_events SET digest = $1 WHERE position = 7")
        .bind(&canonical::digest(&rec)[..])
        .execute(&pool)
        .await
        .unwrap();
    expect_failure(&f, 7, "subtree hashes differ").await;
}

#[tokio::test]
async fn a_deleted_row_is_found() {
    let f = filled(20, &[12]).await;
    let pool = superuser(&f).await;
    pool.execute("DELETE FROM ledger_events WHERE position = 5")
        .await
        .unwrap();
    expect_failure(&f, 5, "event missing").await;
}

#[tokio::test]
async fn rows_removed_from_the_tail_are_found() {
    let f = filled(20, &[20]).await;
    let pool = superuser(&f).await;
    pool.execute("DELETE FROM ledger_events WHERE position >= 17")
        .await
        .unwrap();
    pool.execute("UPDATE ledger_head SET size = 17")
        .await
        .unwrap();
    expect_failure(&f, 17, "events were removed").await;
}

#[tokio::test]
async fn two_swapped_rows_are_found() {
    let f = filled(20, &[12]).await;
    let pool = superuser(&f).await;
    for sql in [
        "UPDATE ledger_events SET position = 1000003 WHERE position = 3",
        "UPDATE ledger_events SET position = 3 WHERE position = 4",
        "UPDATE ledger_events SET position = 4 WHERE position = 1000003",
    ] {
        pool.execute(sql).await.unwrap();
    }
    expect_failure(&f, 3, "moved or swapped").await;
}

#[tokio::test]
async fn an_inserted_row_is_found() {
    let f = filled(20, &[12]).await;
    let pool = superuser(&f).await;
    // Make room at 6 and insert a well-formed event, chained to 5, written by a stranger's key.
    pool.execute("UPDATE ledger_events SET position = position + 1000000 WHERE position >= 6")
        .await
        .unwrap();
    pool.execute("UPDATE ledger_events SET position = position - 999999 WHERE position >= 1000000")
        .await
        .unwrap();
    let prev: Vec<u8> = sqlx::query_scalar("SELECT digest FROM ledger_events WHERE position = 5")
        .fetch_one(&pool)
        .await
        .unwrap();
    let stranger = NoteKey::generate("stranger").unwrap();
    let s = StreamId::new("widget", "forged").unwrap();
    let ev = NewEvent::json(
        "Approved",
        &serde_json::json!({"by": "nobody"}),
        Metadata::now("mallory"),
    )
    .unwrap();
    let content = canonical::encode_content(&s, 1, &ev, stranger.key_id());
    let record = canonical::encode_record(6, &prev.try_into().unwrap(), &content);
    sqlx::query(
        "INSERT INTO ledger_events (position, event_id, aggregate_type, aggregate_id, version, event_type, record, digest, subtrees) \
         VALUES (6, $1, 'widget', 'forged', 1, 'Approved', $2, $3, '')",
    )
    .bind(ev.event_id)
    .bind(&record)
    .bind(&canonical::digest(&record)[..])
    .execute(&pool)
    .await
    .unwrap();
    expect_failure(&f, 6, "unknown key").await;
}

#[tokio::test]
async fn a_forged_seal_is_found() {
    let f = filled(20, &[12]).await;
    let pool = superuser(&f).await;
    let seal: String = sqlx::query_scalar("SELECT seal FROM ledger_events WHERE position = 9")
        .fetch_one(&pool)
        .await
        .unwrap();
    // Same key name and hash, another signature: the note parses, the signature fails.
    let (body, sig) = seal.rsplit_once(' ').unwrap();
    let mut raw = base64::engine::general_purpose::STANDARD
        .decode(sig.trim())
        .unwrap();
    raw[10] ^= 1;
    let forged = format!(
        "{body} {}\n",
        base64::engine::general_purpose::STANDARD.encode(raw)
    );
    sqlx::query("UPDATE ledger_events SET seal = $1 WHERE position = 9")
        .bind(&forged)
        .execute(&pool)
        .await
        .unwrap();
    expect_failure(&f, 9, "does not verify").await;
}

#[tokio::test]
async fn a_tail_rewritten_after_a_checkpoint_is_found() {
    // Checkpoints at 4, 8 and 12. Someone holding the service key (but not the log key)
    // rewrites history from position 8 on, with a perfectly consistent chain, seals and
    // Merkle nodes: only the signed checkpoints can tell.
    let f = filled(20, &[4, 8, 12]).await;
    let pool = superuser(&f).await;
    let rows = sqlx::query("SELECT position, digest, record FROM ledger_events ORDER BY position")
        .fetch_all(&pool)
        .await
        .unwrap();
    let mut frontier = Frontier::default();
    let mut prev = [0u8; 32];
    for r in &rows[..8] {
        let d: Vec<u8> = r.get("digest");
        frontier.push(&d);
        prev = d.try_into().unwrap();
    }
    for r in &rows[8..] {
        let position: i64 = r.get("position");
        let record: Vec<u8> = r.get("record");
        let old = canonical::decode_record(&record, position as u64)
            .unwrap()
            .event;
        let forged = NewEvent {
            event_id: old.event_id,
            event_type: old.event_type.clone(),
            schema_version: old.schema_version.clone(),
            payload: br#"{"n":0,"note":"rewritten"}"#.to_vec(),
            metadata: old.metadata.clone(),
        };
        let content =
            canonical::encode_content(&old.stream, old.version, &forged, f.ledger.key().key_id());
        let rec = canonical::encode_record(position as u64, &prev, &content);
        let digest = canonical::digest(&rec);
        let (_, subtrees) = frontier.push(&digest);
        // Re-sealed with the stolen service key: every commit is one event here.
        let seal = Seal::sign(
            support::ORIGIN,
            position as u64,
            position as u64 + 1,
            &frontier.root(),
            f.ledger.key(),
        )
        .unwrap();
        sqlx::query(
            "UPDATE ledger_events SET record = $1, digest = $2, subtrees = $3, seal = $4 WHERE position = $5",
        )
        .bind(&rec)
        .bind(&digest[..])
        .bind(subtrees.concat())
        .bind(&seal.note)
        .bind(position)
        .execute(&pool)
        .await
        .unwrap();
        prev = digest;
    }
    sqlx::query("UPDATE ledger_head SET last_digest = $1")
        .bind(&prev[..])
        .execute(&pool)
        .await
        .unwrap();
    expect_failure(&f, 8, "fork").await;
}

#[tokio::test]
async fn one_process_leads_a_name_until_its_session_ends() {
    let f = support::postgres().await;
    let b = f.ledger.backend().clone();
    let mut first = b.try_lead("relay").await.unwrap().expect("nobody led yet");
    assert!(first.still_leads().await);
    // A second contender (another process would hold another session) is refused, for this
    // name only.
    assert!(b.try_lead("relay").await.unwrap().is_none());
    let other = b.try_lead("relay:rbac").await.unwrap();
    assert!(other.is_some());
    // The leader's session is terminated (as when its process dies or the server restarts):
    // it notices, and the contender takes over.
    let su = superuser(&f).await;
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_locks \
         WHERE locktype = 'advisory' AND pid <> pg_backend_pid() AND granted \
         AND ((classid::bigint << 32) | objid::bigint) = hashtextextended('goose.lead/relay', 0)",
    )
    .fetch_one(&su)
    .await
    .unwrap();
    assert_eq!(killed, 1);
    assert!(!first.still_leads().await);
    let mut second = support::eventually_some(|| {
        let b = b.clone();
        async move { b.try_lead("relay").await.unwrap() }
    })
    .await;
    assert!(second.still_leads().await);
    // Dropping leadership hands it on.
    drop(second);
    support::eventually_some(|| {
        let b = b.clone();
        async move { b.try_lead("relay").await.unwrap() }
    })
    .await;
}

#[tokio::test]
async fn commits_are_durable_whatever_the_servers_default() {
    // The database defaults to synchronous_commit=off (fast, and a common tuning); the
    // ledger's sessions turn it on, so an acknowledged append survives a server crash.
    let f = support::postgres().await;
    let url = f.database_url.as_deref().unwrap();
    let mut admin: sqlx::PgConnection = sqlx::Connection::connect(url).await.unwrap();
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    sqlx::query(&format!("ALTER DATABASE {db} SET synchronous_commit = off"))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut plain: sqlx::PgConnection = sqlx::Connection::connect(url).await.unwrap();
    let server: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(&mut plain)
        .await
        .unwrap();
    let backend = goose_ledger::postgres::PgBackend::connect(url)
        .await
        .unwrap();
    let ours: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(backend.pool())
        .await
        .unwrap();
    assert_eq!((server.as_str(), ours.as_str()), ("off", "on"));
}
