//! Checkpoints outside the database: `goosectl witness serve` as a separate process speaking
//! c2sp.org/tlog-witness, the log's publisher collecting its cosignatures, the checkpoint
//! directory, and clients that remember what they saw — against a database superuser who cuts
//! the log's tail and deletes every checkpoint row.

use crate::support::{fill, goosectl, postgres_ledger, run, KeyedLedger};
use goose_ledger::witness::{self, AddCheckpoint, WitnessKey};
use goose_ledger::{LedgerReader, NoteKey};
use goose_platform::checkpoints::{CheckpointPublisher, PublishConfig, WitnessClient};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A witness process; killed on drop.
struct WitnessProc {
    child: std::process::Child,
    url: String,
    key: WitnessKey,
}

impl Drop for WitnessProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_witness(dir: &Path, log_vkey: &str) -> WitnessProc {
    let port = goose_testkit::free_port().unwrap();
    let key_file = dir.join("witness.key");
    let child = goosectl()
        .args(["witness", "serve", "--key-file"])
        .arg(&key_file)
        .args(["--name", "witness.test/w1", "--state-dir"])
        .arg(dir.join("state"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--log", log_vkey])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    goose_testkit::eventually(Duration::from_secs(20), "witness listening", || async {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .ok()
            .map(|_| ())
    })
    .await
    .unwrap();
    let key = WitnessKey::of(&NoteKey::load(&key_file).unwrap());
    WitnessProc { child, url, key }
}

fn publisher(k: &KeyedLedger, w: &WitnessProc, dir: &Path) -> CheckpointPublisher {
    let log_key = NoteKey::load(&k.log_key_file).unwrap();
    CheckpointPublisher::new(
        (*k.ledger).clone(),
        Arc::new(log_key),
        PublishConfig {
            dir: Some(dir.join("checkpoints")),
            archive: None,
            witnesses: vec![
                WitnessClient::parse(&format!("{}@{}", w.key.to_text(), w.url)).unwrap(),
            ],
            threshold: 1,
        },
    )
    .unwrap()
}

async fn post(url: &str, body: String) -> (u16, String, String) {
    let resp = reqwest::Client::new()
        .post(format!("{url}/add-checkpoint"))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, resp.text().await.unwrap())
}

#[tokio::test]
async fn the_witness_speaks_tlog_witness_and_keeps_its_state_across_restarts() {
    let (k, _url) = postgres_ledger().await;
    let dir = tempfile::tempdir().unwrap();
    let w = start_witness(dir.path(), &k.log_key.vkey()).await;
    let reader: &LedgerReader = &k.ledger;
    fill(&k.ledger, 5).await;
    let cp5 = reader.checkpoint_now(&k.log_key).await.unwrap();
    let req = |old: u64, proof: Vec<[u8; 32]>, note: &str| {
        AddCheckpoint {
            old_size: old,
            proof,
            note: note.to_owned(),
        }
        .to_text()
    };
    // First contact: from the empty tree.
    let (status, _, body) = post(&w.url, req(0, vec![], &cp5.note)).await;
    assert_eq!(status, 200, "{body}");
    let cosigned = witness::add_cosignatures(&cp5.note, &body);
    assert!(witness::cosigned_by(&cosigned, &w.key).is_some(), "{body}");

    fill(&k.ledger, 4).await;
    let cp9 = reader.checkpoint_now(&k.log_key).await.unwrap();
    // A stale `old`: 409 with the size held, as text/x.tlog.size.
    let (status, ct, body) = post(&w.url, req(0, vec![], &cp9.note)).await;
    assert_eq!((status, body.trim()), (409, "5"));
    assert_eq!(ct, witness::SIZE_CONTENT_TYPE);
    // No proof: 422. The right proof: 200.
    let (status, _, _) = post(&w.url, req(5, vec![], &cp9.note)).await;
    assert_eq!(status, 422);
    let proof = reader.consistency_proof(5, 9).await.unwrap();
    let (status, _, body) = post(&w.url, req(5, proof, &cp9.note)).await;
    assert_eq!(status, 200, "{body}");
    // Not signed by the log: 403. Another log: 404. Garbage: 400.
    let stranger = NoteKey::generate("goose.test/ledger").unwrap();
    let forged = reader.checkpoint_now(&stranger).await.unwrap();
    assert_eq!(post(&w.url, req(9, vec![], &forged.note)).await.0, 403);
    let other_log = NoteKey::generate("other.test/log").unwrap();
    let other = reader.checkpoint_now(&other_log).await.unwrap();
    assert_eq!(post(&w.url, req(0, vec![], &other.note)).await.0, 404);
    assert_eq!(post(&w.url, "old x\n\n".into()).await.0, 400);

    // Restarted, it still holds size 9: nothing can make it forget and cosign a fork.
    drop(w);
    let w = start_witness(dir.path(), &k.log_key.vkey()).await;
    let (status, _, body) = post(&w.url, req(0, vec![], &cp5.note)).await;
    assert_eq!((status, body.trim()), (409, "9"));
}

