//! One suite, run unchanged against every backend.

use crate::support::{self, event, Fixture};
use futures::StreamExt as _;
use goose_ledger::merkle;
use goose_ledger::{Error, StreamId, TlogProof, Vkey};
use std::collections::HashSet;
use std::time::Duration;

macro_rules! conformance_suite {
    ($backend:ident) => {
        mod $backend {
            use super::*;
            async fn fixture() -> Fixture {
                support::$backend().await
            }
            #[tokio::test]
            async fn append_then_read_back() {
                append_then_read_back_impl(fixture().await).await
            }
            #[tokio::test]
            async fn stale_expected_version_is_a_conflict_and_writes_nothing() {
                stale_version_impl(fixture().await).await
            }
            #[tokio::test]
            async fn retry_with_same_ids_returns_original_positions() {
                idempotency_impl(fixture().await).await
            }
            #[tokio::test]
            async fn a_bad_batch_writes_nothing() {
                bad_batch_impl(fixture().await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_writers_are_seen_gap_free_by_a_tail() {
                concurrent_tail_impl(fixture().await).await
            }
            #[tokio::test]
            async fn proofs_and_checkpoints_verify() {
                proofs_impl(fixture().await).await
            }
            #[tokio::test]
            async fn two_writers_on_one_store_keep_one_chain() {
                two_writers_impl(fixture().await).await
            }
            #[tokio::test]
            async fn a_large_batch_is_written_whole() {
                large_batch_impl(fixture().await).await
            }
            #[tokio::test]
            async fn cursors_are_durable_and_monotonic() {
                cursors_impl(fixture().await).await
            }
        }
    };
}

conformance_suite!(postgres);
conformance_suite!(sqlite);

fn stream(id: &str) -> StreamId {
    StreamId::new("widget", id).unwrap()
}

async fn append_then_read_back_impl(f: Fixture) {
    let a = stream("a");
    let evs = vec![
        event("Created", 1),
        event("Renamed", 2),
        event("Renamed", 3),
    ];
    let receipt = f.ledger.append(&a, 0, evs.clone()).await.unwrap();
    assert_eq!(
        (
            receipt.first_position,
            receipt.last_position,
            receipt.stream_version
        ),
        (0, 2, 3)
    );
    f.ledger
        .append(&stream("b"), 0, vec![event("Created", 4)])
        .await
        .unwrap();

    let read = f.ledger.read_stream(&a, 1, 100).await.unwrap();
    assert_eq!(read.len(), 3);
    for (i, (got, sent)) in read.iter().zip(&evs).enumerate() {
        assert_eq!(got.version, i as u64 + 1);
        assert_eq!(got.position, i as u64);
        assert_eq!(got.event_id, sent.event_id);
        assert_eq!(got.payload, sent.payload, "payload bytes are kept verbatim");
        assert_eq!(got.metadata, sent.metadata);
        assert_eq!(got.key_id, f.ledger.key().key_id());
    }
    assert_eq!(f.ledger.read_stream(&a, 3, 100).await.unwrap().len(), 1);
    let all = f.ledger.read_all(0, 100).await.unwrap();
    assert_eq!(all.len(), 4);
    for w in all.windows(2) {
        assert_eq!(w[1].previous_digest, w[0].digest, "chain link");
    }
    assert_eq!(all[0].previous_digest, [0; 32]);
    assert_eq!(
        f.ledger.find_event(evs[1].event_id).await.unwrap().position,
        1
    );
    assert!(matches!(
        f.ledger.find_event(uuid::Uuid::new_v4()).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(f.ledger.size().await.unwrap(), 4);
    let report = f.verify().await.unwrap();
    assert_eq!(report.events, 4);
}

async fn stale_version_impl(f: Fixture) {
    let a = stream("a");
    f.ledger
        .append(&a, 0, vec![event("Created", 1)])
        .await
        .unwrap();
    let err = f
        .ledger
        .append(&a, 0, vec![event("Created", 2)])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                expected: 0,
                actual: 1,
                ..
            }
        ),
        "{err}"
    );
    let err = f
        .ledger
        .append(&a, 5, vec![event("X", 2)])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                expected: 5,
                actual: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(f.ledger.size().await.unwrap(), 1);
    f.ledger
        .append(&a, 1, vec![event("Renamed", 3)])
        .await
        .unwrap();
    assert_eq!(f.ledger.read_stream(&a, 1, 10).await.unwrap().len(), 2);
}

async fn idempotency_impl(f: Fixture) {
    let a = stream("a");
    let batch = vec![event("Created", 1), event("Renamed", 2)];
    let first = f.ledger.append(&a, 0, batch.clone()).await.unwrap();
    f.ledger
        .append(&stream("b"), 0, vec![event("Created", 3)])
        .await
        .unwrap();
    // The same batch again, as a client that lost the first reply would send it.
    let again = f.ledger.append(&a, 0, batch.clone()).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(
        (again.first_position, again.last_position),
        (first.first_position, first.last_position)
    );
    assert_eq!(f.ledger.size().await.unwrap(), 3);
    // Reusing one id for a different event is refused, and nothing is written.
    let mut other = event("Renamed", 9);
    other.event_id = batch[0].event_id;
    let err = f
        .ledger
        .append(&a, 2, vec![event("Renamed", 8), other])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::IdempotencyMismatch { .. }), "{err}");
    assert_eq!(f.ledger.size().await.unwrap(), 3);
}

