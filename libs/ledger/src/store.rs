//! [`Ledger`]: appends (group-committed by one task per process), reads, tails, proofs and
//! checkpoints, over a [`Backend`].

use crate::canonical;
use crate::checkpoint::{Checkpoint, SignedCheckpoint};
use crate::event::{AppendReceipt, NewEvent, RecordedEvent, StreamId};
use crate::keys::{NoteKey, Vkey};
use crate::merkle::{self, Frontier, Hash, NodeId, ProofPlan};
use crate::seal::{Authorship, Sealer};
use crate::sequencer::{AppendRequest, PreparedEvent};
use crate::{Error, Result};
use futures::Stream;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

/// A stored row, as read back.
#[derive(Debug, Clone)]
pub struct StoredRow {
    pub position: u64,
    pub record: Vec<u8>,
    pub digest: Vec<u8>,
    pub subtrees: Vec<u8>,
    /// The seal note of the commit this row ends (None inside a commit).
    pub seal: Option<String>,
}

impl StoredRow {
    /// Decodes the record, checking that it is the row it claims to be.
    pub fn decode(&self) -> Result<RecordedEvent> {
        let decoded = canonical::decode_record(&self.record, self.position)?;
        if decoded.event.position != self.position {
            return Err(Error::Corrupt {
                position: self.position,
                reason: format!("record says position {}", decoded.event.position),
            });
        }
        Ok(decoded.event)
    }
}

/// A checkpoint as kept by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub id: i64,
    pub size: u64,
    pub root: Vec<u8>,
    pub note: String,
}

/// Storage for the ledger. Implemented by PostgreSQL and SQLite; every implementation passes the
/// conformance suite in `tests/it/conformance.rs`.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug + 'static {
    /// Commits a group of requests in one transaction that holds the log's head lock. `frontier`
    /// is the caller's cache of the Merkle right edge; the backend reloads it when stale and
    /// clears it on failure.
    #[doc(hidden)]
    async fn commit_group(
        &self,
        requests: &[AppendRequest],
        frontier: &mut Option<crate::sequencer::Head>,
        sealer: &Sealer,
    ) -> Result<Vec<Result<AppendReceipt>>>;

    /// Number of committed events.
    async fn size(&self) -> Result<u64>;
    /// Rows `[from, from + limit)` in position order.
    async fn read_rows(&self, from: u64, limit: u32) -> Result<Vec<StoredRow>>;
    /// Rows of one stream with version >= `from_version`, in version order.
    async fn read_stream_rows(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: u32,
    ) -> Result<Vec<StoredRow>>;
    /// The rows at the given positions (any order; missing ones are left out).
    async fn rows_at(&self, positions: &[u64]) -> Result<Vec<StoredRow>>;
    /// The row of an event id.
    async fn find_event(&self, event_id: Uuid) -> Result<Option<StoredRow>>;
    /// The first row at or after `position` that ends a commit: its position and seal note.
    async fn seal_at_or_after(&self, position: u64) -> Result<Option<(u64, String)>>;
    async fn insert_checkpoint(&self, size: u64, root: &[u8], note: &str) -> Result<i64>;
    async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>>;
    /// Stored checkpoints of tree size `min_size` or more, largest (then newest) first, at most
    /// `limit`.
    async fn checkpoints_from(&self, min_size: u64, limit: u32) -> Result<Vec<StoredCheckpoint>>;
    /// A named durable cursor (next position to process), e.g. the outbox relay's progress.
    async fn load_cursor(&self, name: &str) -> Result<Option<u64>>;
    async fn store_cursor(&self, name: &str, next_position: u64) -> Result<()>;
    /// Pushes the committed size whenever another process commits. Runs until `sender` closes.
    async fn watch_commits(&self, sender: watch::Sender<u64>);
    /// Tries to become the one leader of `name` among the processes sharing this store
    /// (e.g. the outbox relay). `None`: another process leads. Leadership ends when the
    /// returned value is dropped or the process dies (PostgreSQL: a session advisory lock,
    /// released by the server when the session ends).
    async fn try_lead(&self, name: &str) -> Result<Option<Box<dyn Leadership>>>;
}