#[tokio::test]
async fn a_cut_tail_with_every_checkpoint_deleted_is_caught_outside_the_database() {
    let (k, url) = postgres_ledger().await;
    let dir = tempfile::tempdir().unwrap();
    let w = start_witness(dir.path(), &k.log_key.vkey()).await;
    let publish = publisher(&k, &w, dir.path());
    fill(&k.ledger, 12).await;
    publish.publish_now().await.unwrap();
    fill(&k.ledger, 8).await;
    let cp = publish.publish_now().await.unwrap();
    assert_eq!(cp.checkpoint.size, 20);
    assert!(publish.policy().is_witnessed(&cp.note), "{}", cp.note);
    let verify = |extra: &[&str]| {
        let mut c = goosectl();
        c.args([
            "--database-url",
            &url,
            "verify",
            "--log-key",
            &k.log_key.vkey(),
        ])
        .args(extra)
        .arg("--keyring")
        .arg(&k.keyring_file);
        run(&mut c)
    };
    // A client verifies once and remembers the newest checkpoint.
    let client_state = dir.path().join("client");
    let state = ["--state-dir", client_state.to_str().unwrap()];
    let (code, out) = verify(&state);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("remembered checkpoint of size 20"), "{out}");

    // The superuser cuts the last 5 events (whole commits), fixes the head, and deletes every
    // checkpoint row. Every seal left verifies; nothing in the database remembers size 20.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::Executor::execute(conn, "SET session_replication_role = replica").await?;
                Ok(())
            })
        })
        .connect(&url)
        .await
        .unwrap();
    for sql in [
        "DELETE FROM ledger_events WHERE position >= 15",
        "UPDATE ledger_head SET size = 15, last_digest = (SELECT digest FROM ledger_events WHERE position = 14)",
        "DELETE FROM ledger_checkpoints",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }

    // A client without memory sees a consistent but unanchored log, and says so.
    let (code, out) = verify(&["--no-state"]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("UNANCHORED"), "{out}");
    // The client that remembers refuses it: events were removed.
    let (code, out) = verify(&state);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "FAILED at position 15: a signed checkpoint covers 20 events but the log has only 15"
        ),
        "{out}"
    );
    // So does anyone handed the checkpoint the directory sink kept.
    let kept: Vec<_> = std::fs::read_dir(dir.path().join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    let newest = kept.iter().max().unwrap();
    let (code, out) = verify(&[
        "--no-state",
        "--trusted-checkpoint",
        newest.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("events were removed"), "{out}");

    // The log grows back to 20 with other events and signs a checkpoint of size 20: the
    // witness holds the old 20 and refuses the fork; the log's publisher raises the alarm
    // (error log, failure counter) and the checkpoint is stored unwitnessed.
    fill(&k.ledger, 5).await;
    let forked = publish.publish_now().await.unwrap();
    assert_eq!(forked.checkpoint.size, 20);
    assert!(
        !publish.policy().is_witnessed(&forked.note),
        "{}",
        forked.note
    );
    let refused: Vec<_> = std::fs::read_dir(dir.path().join("state").join("refused"))
        .unwrap()
        .collect();
    assert_eq!(
        refused.len(),
        1,
        "the witness keeps the forked checkpoint as evidence"
    );
    // And a client holding both checkpoints of size 20 has the log key's own proof of a fork.
    let forked_file = dir.path().join("forked.checkpoint");
    std::fs::write(&forked_file, &forked.note).unwrap();
    let (code, out) = verify(&[
        "--no-state",
        "--trusted-checkpoint",
        newest.to_str().unwrap(),
        "--trusted-checkpoint",
        forked_file.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("fork"), "{out}");
    drop(w);
}

#[tokio::test]
async fn verify_consistency_proves_a_newer_checkpoint_extends_an_older_one() {
    let (k, url) = postgres_ledger().await;
    let dir = tempfile::tempdir().unwrap();
    fill(&k.ledger, 7).await;
    let old = k.ledger.sign_checkpoint(&k.log_key).await.unwrap();
    fill(&k.ledger, 6).await;
    let new = k.ledger.sign_checkpoint(&k.log_key).await.unwrap();
    let (old_f, new_f) = (dir.path().join("old"), dir.path().join("new"));
    std::fs::write(&old_f, &old.note).unwrap();
    std::fs::write(&new_f, &new.note).unwrap();
    let check = |a: &Path, b: &Path| {
        run(goosectl()
            .args(["--database-url", &url, "verify-consistency"])
            .arg(a)
            .arg(b)
            .args(["--log-key", &k.log_key.vkey(), "--no-state"]))
    };
    let (code, out) = check(&old_f, &new_f);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("size 13 extends the one of size 7"), "{out}");
    // A checkpoint of another history (signed by the log key: a fork) does not extend it.
    let mut other = goose_ledger::Checkpoint {
        origin: "goose.test/ledger".into(),
        size: 13,
        root: new.checkpoint.root,
    };
    other.root[0] ^= 1;
    std::fs::write(&new_f, other.sign(&k.log_key).unwrap().note).unwrap();
    let (code, out) = check(&old_f, &new_f);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("fork"), "{out}");
}

