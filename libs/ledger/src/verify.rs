//! Full-log verification: every digest, chain link, signature and stored Merkle node, and the
//! tree root against every signed checkpoint. Pure: rows go in, a verdict comes out; the caller
//! does the reading (and shows progress).

use crate::canonical;
use crate::checkpoint::SignedCheckpoint;
use crate::keys::{Keyring, Vkey};
use crate::merkle::Frontier;
use crate::store::{StoredCheckpoint, StoredRow};
use std::collections::VecDeque;

/// What is wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("position {position}: {problem}")]
pub struct Failure {
    /// The first position found bad.
    pub position: u64,
    pub problem: String,
}

/// The outcome of a clean run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub events: u64,
    pub root: [u8; 32],
    /// Checkpoints whose root matched (tree sizes).
    pub checkpoints_verified: Vec<u64>,
}

struct PendingSignature {
    position: u64,
    key_id: String,
    message: Vec<u8>,
    signature: [u8; 64],
}

/// Feeds on rows in position order.
pub struct Verifier {
    keyring: Keyring,
    next: u64,
    previous: [u8; 32],
    frontier: Frontier,
    checkpoints: VecDeque<SignedCheckpoint>,
    verified: Vec<u64>,
    pending: Vec<PendingSignature>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("next", &self.next)
            .finish()
    }
}

const SIGNATURE_BATCH: usize = 2048;

type Prepared<'a> = ([u8; 32], crate::Result<canonical::DecodedRecord<'a>>);

/// Digest and decode of each row, computed on all cores.
fn prepare_parallel(rows: &[StoredRow]) -> Vec<Prepared<'_>> {
    fn prepare(row: &StoredRow) -> Prepared<'_> {
        let digest = canonical::digest(&row.record);
        (
            digest,
            canonical::decode_record_with_digest(&row.record, row.position, digest),
        )
    }
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    if threads == 1 || rows.len() < 256 {
        return rows.iter().map(prepare).collect();
    }
    let chunk = rows.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = rows
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(prepare).collect::<Vec<_>>()))
            .collect();
        let mut out = Vec::with_capacity(rows.len());
        for (h, part) in handles.into_iter().zip(rows.chunks(chunk)) {
            // A panicked worker leaves its rows to be prepared here instead.
            out.extend(
                h.join()
                    .unwrap_or_else(|_| part.iter().map(prepare).collect()),
            );
        }
        out
    })
}

impl Verifier {
    /// Starts a verification. Every stored checkpoint must carry a valid signature by `log_key`.
    pub fn new(
        keyring: Keyring,
        log_key: &Vkey,
        checkpoints: &[StoredCheckpoint],
    ) -> Result<Self, Failure> {
        let mut signed = Vec::with_capacity(checkpoints.len());
        for cp in checkpoints {
            let s = SignedCheckpoint::verify(&cp.note, log_key).map_err(|e| Failure {
                position: cp.size,
                problem: format!("checkpoint #{} (size {}): {e}", cp.id, cp.size),
            })?;
            if s.checkpoint.size != cp.size || s.checkpoint.root[..] != cp.root[..] {
                return Err(Failure {
                    position: cp.size,
                    problem: format!(
                        "checkpoint #{}: stored size/root columns differ from its signed note",
                        cp.id
                    ),
                });
            }
            signed.push(s);
        }
        signed.sort_by_key(|s| s.checkpoint.size);
        Ok(Self {
            keyring,
            next: 0,
            previous: [0; 32],
            frontier: Frontier::default(),
            checkpoints: signed.into(),
            verified: Vec::new(),
            pending: Vec::new(),
        })
    }