/// Held leadership of a name (see [`Backend::try_lead`]).
#[async_trait::async_trait]
pub trait Leadership: Send + Sync + std::fmt::Debug {
    /// Whether this process still leads: false once the session holding it is gone (the
    /// database restarted, the connection broke), after which another process may lead.
    async fn still_leads(&mut self) -> bool;
}

/// The log origin used when none is configured (`GOOSE_LOG_ORIGIN`).
pub const DEFAULT_ORIGIN: &str = "goose.example/ledger";

/// Tunables.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// The log's origin (checkpoint origin = the log key's name): every commit seal names it.
    pub origin: String,
    /// Largest payload accepted, in bytes.
    pub max_payload_bytes: usize,
    /// Largest number of events in one append.
    pub max_batch_events: usize,
    /// How many events the committer gathers into one transaction at most.
    pub max_group_events: usize,
    /// Called on each event's metadata attributes before it is encoded: the platform adds the
    /// appending span's W3C trace context (`traceparent`), which the relay then puts in the
    /// bus message's headers. The attributes are part of the hashed record.
    pub stamp: Option<fn(&mut std::collections::BTreeMap<String, String>)>,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            origin: DEFAULT_ORIGIN.to_owned(),
            max_payload_bytes: 1 << 20,
            max_batch_events: 10_000,
            max_group_events: 10_000,
            stamp: None,
        }
    }
}

struct Job {
    request: AppendRequest,
    reply: oneshot::Sender<Result<AppendReceipt>>,
}

/// An inclusion proof against a tree size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    pub index: u64,
    pub size: u64,
    pub hashes: Vec<Hash>,
}

/// The ledger handle. Cheap to clone.
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("backend", &self.inner.reader.backend)
            .field("key_id", &self.inner.key.key_id())
            .finish()
    }
}

struct Inner {
    reader: LedgerReader,
    key: Arc<NoteKey>,
    config: LedgerConfig,
    jobs: mpsc::Sender<Job>,
    committed: watch::Receiver<u64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl std::ops::Deref for Ledger {
    type Target = LedgerReader;
    fn deref(&self) -> &LedgerReader {
        &self.inner.reader
    }
}

impl Ledger {
    /// Opens a ledger on `backend`, signing what it appends with `key`.
    pub async fn open(
        backend: Arc<dyn Backend>,
        key: Arc<NoteKey>,
        config: LedgerConfig,
    ) -> Result<Self> {
        let size = backend.size().await?;
        let (committed_tx, committed) = watch::channel(size);
        let (jobs, rx) = mpsc::channel(4096);
        let sealer = Sealer {
            origin: config.origin.clone(),
            key: key.clone(),
        };
        // Fail now, not at the first commit, on an origin no seal can carry.
        sealer.seal(0, 1, &merkle::empty_root())?;
        let committer = tokio::spawn(run_committer(
            backend.clone(),
            rx,
            committed_tx.clone(),
            config.max_group_events,
            sealer,
        ));
        let watcher = {
            let backend = backend.clone();
            tokio::spawn(async move { backend.watch_commits(committed_tx).await })
        };
        Ok(Self {
            inner: Arc::new(Inner {
                reader: LedgerReader::new(backend),
                key,
                config,
                jobs,
                committed,
                tasks: vec![committer, watcher],
            }),
        })
    }

    /// The key this ledger handle seals its commits with.
    pub fn key(&self) -> &NoteKey {
        &self.inner.key
    }

    /// The log's origin, as every seal names it.
    pub fn origin(&self) -> &str {
        &self.inner.config.origin
    }

