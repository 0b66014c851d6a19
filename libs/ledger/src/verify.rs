//! Full-log verification: every digest, chain link, stored Merkle node and commit seal, and
//! the tree root against every signed checkpoint. Pure: rows go in, a verdict comes out; the
//! caller does the reading (and shows progress).

use crate::canonical;
use crate::checkpoint::SignedCheckpoint;
use crate::keys::{Keyring, Vkey};
use crate::merkle::Frontier;
use crate::seal::Seal;
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

/// A stored checkpoint row that is not a checkpoint this log signed: someone with database
/// rights inserted or altered it. Reported, skipped, and never trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("checkpoint row #{id} (size {size}): {problem}")]
pub struct Intrusion {
    pub id: i64,
    pub size: u64,
    pub problem: String,
}

/// Checks that a stored checkpoint row is a note signed by `log_key` whose columns match it.
pub fn check_stored_checkpoint(
    cp: &StoredCheckpoint,
    log_key: &Vkey,
) -> Result<SignedCheckpoint, Intrusion> {
    let intrusion = |problem: String| Intrusion {
        id: cp.id,
        size: cp.size,
        problem,
    };
    let s = SignedCheckpoint::verify(&cp.note, log_key).map_err(|e| intrusion(e.to_string()))?;
    if s.checkpoint.origin != log_key.name {
        return Err(intrusion(format!(
            "origin {:?} is not the log's {:?}",
            s.checkpoint.origin, log_key.name
        )));
    }
    if s.checkpoint.size != cp.size || s.checkpoint.root[..] != cp.root[..] {
        return Err(intrusion(
            "stored size/root columns differ from its signed note".into(),
        ));
    }
    Ok(s)
}