#[tokio::test]
async fn with_a_witness_policy_the_chain_watch_relies_only_on_witnessed_checkpoints() {
    let (k, _url) = postgres_ledger().await;
    let dir = tempfile::tempdir().unwrap();
    let w = start_witness(dir.path(), &k.log_key.vkey()).await;
    let log_vkey = goose_ledger::Vkey::parse(&k.log_key.vkey()).unwrap();
    let keyring = goosectl::keyfiles::read_keyring(&k.keyring_file).unwrap();
    let policy = goose_ledger::witness::WitnessPolicy {
        witnesses: vec![w.key.clone()],
        threshold: 1,
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let watch = goose_platform::chain_watch::ChainWatch::start(
        (*k.ledger).clone(),
        keyring,
        Some(log_vkey),
        policy,
        async move {
            let _ = stop_rx.await;
        },
    );
    fill(&k.ledger, 6).await;
    // Signed by the log key but cosigned by nobody: not relied on.
    k.ledger.sign_checkpoint(&k.log_key).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let fact = watch.fact();
    assert!(fact.failure.is_none(), "{fact:?}");
    assert_eq!(
        fact.newest_checkpoint, None,
        "an unwitnessed checkpoint was relied on"
    );
    // Published through the witness: relied on, and the fact says by how many.
    fill(&k.ledger, 3).await;
    let cp = publisher(&k, &w, dir.path()).publish_now().await.unwrap();
    let (size, fact) = goose_testkit::eventually(
        Duration::from_secs(20),
        "witnessed checkpoint relied on",
        || async { watch.fact().newest_checkpoint },
    )
    .await
    .unwrap();
    assert_eq!(size, cp.checkpoint.size);
    assert!(
        fact.note.contains("cosigned by 1 of 1 witnesses"),
        "{fact:?}"
    );
    let _ = stop_tx.send(());
}