    /// Appends `events` to `stream`, which must be at `expected_version` (0 for a new stream).
    /// All or nothing; a retry with the same event ids returns the original positions.
    pub async fn append(
        &self,
        stream: &StreamId,
        expected_version: u64,
        mut events: Vec<NewEvent>,
    ) -> Result<AppendReceipt> {
        if let Some(stamp) = self.inner.config.stamp {
            for ev in &mut events {
                stamp(&mut ev.metadata.attributes);
            }
        }
        if events.is_empty() {
            return Err(Error::InvalidInput(
                "an append needs at least one event".into(),
            ));
        }
        if events.len() > self.inner.config.max_batch_events {
            return Err(Error::InvalidInput(format!(
                "a batch holds at most {} events, got {}",
                self.inner.config.max_batch_events,
                events.len()
            )));
        }
        let mut prepared = Vec::with_capacity(events.len());
        let mut seen = std::collections::HashSet::new();
        for (i, ev) in events.iter().enumerate() {
            ev.validate()?;
            if ev.payload.len() > self.inner.config.max_payload_bytes {
                return Err(Error::InvalidInput(format!(
                    "payload of event {} is {} bytes; the limit is {}",
                    ev.event_id,
                    ev.payload.len(),
                    self.inner.config.max_payload_bytes
                )));
            }
            if !seen.insert(ev.event_id) {
                return Err(Error::InvalidInput(format!(
                    "event id {} appears twice in one batch",
                    ev.event_id
                )));
            }
            // Encode here, in the caller's task, so the commit lock is held only for hashing,
            // the commit's one seal signature and I/O.
            let content = canonical::encode_content(
                stream,
                expected_version + 1 + i as u64,
                ev,
                self.inner.key.key_id(),
            );
            prepared.push(PreparedEvent {
                event_id: ev.event_id,
                event_type: ev.event_type.clone(),
                content,
            });
        }
        let span = tracing::debug_span!(
            "append",
            stream = %stream,
            expected_version,
            events = prepared.len(),
            first_event_id = %prepared[0].event_id
        );
        let submit = async move {
            let (reply, answer) = oneshot::channel();
            self.inner
                .jobs
                .send(Job {
                    request: AppendRequest {
                        stream: stream.clone(),
                        expected_version,
                        events: prepared,
                    },
                    reply,
                })
                .await
                .map_err(|_| Error::Closed)?;
            answer.await.map_err(|_| Error::Closed)?
        };
        tracing::Instrument::instrument(submit, span).await
    }

    /// Waits until the committed size exceeds `known` (or `timeout` passes); returns the size.
    pub async fn wait_for_commit(&self, known: u64, timeout: Duration) -> Result<u64> {
        let mut rx = self.inner.committed.clone();
        let waited = tokio::time::timeout(timeout, async {
            rx.wait_for(|size| *size > known).await.map(|s| *s)
        })
        .await;
        match waited {
            Ok(Ok(size)) => Ok(size),
            Ok(Err(_)) => Err(Error::Closed),
            // A missed notification (another process, dropped LISTEN) is caught by asking.
            Err(_) => self.size().await,
        }
    }

    /// A live tail of the log from position `from`: every committed event, in order, forever.
    pub fn tail(&self, from: u64) -> impl Stream<Item = Result<RecordedEvent>> + Send + 'static {
        let ledger = self.clone();
        futures::stream::unfold(
            (ledger, from, std::collections::VecDeque::new()),
            |(ledger, mut next, mut buf)| async move {
                loop {
                    if let Some(ev) = buf.pop_front() {
                        return Some((Ok(ev), (ledger, next, buf)));
                    }
                    match ledger.read_all(next, 512).await {
                        Ok(batch) if !batch.is_empty() => {
                            next += batch.len() as u64;
                            buf.extend(batch);
                        }
                        Ok(_) => {
                            if let Err(e) =
                                ledger.wait_for_commit(next, Duration::from_secs(1)).await
                            {
                                return Some((Err(e), (ledger, next, buf)));
                            }
                        }
                        Err(e) => return Some((Err(e), (ledger, next, buf))),
                    }
                }
            },
        )
    }
}

/// Read-only access to a ledger: reads, proofs, checkpoints. [`Ledger`] derefs to it, and
/// tools that never append (verify, proof export) use it alone.
#[derive(Debug, Clone)]
pub struct LedgerReader {
    backend: Arc<dyn Backend>,
    node_cache: Arc<parking_lot::Mutex<HashMap<NodeId, Hash>>>,
}

/// Subtrees of at least 2^6 leaves are cached: about n/32 entries, most of every proof.
const NODE_CACHE_MIN_LEVEL: u32 = 6;
/// Entries kept at most (32 bytes each plus the key) before the cache starts over.
const NODE_CACHE_LIMIT: usize = 1 << 20;

impl LedgerReader {
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Self {
            backend,
            node_cache: Arc::default(),
        }
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Number of committed events (the tree size).
    pub async fn size(&self) -> Result<u64> {
        self.backend.size().await
    }