async fn bad_batch_impl(f: Fixture) {
    let a = stream("a");
    let mut bad = event("Renamed", 2);
    bad.payload = b"{not json".to_vec();
    let err = f
        .ledger
        .append(&a, 0, vec![event("Created", 1), bad])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput(m) if m.contains("not valid JSON")),
        "{err}"
    );
    let mut bad_type = event("Created", 1);
    bad_type.event_type = "has.dot".into();
    assert!(matches!(
        f.ledger.append(&a, 0, vec![bad_type]).await,
        Err(Error::InvalidInput(_))
    ));
    let dup = event("Created", 1);
    assert!(matches!(
        f.ledger.append(&a, 0, vec![dup.clone(), dup]).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        f.ledger.append(&a, 0, vec![]).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(StreamId::new("bad type", "x").is_err());
    assert_eq!(f.ledger.size().await.unwrap(), 0);
    assert!(f.ledger.read_stream(&a, 1, 10).await.unwrap().is_empty());
}

async fn concurrent_tail_impl(f: Fixture) {
    const WRITERS: u64 = 8;
    const APPENDS: u64 = 25;
    let total = WRITERS * APPENDS * 2;
    let tail = tokio::spawn({
        let ledger = f.ledger.clone();
        async move {
            let mut seen = Vec::new();
            let mut s = Box::pin(ledger.tail(0));
            while (seen.len() as u64) < total {
                let ev = tokio::time::timeout(Duration::from_secs(60), s.next())
                    .await
                    .expect("tail stalled")
                    .expect("tail ended")
                    .expect("tail error");
                seen.push(ev.position);
            }
            seen
        }
    });
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let ledger = f.ledger.clone();
        writers.push(tokio::spawn(async move {
            let s = StreamId::new("widget", format!("w{w}")).unwrap();
            for i in 0..APPENDS {
                ledger
                    .append(&s, i * 2, vec![event("A", i), event("B", i)])
                    .await
                    .unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let seen = tail.await.unwrap();
    let expected: Vec<u64> = (0..total).collect();
    assert_eq!(seen, expected, "every position exactly once, in order");
    assert_eq!(f.verify().await.unwrap().events, total);
}

async fn proofs_impl(f: Fixture) {
    let vkey = Vkey::parse(&f.log_key.vkey()).unwrap();
    let empty = f.ledger.sign_checkpoint(&f.log_key).await.unwrap();
    assert_eq!(empty.checkpoint.size, 0);
    let mut ids = Vec::new();
    for i in 0..37u64 {
        let ev = event("Tick", i);
        ids.push(ev.event_id);
        f.ledger
            .append(&stream(&format!("s{}", i % 5)), i / 5, vec![ev])
            .await
            .unwrap();
        if i == 12 {
            f.ledger.sign_checkpoint(&f.log_key).await.unwrap();
        }
    }
    let cp = f.ledger.sign_checkpoint(&f.log_key).await.unwrap();
    assert_eq!(cp.checkpoint.size, 37);
    let latest = f.ledger.latest_checkpoint().await.unwrap().unwrap();
    assert_eq!(latest.note, cp.note);
    let all = f.ledger.read_all(0, 100).await.unwrap();
    for ev in &all {
        let proof = f.ledger.inclusion_proof(ev.position, 37).await.unwrap();
        merkle::verify_inclusion(
            ev.position,
            37,
            &merkle::leaf_hash(&ev.digest),
            &proof.hashes,
            &cp.checkpoint.root,
        )
        .unwrap();
        // The offline proof file round-trips and verifies with only the log's public key.
        let file = TlogProof {
            extra: Some(ev.record.clone()),
            index: ev.position,
            hashes: proof.hashes.clone(),
            checkpoint_note: cp.note.clone(),
        };
        let parsed = TlogProof::parse(&file.to_text()).unwrap();
        parsed.verify(&vkey, &ev.digest).unwrap();
        let mut wrong = ev.digest;
        wrong[0] ^= 1;
        assert!(parsed.verify(&vkey, &wrong).is_err());
        // Authorship: the event's commit seal and its path into the sealed tree.
        let authorship = f.ledger.authorship(ev.position).await.unwrap();
        let authored = authorship
            .verify(&f.keyring, crate::support::ORIGIN)
            .unwrap();
        assert_eq!(authored.event.event_id, ev.event_id);
        assert_eq!(authored.seal.key_id, f.ledger.key().key_id());
        assert!(authorship
            .verify(&goose_ledger::Keyring::new(), crate::support::ORIGIN)
            .is_err());
        assert!(authorship.verify(&f.keyring, "another/log").is_err());
    }
    for from in [0u64, 1, 5, 13, 16, 36, 37] {
        let proof = f.ledger.consistency_proof(from, 37).await.unwrap();
        let old_root = f.ledger.root(from).await.unwrap();
        merkle::verify_consistency(from, 37, &old_root, &cp.checkpoint.root, &proof).unwrap();
    }
    assert!(matches!(
        f.ledger.inclusion_proof(37, 37).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        f.ledger.consistency_proof(5, 38).await,
        Err(Error::InvalidInput(_))
    ));
    let report = f.verify().await.unwrap();
    assert_eq!(report.checkpoints_verified, vec![0, 13, 37]);
    assert_eq!(report.root, cp.checkpoint.root);
}

async fn two_writers_impl(mut f: Fixture) {
    let other = f.second_writer("other-service").await;
    for i in 0..20u64 {
        let (l, s) = if i % 2 == 0 {
            (&f.ledger, "x")
        } else {
            (&other, "y")
        };
        l.append(&stream(s), i / 2, vec![event("E", i)])
            .await
            .unwrap();
    }
    let all = f.ledger.read_all(0, 100).await.unwrap();
    let keys: HashSet<&str> = all.iter().map(|e| e.key_id.as_str()).collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(f.verify().await.unwrap().events, 20);
}

async fn cursors_impl(f: Fixture) {
    let b = f.ledger.backend();
    assert_eq!(b.load_cursor("relay").await.unwrap(), None);
    b.store_cursor("relay", 10).await.unwrap();
    b.store_cursor("relay", 4).await.unwrap();
    assert_eq!(b.load_cursor("relay").await.unwrap(), Some(10));
}

async fn large_batch_impl(f: Fixture) {
    // Large enough for the bulk (COPY) path of the PostgreSQL backend.
    let a = stream("bulk");
    f.ledger
        .append(&a, 0, vec![event("Seed", 0)])
        .await
        .unwrap();
    let batch: Vec<_> = (1..=500).map(|i| event("Bulk", i)).collect();
    let r = f.ledger.append(&a, 1, batch.clone()).await.unwrap();
    assert_eq!(
        (r.first_position, r.last_position, r.stream_version),
        (1, 500, 501)
    );
    let again = f.ledger.append(&a, 1, batch).await.unwrap();
    assert!(again.duplicate);
    let read = f.ledger.read_stream(&a, 1, 1000).await.unwrap();
    assert_eq!(read.len(), 501);
    assert_eq!(f.verify().await.unwrap().events, 501);
    let root = f.ledger.root(501).await.unwrap();
    let p = f.ledger.inclusion_proof(250, 501).await.unwrap();
    merkle::verify_inclusion(
        250,
        501,
        &merkle::leaf_hash(&read[250].digest),
        &p.hashes,
        &root,
    )
    .unwrap();
}