    /// Queues a checkpoint signed after the run started, for a follower that verifies the log
    /// as it grows. It must cover at least the events verified so far.
    pub fn add_checkpoint(&mut self, cp: &StoredCheckpoint, log_key: &Vkey) -> Result<(), Failure> {
        let s = SignedCheckpoint::verify(&cp.note, log_key).map_err(|e| Failure {
            position: cp.size,
            problem: format!("checkpoint #{} (size {}): {e}", cp.id, cp.size),
        })?;
        if s.checkpoint.size != cp.size || s.checkpoint.root[..] != cp.root[..] {
            return self.fail(
                cp.size,
                format!(
                    "checkpoint #{}: stored size/root columns differ from its signed note",
                    cp.id
                ),
            );
        }
        if cp.size < self.next {
            return self.fail(
                cp.size,
                format!(
                    "checkpoint of size {} is behind the {} events verified",
                    cp.size, self.next
                ),
            );
        }
        if self
            .checkpoints
            .back()
            .is_none_or(|b| b.checkpoint.size < cp.size)
        {
            self.checkpoints.push_back(s);
        }
        Ok(())
    }

    /// Checks every signature queued so far (they are batched otherwise).
    pub fn flush(&mut self) -> Result<(), Failure> {
        self.flush_signatures()
    }

    /// Tree sizes of the checkpoints whose root matched so far.
    pub fn checkpoints_verified(&self) -> &[u64] {
        &self.verified
    }

    /// Events verified so far.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Checks the next rows.
    pub fn push_rows(&mut self, rows: &[StoredRow]) -> Result<(), Failure> {
        // Hashing and decoding are independent per row: do them on every core first, then run
        // the order-dependent checks in sequence.
        let prepared = prepare_parallel(rows);
        for (row, (digest, decoded)) in rows.iter().zip(prepared) {
            if let Err(f) = self.push(row, digest, decoded) {
                // A signature problem earlier in the pending batch comes first.
                self.flush_signatures()?;
                return Err(f);
            }
            if self.pending.len() >= SIGNATURE_BATCH {
                self.flush_signatures()?;
            }
        }
        Ok(())
    }

    fn fail<T>(&self, position: u64, problem: impl Into<String>) -> Result<T, Failure> {
        Err(Failure {
            position,
            problem: problem.into(),
        })
    }

    fn push(
        &mut self,
        row: &StoredRow,
        digest: [u8; 32],
        decoded: crate::Result<canonical::DecodedRecord<'_>>,
    ) -> Result<(), Failure> {
        let p = self.next;
        if row.position > p {
            return self.fail(
                p,
                format!(
                    "event missing: the next stored event is at position {}",
                    row.position
                ),
            );
        }
        if row.position < p {
            return self.fail(row.position, "position stored twice or out of order");
        }
        if row.digest[..] != digest[..] {
            return self.fail(
                p,
                "stored digest does not match the record bytes (record altered)",
            );
        }
        let decoded = decoded.map_err(|e| Failure {
            position: p,
            problem: e.to_string(),
        })?;
        let ev = &decoded.event;
        if ev.position != p {
            return self.fail(
                p,
                format!(
                    "record was written for position {} (events moved or swapped)",
                    ev.position
                ),
            );
        }
        if self.keyring.get(&ev.key_id).is_none() {
            return self.fail(p, format!("signed by unknown key {}", ev.key_id));
        }
        // Queued before the structural checks below: when one of them fails, the pending batch
        // (this row included) is checked first, so a forged signature is named as such.
        self.pending.push(PendingSignature {
            position: p,
            key_id: ev.key_id.clone(),
            message: canonical::signing_message(decoded.content),
            signature: ev.signature,
        });
        if ev.previous_digest != self.previous {
            return self.fail(
                p,
                "chain link broken: previous digest does not match the event before it",
            );
        }
        let (_, completed) = self.frontier.push(&digest);
        if completed.concat() != row.subtrees {
            return self.fail(
                p,
                "stored Merkle subtree hashes differ from the recomputed ones",
            );
        }
        self.previous = digest;
        self.next += 1;
        while let Some(cp) = self.checkpoints.front() {
            if cp.checkpoint.size > self.next {
                break;
            }
            if cp.checkpoint.size == self.next && cp.checkpoint.root != self.frontier.root() {
                let since = self.verified.last().copied().unwrap_or(0);
                return self.fail(
                    since,
                    format!(
                        "tree of size {} does not match its signed checkpoint: events in [{since}, {}) were rewritten after it was signed (fork)",
                        cp.checkpoint.size, cp.checkpoint.size
                    ),
                );
            }
            if cp.checkpoint.size == self.next || cp.checkpoint.size == 0 {
                self.verified.push(cp.checkpoint.size);
            }
            self.checkpoints.pop_front();
        }
        Ok(())
    }