    /// Events of `stream` from version `from_version` (1-based), at most `limit`.
    pub async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>> {
        self.backend
            .read_stream_rows(stream, from_version, limit)
            .await?
            .iter()
            .map(StoredRow::decode)
            .collect()
    }

    /// Events from global position `from`, at most `limit`, in position order.
    pub async fn read_all(&self, from: u64, limit: u32) -> Result<Vec<RecordedEvent>> {
        self.backend
            .read_rows(from, limit)
            .await?
            .iter()
            .map(StoredRow::decode)
            .collect()
    }

    /// The event with this id.
    pub async fn find_event(&self, event_id: Uuid) -> Result<RecordedEvent> {
        self.backend
            .find_event(event_id)
            .await?
            .ok_or_else(|| Error::NotFound(event_id.to_string()))?
            .decode()
    }

    /// The perfect-subtree hashes `wanted` for a tree of `size` leaves, in one query. Fails
    /// with `InvalidInput` when the log has fewer than `size` events.
    async fn nodes(&self, wanted: &[NodeId], size: u64) -> Result<HashMap<NodeId, Hash>> {
        let mut out = HashMap::with_capacity(wanted.len());
        let mut missing = Vec::with_capacity(wanted.len());
        {
            let cache = self.node_cache.lock();
            for id in wanted {
                match cache.get(id) {
                    Some(h) => {
                        out.insert(*id, *h);
                    }
                    None => missing.push(*id),
                }
            }
        }
        // The last leaf's row is always read: it proves the tree of `size` exists.
        let last = size.saturating_sub(1);
        let mut rows_needed: Vec<u64> = missing.iter().map(|n| n.row()).collect();
        rows_needed.push(last);
        rows_needed.sort_unstable();
        rows_needed.dedup();
        let rows = self.backend.rows_at(&rows_needed).await?;
        if !rows.iter().any(|r| r.position == last) {
            let have = self.size().await?;
            return Err(Error::InvalidInput(format!(
                "tree size {size} is beyond the log's {have} events"
            )));
        }
        let found = merkle::nodes_from_rows(
            &missing,
            rows.iter()
                .map(|r| (r.position, r.digest.as_slice(), r.subtrees.as_slice())),
        );
        {
            // Perfect subtrees never change: keep the upper levels (few, and on every proof).
            let mut cache = self.node_cache.lock();
            if cache.len() > NODE_CACHE_LIMIT {
                cache.clear();
            }
            for (id, h) in &found {
                if id.level >= NODE_CACHE_MIN_LEVEL {
                    cache.insert(*id, *h);
                }
            }
        }
        out.extend(found);
        Ok(out)
    }

    /// Root hash of the tree of the first `size` events.
    pub async fn root(&self, size: u64) -> Result<Hash> {
        if size == 0 {
            return Ok(merkle::empty_root());
        }
        let plan = ProofPlan::root(size);
        let nodes = self.nodes(plan.nodes(), size).await?;
        Ok(plan.compute(&nodes)?[0])
    }

    /// Inclusion proof of `index` in the tree of `size` events: O(log n) row reads.
    pub async fn inclusion_proof(&self, index: u64, size: u64) -> Result<InclusionProof> {
        let plan = ProofPlan::inclusion(index, size)?;
        let nodes = self.nodes(plan.nodes(), size).await?;
        Ok(InclusionProof {
            index,
            size,
            hashes: plan.compute(&nodes)?,
        })
    }

    /// Consistency proof between tree sizes `from` and `to`.
    pub async fn consistency_proof(&self, from: u64, to: u64) -> Result<Vec<Hash>> {
        let plan = ProofPlan::consistency(from, to)?;
        if to == 0 {
            return Ok(Vec::new());
        }
        let nodes = self.nodes(plan.nodes(), to).await?;
        Ok(plan.compute(&nodes)?)
    }

    /// Signs and stores a checkpoint of the current tree with the log key. The origin is the log
    /// key's name.
    pub async fn sign_checkpoint(&self, log_key: &NoteKey) -> Result<SignedCheckpoint> {
        let signed = self.checkpoint_now(log_key).await?;
        self.store_checkpoint(&signed).await?;
        Ok(signed)
    }

