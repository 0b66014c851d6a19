//! The attacks of an adversary with PostgreSQL superuser rights and no key (and one with the
//! application role's rights), each caught by the mechanism that must catch it, at the first
//! changed position.

use crate::postgres::{expect_failure, filled, superuser};
use crate::support::{self, event, Fixture};
use goose_ledger::canonical;
use goose_ledger::merkle::Frontier;
use goose_ledger::{Ledger, SignedCheckpoint, StreamId};
use sqlx::{Executor as _, PgPool, Row as _};
use std::sync::Arc;

/// What the attacker does with the rows it wants: renumber them from 0 in `order` (old
/// positions), recompute every digest, chain link and stored Merkle node and the head, keep
/// each moved row's seal (no key to make new ones), and delete every checkpoint row.
async fn rebuild(pool: &PgPool, order: &[i64]) {
    let rows = sqlx::query(
        "SELECT position, event_id, aggregate_type, aggregate_id, version, event_type, record, seal \
         FROM ledger_events ORDER BY position",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    pool.execute("DELETE FROM ledger_events").await.unwrap();
    let mut frontier = Frontier::default();
    let mut prev = [0u8; 32];
    for (new_position, old) in order.iter().enumerate() {
        let r = &rows[*old as usize];
        let record: Vec<u8> = r.get("record");
        let content = canonical::decode_record(&record, 0)
            .unwrap()
            .content
            .to_vec();
        let rec = canonical::encode_record(new_position as u64, &prev, &content);
        let digest = canonical::digest(&rec);
        let (_, subtrees) = frontier.push(&digest);
        sqlx::query(
            "INSERT INTO ledger_events (position, event_id, aggregate_type, aggregate_id, version, \
             event_type, record, digest, subtrees, seal) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(new_position as i64)
        .bind(r.get::<uuid::Uuid, _>("event_id"))
        .bind(r.get::<String, _>("aggregate_type"))
        .bind(r.get::<String, _>("aggregate_id"))
        .bind(r.get::<i64, _>("version"))
        .bind(r.get::<String, _>("event_type"))
        .bind(&rec)
        .bind(&digest[..])
        .bind(subtrees.concat())
        .bind(r.get::<Option<String>, _>("seal"))
        .execute(pool)
        .await
        .unwrap();
        prev = digest;
    }
    sqlx::query("UPDATE ledger_head SET size = $1, last_digest = $2")
        .bind(order.len() as i64)
        .bind(&prev[..])
        .execute(pool)
        .await
        .unwrap();
    pool.execute("DELETE FROM ledger_checkpoints")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_middle_delete_with_a_full_rebuild_and_no_checkpoints_left_is_caught_by_the_seals() {
    let f = filled(20, &[10, 20]).await;
    let pool = superuser(&f).await;
    let order: Vec<i64> = (0..20).filter(|p| *p != 7).collect();
    rebuild(&pool, &order).await;
    expect_failure(
        &f,
        7,
        "the seal covers [8, 8] but sits on the commit [7, 7]",
    )
    .await;
    // Dropping the seals that no longer fit does not help: the rest is unsealed.
    pool.execute("UPDATE ledger_events SET seal = NULL WHERE position >= 7")
        .await
        .unwrap();
    expect_failure(&f, 7, "are not sealed").await;
}

#[tokio::test]
async fn a_reorder_with_a_full_rebuild_is_caught_by_the_seals() {
    let f = filled(20, &[20]).await;
    let pool = superuser(&f).await;
    let mut order: Vec<i64> = (0..20).collect();
    order.swap(11, 12);
    rebuild(&pool, &order).await;
    expect_failure(&f, 11, "sits on the commit [11, 11]").await;
}

#[tokio::test]
async fn a_seal_moved_with_its_commit_still_binds_the_tree_before_it() {
    // Commits of several events: the attacker deletes one event inside a commit and moves
    // the seal back by one to keep the commit's bounds plausible. The root no longer matches.
    let f = support::postgres().await;
    let s = StreamId::new("widget", "batch").unwrap();
    for b in 0..4u64 {
        let events = (0..5).map(|i| event("Tick", b * 5 + i)).collect();
        f.ledger.append(&s, b * 5, events).await.unwrap();
    }
    assert!(f.verify().await.is_ok());
    let pool = superuser(&f).await;
    let mut order: Vec<i64> = (0..20).collect();
    order.remove(7);
    rebuild(&pool, &order).await;
    // The commit [5, 9] lost an event: its seal (first 5, size 10) now sits on position 8.
    expect_failure(&f, 5, "commit [5, 8]").await;
}

#[tokio::test]
async fn a_cut_tail_with_checkpoints_deleted_is_caught_by_a_trusted_checkpoint() {
    let f = filled(20, &[12, 20]).await;
    // What a client kept from an earlier look: the newest checkpoint.
    let trusted = f.ledger.latest_checkpoint().await.unwrap().unwrap();
    let trusted = SignedCheckpoint::verify(&trusted.note, &f.log_vkey()).unwrap();
    let pool = superuser(&f).await;
    let order: Vec<i64> = (0..15).collect();
    rebuild(&pool, &order).await;
    // Whole commits cut off the end: every seal left verifies, and nothing in the database
    // remembers the longer log.
    let alone = f.verify().await.unwrap();
    assert_eq!(alone.events, 15);
    assert!(
        alone.checkpoints_verified.is_empty(),
        "no checkpoint is left to anchor this log"
    );
    let outcome = goose_ledger::verify::verify_backend(
        f.backend.clone(),
        f.keyring.clone(),
        &f.log_vkey(),
        vec![trusted],
        |_, _| {},
    )
    .await
    .unwrap();
    let failure = outcome.verdict.unwrap_err();
    assert_eq!(failure.position, 15, "{failure}");
    assert!(failure.problem.contains("events were removed"), "{failure}");
}

#[tokio::test]
async fn a_junk_checkpoint_row_is_an_intrusion_and_the_chain_is_still_verified() {
    let f = filled(10, &[5, 10]).await;
    let pool = superuser(&f).await;
    let junk_id: i64 = sqlx::query_scalar(
        "INSERT INTO ledger_checkpoints (tree_size, root, note) VALUES (1000000, '\\x00', 'junk') RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let outcome = f.verify_outcome().await;
    let report = outcome.verdict.expect("the chain itself is intact");
    assert_eq!(report.checkpoints_verified, vec![5, 10]);
    assert_eq!(outcome.intrusions.len(), 1);
    assert_eq!(outcome.intrusions[0].id, junk_id);
    assert_eq!(outcome.intrusions[0].size, 1_000_000);
    // The junk row claims a huge size; periodic signing goes on regardless.
    f.ledger
        .append(
            &StreamId::new("widget", "more").unwrap(),
            0,
            vec![event("Tick", 99)],
        )
        .await
        .unwrap();
    let signed = f
        .ledger
        .sign_checkpoint_if_grown(&f.log_key)
        .await
        .unwrap()
        .expect("the log grew past the newest valid checkpoint");
    assert_eq!(signed.checkpoint.size, 11);
    let (latest, intrusions) = f
        .ledger
        .latest_valid_checkpoint(&f.log_vkey(), 0)
        .await
        .unwrap();
    assert_eq!(latest.unwrap().checkpoint.size, 11);
    assert_eq!(intrusions.len(), 1);
}

/// A login role that is a member of `role`, as a service would log in.
async fn login_as(f: &Fixture, role: &str) -> String {
    let owner = PgPool::connect(f.database_url.as_deref().unwrap())
        .await
        .unwrap();
    let name = format!("svc_{}", uuid::Uuid::new_v4().simple());
    owner
        .execute(format!("CREATE ROLE {name} LOGIN IN ROLE {role}").as_str())
        .await
        .unwrap();
    let url = f.database_url.as_deref().unwrap();
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{name}@{host}")
}

#[tokio::test]
async fn the_application_role_appends_only_through_the_ledger_and_cannot_move_the_head() {
    let f = filled(5, &[5]).await;
    let app_url = login_as(&f, "goose_app").await;
    // A service logged in as the application role appends through the real path.
    let backend = Arc::new(
        goose_ledger::postgres::PgBackend::connect(&app_url)
            .await
            .unwrap(),
    );
    let key = goose_ledger::NoteKey::from_private_text(&f.ledger.key().to_private_text()).unwrap();
    let app = Ledger::open(backend, Arc::new(key), support::config())
        .await
        .unwrap();
    app.append(
        &StreamId::new("widget", "app").unwrap(),
        0,
        vec![event("Tick", 5)],
    )
    .await
    .unwrap();
    assert_eq!(f.ledger.size().await.unwrap(), 6);

    let pool = PgPool::connect(&app_url).await.unwrap();
    for sql in [
        "UPDATE ledger_head SET size = 3",
        "INSERT INTO ledger_checkpoints (tree_size, root, note) VALUES (1, '\\x00', 'junk')",
        "INSERT INTO ledger_events (position, event_id, aggregate_type, aggregate_id, version, event_type, record, digest, subtrees) \
         VALUES (6, gen_random_uuid(), 'a', 'b', 1, 'E', '\\x00', decode(repeat('00', 32), 'hex'), '')",
        "DELETE FROM ledger_events WHERE position = 5",
    ] {
        let err = pool.execute(sql).await.unwrap_err();
        assert!(err.to_string().contains("permission denied"), "{sql}: {err}");
    }
    // The append function refuses anything that does not continue the log at the head.
    let err = pool
        .execute(
            "SELECT ledger_append(ARRAY[3]::bigint[], ARRAY[gen_random_uuid()], ARRAY['a'], ARRAY['b'], \
             ARRAY[1]::bigint[], ARRAY['E'], ARRAY['\\x00'::bytea], ARRAY[decode(repeat('00', 32), 'hex')], \
             ARRAY[''::bytea], ARRAY['seal'])",
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("does not continue the log at position 6"),
        "{err}"
    );
    assert_eq!(f.ledger.size().await.unwrap(), 6);
    assert!(f.verify().await.is_ok());

    // Checkpoints are inserted by the checkpointer role.
    let cp_url = login_as(&f, "goose_checkpointer").await;
    let reader = goose_ledger::LedgerReader::new(Arc::new(
        goose_ledger::postgres::PgBackend::connect(&cp_url)
            .await
            .unwrap(),
    ));
    let signed = reader.sign_checkpoint(&f.log_key).await.unwrap();
    assert_eq!(signed.checkpoint.size, 6);
    assert_eq!(f.verify().await.unwrap().checkpoints_verified, vec![5, 6]);
}