    fn flush_signatures(&mut self) -> Result<(), Failure> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // Batch verification, split over the cores: signatures are most of verify's work.
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let chunk = self.pending.len().div_ceil(threads).max(64);
        let keyring = &self.keyring;
        let first_bad = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .pending
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        let items: Vec<(&str, &[u8], &[u8; 64])> = part
                            .iter()
                            .map(|s| (s.key_id.as_str(), s.message.as_slice(), &s.signature))
                            .collect();
                        keyring.verify_batch(&items).err().map(|i| part[i].position)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join())
                .collect::<Result<Vec<Option<u64>>, _>>()
        });
        let from = self.pending.first().map_or(0, |s| s.position);
        let Ok(results) = first_bad else {
            self.pending.clear();
            return self.fail(
                from,
                "signature verification crashed; nothing past here is verified",
            );
        };
        let bad = results.into_iter().flatten().min().and_then(|position| {
            self.pending
                .iter()
                .find(|s| s.position == position)
                .map(|s| (position, s.key_id.clone()))
        });
        self.pending.clear();
        match bad {
            None => Ok(()),
            Some((position, key_id)) => {
                self.fail(position, format!("signature by {key_id} does not verify"))
            }
        }
    }

    /// Ends the run; `head_size` is the size the store's head claims.
    pub fn finish(mut self, head_size: u64) -> Result<Report, Failure> {
        self.flush_signatures()?;
        if head_size != self.next {
            return self.fail(
                self.next.min(head_size),
                format!(
                    "the log head says {head_size} events but {} were found",
                    self.next
                ),
            );
        }
        if let Some(cp) = self.checkpoints.front() {
            return self.fail(
                self.next,
                format!(
                    "a signed checkpoint covers {} events but the log has only {}: events were removed",
                    cp.checkpoint.size, self.next
                ),
            );
        }
        Ok(Report {
            events: self.next,
            root: self.frontier.root(),
            checkpoints_verified: self.verified,
        })
    }
}

/// Reads the whole log from `backend` and verifies it. `progress(done, total)` is called after
/// every batch. The outer `Result` is an I/O failure; the inner one the verdict.
pub async fn verify_backend(
    backend: std::sync::Arc<dyn crate::Backend>,
    keyring: Keyring,
    log_key: &Vkey,
    mut progress: impl FnMut(u64, u64),
) -> crate::Result<Result<Report, Failure>> {
    const BATCH: u32 = 5_000;
    let checkpoints = backend.checkpoints().await?;
    let head = backend.size().await?;
    let mut verifier = match Verifier::new(keyring, log_key, &checkpoints) {
        Ok(v) => v,
        Err(f) => return Ok(Err(f)),
    };
    // A reader task keeps the next batches coming while this task checks the current one.
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    let reader = tokio::spawn(async move {
        let mut from = 0;
        loop {
            let rows = backend.read_rows(from, BATCH).await;
            let done = matches!(&rows, Ok(r) if r.is_empty()) || rows.is_err();
            if let Ok(r) = &rows {
                from = r.last().map_or(from, |r| r.position + 1);
            }
            if tx.send(rows).await.is_err() || done {
                return;
            }
        }
    });
    while let Some(rows) = rx.recv().await {
        let rows = rows?;
        if rows.is_empty() {
            break;
        }
        if let Err(f) = verifier.push_rows(&rows) {
            reader.abort();
            return Ok(Err(f));
        }
        progress(verifier.position(), head.max(verifier.position()));
    }
    Ok(verifier.finish(head))
}