    /// A checkpoint of the current tree signed by the log key, not stored yet (witnesses may
    /// cosign it first).
    pub async fn checkpoint_now(&self, log_key: &NoteKey) -> Result<SignedCheckpoint> {
        let size = self.size().await?;
        let root = self.root(size).await?;
        Checkpoint {
            origin: log_key.name().to_owned(),
            size,
            root,
        }
        .sign(log_key)
    }

    /// Stores a signed (perhaps cosigned) checkpoint.
    pub async fn store_checkpoint(&self, signed: &SignedCheckpoint) -> Result<i64> {
        let cp = &signed.checkpoint;
        let id = self
            .backend
            .insert_checkpoint(cp.size, &cp.root, &signed.note)
            .await?;
        tracing::info!(size = cp.size, root = %hex::encode(cp.root), "stored checkpoint");
        Ok(id)
    }

    /// Whether the log grew past the newest valid checkpoint (periodic signing). Only rows that
    /// verify count: a junk row claiming a huge size must not stop signing (it is logged).
    pub async fn checkpoint_due(&self, log_vkey: &Vkey) -> Result<bool> {
        let size = self.size().await?;
        let (latest, intrusions) = self.latest_valid_checkpoint(log_vkey, size).await?;
        for i in &intrusions {
            tracing::error!(intrusion = %i, "checkpoint row that this log did not sign");
        }
        Ok(latest.is_none())
    }

    /// Signs and stores a checkpoint only if [`LedgerReader::checkpoint_due`].
    pub async fn sign_checkpoint_if_grown(
        &self,
        log_key: &NoteKey,
    ) -> Result<Option<SignedCheckpoint>> {
        if !self.checkpoint_due(&Vkey::parse(&log_key.vkey())?).await? {
            return Ok(None);
        }
        self.sign_checkpoint(log_key).await.map(Some)
    }

    /// The newest stored checkpoint, whatever its signature (see
    /// [`LedgerReader::latest_valid_checkpoint`]).
    pub async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>> {
        Ok(self
            .backend
            .checkpoints_from(0, 1)
            .await?
            .into_iter()
            .next())
    }

    /// The newest stored checkpoint of `min_size` or more whose note verifies with `log_key`.
    /// Rows that do not verify are returned too, as intrusions: someone with database rights
    /// inserted them (the service never stores a note it did not sign).
    pub async fn latest_valid_checkpoint(
        &self,
        log_key: &Vkey,
        min_size: u64,
    ) -> Result<(Option<SignedCheckpoint>, Vec<crate::verify::Intrusion>)> {
        let mut intrusions = Vec::new();
        for cp in self.backend.checkpoints_from(min_size, 1_000).await? {
            match crate::verify::check_stored_checkpoint(&cp, log_key) {
                Ok(signed) => return Ok((Some(signed), intrusions)),
                Err(i) => intrusions.push(i),
            }
        }
        Ok((None, intrusions))
    }

    /// The offline proof that the event at `position` was written by its commit's sealer.
    pub async fn authorship(&self, position: u64) -> Result<Authorship> {
        let row = self
            .backend
            .read_rows(position, 1)
            .await?
            .into_iter()
            .find(|r| r.position == position)
            .ok_or_else(|| Error::NotFound(format!("position {position}")))?;
        let (sealed_at, seal) =
            self.backend
                .seal_at_or_after(position)
                .await?
                .ok_or_else(|| Error::Corrupt {
                    position,
                    reason: "no commit seal covers this event".into(),
                })?;
        let proof = self.inclusion_proof(position, sealed_at + 1).await?;
        Ok(Authorship {
            record: row.record,
            seal,
            path: proof.hashes,
        })
    }