/// The outcome of a clean run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub events: u64,
    pub root: [u8; 32],
    /// Checkpoints whose root matched (tree sizes).
    pub checkpoints_verified: Vec<u64>,
    /// Commits whose seal verified.
    pub seals_verified: u64,
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
    origin: String,
    next: u64,
    previous: [u8; 32],
    frontier: Frontier,
    /// First position of the commit being read, and the writer its events name.
    group_start: u64,
    group_key: Option<String>,
    seals: u64,
    checkpoints: VecDeque<SignedCheckpoint>,
    verified: Vec<u64>,
    pending: Vec<PendingSignature>,
    intrusions: Vec<Intrusion>,
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
    /// Starts a verification of the log whose checkpoints `log_key` signs (its name is the
    /// log's origin, which every seal must name). Stored checkpoints that do not verify are
    /// set aside as [`Intrusion`]s; the chain is checked against the valid ones.
    pub fn new(keyring: Keyring, log_key: &Vkey, checkpoints: &[StoredCheckpoint]) -> Self {
        let mut v = Self {
            keyring,
            origin: log_key.name.clone(),
            next: 0,
            previous: [0; 32],
            frontier: Frontier::default(),
            group_start: 0,
            group_key: None,
            seals: 0,
            checkpoints: VecDeque::new(),
            verified: Vec::new(),
            pending: Vec::new(),
            intrusions: Vec::new(),
        };
        let mut signed = Vec::with_capacity(checkpoints.len());
        for cp in checkpoints {
            match check_stored_checkpoint(cp, log_key) {
                Ok(s) => signed.push(s),
                Err(i) => v.intrusions.push(i),
            }
        }
        v.add_trusted(signed);
        v
    }

    /// Adds checkpoints verified elsewhere (trusted files, a client's state, witnesses,
    /// checkpoint sinks). Each must match the log's root at its size, like stored ones.
    pub fn add_trusted(&mut self, checkpoints: impl IntoIterator<Item = SignedCheckpoint>) {
        let mut all: Vec<SignedCheckpoint> = self.checkpoints.drain(..).collect();
        all.extend(
            checkpoints
                .into_iter()
                .filter(|c| c.checkpoint.size >= self.next),
        );
        all.sort_by_key(|s| s.checkpoint.size);
        self.checkpoints = all.into();
    }

    /// Stored checkpoint rows that did not verify.
    pub fn intrusions(&self) -> &[Intrusion] {
        &self.intrusions
    }

    /// Queues a checkpoint signed after the run started, for a follower that verifies the log
    /// as it grows. It must cover at least the events verified so far. A row that does not
    /// verify is an intrusion: returned as such, and not queued.
    pub fn add_checkpoint(
        &mut self,
        cp: &StoredCheckpoint,
        log_key: &Vkey,
    ) -> Result<Result<(), Intrusion>, Failure> {
        let s = match check_stored_checkpoint(cp, log_key) {
            Ok(s) => s,
            Err(i) => {
                self.intrusions.push(i.clone());
                return Ok(Err(i));
            }
        };
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
        Ok(Ok(()))
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
            return self.fail(p, format!("written by unknown key {}", ev.key_id));
        }
        match &self.group_key {
            None => self.group_key = Some(ev.key_id.clone()),
            Some(k) if *k != ev.key_id => {
                return self.fail(
                    self.group_start,
                    format!(
                        "commit starting at {} is not sealed before an event by another writer ({} then {}): events were inserted or moved",
                        self.group_start, k, ev.key_id
                    ),
                );
            }
            Some(_) => {}
        }
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
        if let Some(note) = &row.seal {
            self.check_seal(note)?;
        }
        while let Some(cp) = self.checkpoints.front() {
            if cp.checkpoint.size > self.next {
                break;
            }
            if cp.checkpoint.size == self.next && cp.checkpoint.root != self.frontier.root() {
                // Seals before here verified (or will, at the flush that precedes this
                // failure), so the change is after the newest checkpoint that matched; with the
                // writers' keys intact a seal would have named the commit already.
                let since = self.verified.last().copied().unwrap_or(0);
                return self.fail(
                    since,
                    format!(
                        "tree of size {} does not match its signed checkpoint: events in [{since}, {}) were rewritten and re-sealed after it was signed (a writer's key was used; fork)",
                        cp.checkpoint.size, cp.checkpoint.size
                    ),
                );
            }
            let size = cp.checkpoint.size;
            if (size == self.next || size == 0) && self.verified.last() != Some(&size) {
                self.verified.push(size);
            }
            self.checkpoints.pop_front();
        }
        Ok(())
    }

    /// Checks the seal that ends the commit at `self.next - 1`; its signature is queued.
    fn check_seal(&mut self, note: &str) -> Result<(), Failure> {
        let start = self.group_start;
        let last = self.next - 1;
        let seal = Seal::parse(note).map_err(|e| Failure {
            position: start,
            problem: format!("commit [{start}, {last}]: {e}"),
        })?;
        let problem = if seal.origin != self.origin {
            Some(format!(
                "sealed for log {:?}, not {:?}",
                seal.origin, self.origin
            ))
        } else if seal.size != self.next || seal.first != start {
            Some(format!(
                "the seal covers [{}, {}] but sits on the commit [{start}, {last}]: events were removed, inserted or moved",
                seal.first,
                seal.last()
            ))
        } else if seal.root != self.frontier.root() {
            Some(format!(
                "the log's tree at size {} differs from the one its seal signed: events at or after {start} were changed",
                self.next
            ))
        } else if Some(&seal.key_id) != self.group_key.as_ref() {
            Some(format!(
                "sealed by {} but its events name {}",
                seal.key_id,
                self.group_key.as_deref().unwrap_or("nobody")
            ))
        } else if self.keyring.get(&seal.key_id).is_none() {
            Some(format!("sealed by unknown key {}", seal.key_id))
        } else {
            None
        };
        if let Some(problem) = problem {
            return self.fail(start, format!("commit [{start}, {last}]: {problem}"));
        }
        self.pending.push(PendingSignature {
            position: start,
            message: seal.message().into_bytes(),
            key_id: seal.key_id,
            signature: seal.signature,
        });
        self.seals += 1;
        self.group_start = self.next;
        self.group_key = None;
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
            Some((position, key_id)) => self.fail(
                position,
                format!("the seal of the commit starting here, by {key_id}, does not verify: the commit was altered or its seal forged"),
            ),
        }
    }

    /// Ends the run; `head_size` is the size the store's head claims.
    pub fn finish(mut self, head_size: u64) -> Result<Report, Failure> {
        self.flush_signatures()?;
        if self.group_start < self.next {
            return self.fail(
                self.group_start,
                format!(
                    "events [{}, {}) are not sealed: a commit's seal was removed, or events were appended outside the ledger",
                    self.group_start, self.next
                ),
            );
        }
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
            seals_verified: self.seals,
        })
    }
}

/// What a full run found: the verdict on the chain, and the checkpoint rows set aside.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub verdict: Result<Report, Failure>,
    pub intrusions: Vec<Intrusion>,
}

/// Reads the whole log from `backend` and verifies it, against its stored checkpoints and the
/// `trusted` ones (verified by the caller: files, a client's state, witnesses).
/// `progress(done, total)` is called after every batch. The `Result` is an I/O failure.
pub async fn verify_backend(
    backend: std::sync::Arc<dyn crate::Backend>,
    keyring: Keyring,
    log_key: &Vkey,
    trusted: Vec<SignedCheckpoint>,
    mut progress: impl FnMut(u64, u64),
) -> crate::Result<Outcome> {
    const BATCH: u32 = 5_000;
    let checkpoints = backend.checkpoints().await?;
    let head = backend.size().await?;
    let mut verifier = Verifier::new(keyring, log_key, &checkpoints);
    verifier.add_trusted(trusted);
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
            return Ok(Outcome {
                intrusions: verifier.intrusions.clone(),
                verdict: Err(f),
            });
        }
        progress(verifier.position(), head.max(verifier.position()));
    }
    let intrusions = verifier.intrusions.clone();
    Ok(Outcome {
        verdict: verifier.finish(head),
        intrusions,
    })
}