    /// The offline proof (C2SP tlog-proof) of `event` against the newest valid checkpoint that
    /// covers it, and that checkpoint's size. Its extra data is the event's [`Authorship`].
    /// [`Error::InvalidInput`] when no signed checkpoint covers the event yet; checkpoint rows
    /// this log did not sign are logged as intrusions and skipped.
    pub async fn offline_proof(
        &self,
        log_key: &Vkey,
        event: &RecordedEvent,
    ) -> Result<(crate::checkpoint::TlogProof, u64)> {
        let (cp, intrusions) = self
            .latest_valid_checkpoint(log_key, event.position + 1)
            .await?;
        for i in intrusions {
            tracing::error!(intrusion = %i, "checkpoint row that this log did not sign; skipped");
        }
        let cp = cp.ok_or_else(|| {
            Error::InvalidInput(format!(
                "event at position {} is not covered by a signed checkpoint yet; sign one (goosectl checkpoint) and retry",
                event.position
            ))
        })?;
        let size = cp.checkpoint.size;
        let proof = self.inclusion_proof(event.position, size).await?;
        // The record, its commit's seal and the path into the sealed tree, so the proof also
        // shows who wrote the event (opaque to other tlog-proof verifiers).
        let authorship = self.authorship(event.position).await?;
        Ok((
            crate::checkpoint::TlogProof {
                extra: Some(authorship.encode()),
                index: event.position,
                hashes: proof.hashes,
                checkpoint_note: cp.note,
            },
            size,
        ))
    }
}

async fn run_committer(
    backend: Arc<dyn Backend>,
    mut rx: mpsc::Receiver<Job>,
    committed: watch::Sender<u64>,
    max_group_events: usize,
    sealer: Sealer,
) {
    let mut head = None;
    while let Some(first) = rx.recv().await {
        // Group commit: take everything already waiting, up to the limit, into one transaction.
        let mut events = first.request.events.len();
        let mut jobs = vec![first];
        while events < max_group_events {
            match rx.try_recv() {
                Ok(job) => {
                    events += job.request.events.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let (requests, replies): (Vec<_>, Vec<_>) =
            jobs.into_iter().map(|j| (j.request, j.reply)).unzip();
        let started = std::time::Instant::now();
        match backend.commit_group(&requests, &mut head, &sealer).await {
            Ok(outcomes) => {
                telemetry::COMMIT_SECONDS
                    .histogram(&[])
                    .record(started.elapsed().as_secs_f64());
                let written: usize = requests
                    .iter()
                    .zip(&outcomes)
                    .filter(|(_, o)| matches!(o, Ok(r) if !r.duplicate))
                    .map(|(r, _)| r.events.len())
                    .sum();
                telemetry::EVENTS_APPENDED
                    .counter(&[])
                    .increment(written as u64);
                let rejected = outcomes.iter().filter(|o| o.is_err()).count();
                telemetry::APPENDS_REJECTED
                    .counter(&[])
                    .increment(rejected as u64);
                if let Some(h) = &head {
                    raise_size(&committed, h.frontier.size());
                    telemetry::LOG_SIZE.gauge(&[]).set(h.frontier.size() as f64);
                }
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
            Err(e) => {
                head = None;
                telemetry::COMMIT_FAILURES.counter(&[]).increment(1);
                tracing::warn!(error = %e, "commit failed");
                let msg = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(Error::Unavailable(msg.clone())));
                }
            }
        }
    }
}

/// Moves the committed-size watch forward (never back), waking waiters only on change.
pub(crate) fn raise_size(sender: &watch::Sender<u64>, size: u64) {
    sender.send_if_modified(|s| {
        let changed = size > *s;
        if changed {
            *s = size;
        }
        changed
    });
}

/// Rebuilds the head state (last digest and Merkle frontier) from stored rows.
pub(crate) fn head_from_rows(
    size: u64,
    last_digest: Vec<u8>,
    rows: &[StoredRow],
) -> Result<crate::sequencer::Head> {
    let plan = Frontier::plan(size);
    let nodes = merkle::nodes_from_rows(
        &plan,
        rows.iter()
            .map(|r| (r.position, r.digest.as_slice(), r.subtrees.as_slice())),
    );
    let frontier = Frontier::from_nodes(size, &nodes).map_err(|e| Error::Corrupt {
        position: size.saturating_sub(1),
        reason: format!("cannot rebuild the Merkle frontier: {e}"),
    })?;
    let last_digest = last_digest.try_into().map_err(|_| Error::Corrupt {
        position: size.saturating_sub(1),
        reason: "head digest is not 32 bytes".into(),
    })?;
    Ok(crate::sequencer::Head {
        last_digest,
        frontier,
    })
}

/// The ledger's metrics (defined in the catalog, `goose_metrics`).
pub use goose_metrics::ledger as telemetry;
