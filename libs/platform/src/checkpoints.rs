//! Checkpoints kept outside the database. Every checkpoint the log signs is offered to its
//! witnesses (c2sp.org/tlog-witness; their cosignatures are added to the note), stored in the
//! ledger, and written to each configured sink: today a directory of write-once files (the
//! dev default is `<data dir>/checkpoints/`). A database administrator can delete rows; they
//! cannot delete what witnesses and other machines hold, and clients compare against those.

use anyhow::{bail, Context as _, Result};
use goose_ledger::witness::{self, AddCheckpoint, WitnessKey, WitnessPolicy};
use goose_ledger::{LedgerReader, NoteKey, SignedCheckpoint, Vkey};
use parking_lot::Mutex;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The metrics of checkpoint publication (defined in the catalog, `goose_metrics`).
pub use goose_metrics::chain as telemetry;

/// A witness the log submits its checkpoints to.
#[derive(Debug)]
pub struct WitnessClient {
    /// Base URL; requests go to `<url>/add-checkpoint`.
    pub url: String,
    pub key: WitnessKey,
    /// The size the witness last acknowledged (None: unknown, try from the empty tree).
    last_size: Mutex<Option<u64>>,
}

impl WitnessClient {
    pub fn new(url: impl Into<String>, key: WitnessKey) -> Self {
        Self {
            url: url.into().trim_end_matches('/').to_owned(),
            key,
            last_size: Mutex::new(None),
        }
    }

    /// Parses `VKEY@URL` (the witness's cosigner vkey, then its base URL).
    pub fn parse(spec: &str) -> Result<Self> {
        let at = spec
            .find("@http://")
            .or_else(|| spec.find("@https://"))
            .with_context(|| format!("witness {spec:?}: expected <cosigner vkey>@<http(s) URL>"))?;
        let key = WitnessKey::parse(&spec[..at])?;
        Ok(Self::new(&spec[at + 1..], key))
    }

    /// Offers `cp` (a log-signed note) to the witness with a consistency proof from the size
    /// it holds, and returns its verified cosignature line.
    pub async fn cosign(
        &self,
        http: &reqwest::Client,
        reader: &LedgerReader,
        cp: &SignedCheckpoint,
    ) -> Result<String> {
        let size = cp.checkpoint.size;
        let mut old = self.last_size.lock().unwrap_or(0);
        // Two tries: the second after the witness told us (409) which size it holds.
        for _ in 0..2 {
            if old > size {
                bail!(WitnessFailure::Conflict(format!("witness {} holds size {old}, beyond this checkpoint's {size}: it saw a longer log (rollback or fork)", self.key.name)));
            }
            let proof = if old == 0 || old == size {
                Vec::new()
            } else {
                reader.consistency_proof(old, size).await?
            };
            let body = AddCheckpoint {
                old_size: old,
                proof,
                note: cp.note.clone(),
            }
            .to_text();
            let resp = http
                .post(format!("{}/add-checkpoint", self.url))
                .body(body)
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .map_err(|e| {
                    WitnessFailure::Unreachable(format!(
                        "witness {} at {}: {e}",
                        self.key.name, self.url
                    ))
                })?;
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            if status.as_u16() == 409 {
                old = text.trim().parse().with_context(|| {
                    format!("witness {} answered 409 without a size", self.key.name)
                })?;
                continue;
            }
            if !status.is_success() {
                bail!(WitnessFailure::Refused(format!(
                    "witness {} refused the checkpoint of size {size}: {status}: {}",
                    self.key.name,
                    text.trim()
                )));
            }
            let cosigned = witness::add_cosignatures(&cp.note, &text);
            if witness::cosigned_by(&cosigned, &self.key).is_none() {
                bail!(WitnessFailure::BadCosignature(format!(
                    "witness {} answered without a valid cosignature by its key",
                    self.key.name
                )));
            }
            *self.last_size.lock() = Some(size);
            return Ok(text);
        }
        bail!(WitnessFailure::Conflict(format!(
            "witness {} kept answering 409",
            self.key.name
        )))
    }
}

/// Why a witness did not cosign (the `reason` label of the witness failure counter).
#[derive(Debug, thiserror::Error)]
pub enum WitnessFailure {
    /// The witness holds a different view of the log (a longer one, or keeps disagreeing on
    /// the size): a fork or a rollback. The alert that matters.
    #[error("{0}")]
    Conflict(String),
    /// The witness answered with an error status.
    #[error("{0}")]
    Refused(String),
    /// The witness's answer did not carry a valid cosignature by its key.
    #[error("{0}")]
    BadCosignature(String),
    /// The witness could not be reached.
    #[error("{0}")]
    Unreachable(String),
}

impl WitnessFailure {
    /// The metric label of an error `cosign` returned (`error`: the ledger failed us).
    pub fn label(e: &anyhow::Error) -> &'static str {
        match e.downcast_ref::<Self>() {
            Some(Self::Conflict(_)) => "conflict",
            Some(Self::Refused(_)) => "refused",
            Some(Self::BadCosignature(_)) => "bad_cosignature",
            Some(Self::Unreachable(_)) => "unreachable",
            None => "error",
        }
    }
}

/// A write-once store that keeps every checkpoint too (the WORM bucket): what it holds cannot
/// be deleted before its retention date, not even by the database's or the bucket's owner.
#[async_trait::async_trait]
pub trait CheckpointArchive: Send + Sync + std::fmt::Debug {
    /// Keeps `note` under `name` (never replacing an object of that name).
    async fn keep(&self, name: &str, note: &[u8]) -> Result<()>;
    /// The sink's label in metrics.
    fn label(&self) -> &'static str;
}

/// Signs checkpoints and publishes them to witnesses, the ledger and the sinks.
#[derive(Debug, Clone)]
pub struct CheckpointPublisher {
    reader: LedgerReader,
    log_key: Arc<NoteKey>,
    log_vkey: Vkey,
    dir: Option<PathBuf>,
    archive: Option<Arc<dyn CheckpointArchive>>,
    witnesses: Arc<Vec<WitnessClient>>,
    policy: WitnessPolicy,
    http: reqwest::Client,
}

/// Where checkpoints go besides the database.
#[derive(Debug, Default)]
pub struct PublishConfig {
    /// A directory of write-once files, one per checkpoint.
    pub dir: Option<PathBuf>,
    /// A write-once object store, one object per checkpoint.
    pub archive: Option<Arc<dyn CheckpointArchive>>,
    pub witnesses: Vec<WitnessClient>,
    /// How many of the witnesses must cosign for a checkpoint to count as witnessed.
    pub threshold: usize,
}

impl CheckpointPublisher {
    pub fn new(reader: LedgerReader, log_key: Arc<NoteKey>, config: PublishConfig) -> Result<Self> {
        let log_vkey = Vkey::parse(&log_key.vkey())?;
        if config.threshold > config.witnesses.len() {
            bail!(
                "the witness threshold {} is more than the {} witnesses configured",
                config.threshold,
                config.witnesses.len()
            );
        }
        let policy = WitnessPolicy {
            witnesses: config.witnesses.iter().map(|w| w.key.clone()).collect(),
            threshold: config.threshold,
        };
        Ok(Self {
            reader,
            log_key,
            log_vkey,
            dir: config.dir,
            archive: config.archive,
            witnesses: Arc::new(config.witnesses),
            policy,
            http: reqwest::Client::new(),
        })
    }

    pub fn policy(&self) -> &WitnessPolicy {
        &self.policy
    }

    /// Signs a checkpoint of the log now, collects cosignatures, stores and publishes it.
    /// A witness that fails is logged and counted; the checkpoint is stored regardless (it is
    /// valid, only not witnessed by that one).
    pub async fn publish_now(&self) -> Result<SignedCheckpoint> {
        let mut cp = self.reader.checkpoint_now(&self.log_key).await?;
        for w in self.witnesses.iter() {
            match w.cosign(&self.http, &self.reader, &cp).await {
                Ok(lines) => {
                    cp.note = witness::add_cosignatures(&cp.note, &lines);
                    telemetry::COSIGNATURES.counter(&[&w.key.name]).increment(1);
                }
                Err(e) => {
                    telemetry::WITNESS_FAILURES
                        .counter(&[&w.key.name, WitnessFailure::label(&e)])
                        .increment(1);
                    tracing::error!(witness = %w.key.name, error = %format!("{e:#}"), "witness did not cosign");
                }
            }
        }
        let witnessed = !self.policy.is_set() || self.policy.is_witnessed(&cp.note);
        telemetry::WITNESSED
            .gauge(&[])
            .set(if witnessed { 1.0 } else { 0.0 });
        if !witnessed {
            tracing::warn!(
                size = cp.checkpoint.size,
                cosigners = self.policy.cosigners(&cp.note),
                threshold = self.policy.threshold,
                "checkpoint stored without the witness quorum"
            );
        }
        self.reader.store_checkpoint(&cp).await?;
        telemetry::CHECKPOINTS_PUBLISHED.counter(&[]).increment(1);
        if let Some(dir) = &self.dir {
            if let Err(e) = write_once(dir, &cp) {
                telemetry::SINK_FAILURES.counter(&["dir"]).increment(1);
                tracing::error!(dir = %dir.display(), error = %format!("{e:#}"), "checkpoint sink write failed");
            }
        }
        if let Some(archive) = &self.archive {
            if let Err(e) = archive.keep(&object_name(&cp), cp.note.as_bytes()).await {
                telemetry::SINK_FAILURES
                    .counter(&[archive.label()])
                    .increment(1);
                tracing::error!(sink = archive.label(), error = %format!("{e:#}"), "checkpoint sink write failed");
            }
        }
        Ok(cp)
    }

    /// Publishes a checkpoint if the log grew past the newest valid one.
    pub async fn publish_if_grown(&self) -> Result<Option<SignedCheckpoint>> {
        if !self.reader.checkpoint_due(&self.log_vkey).await? {
            return Ok(None);
        }
        self.publish_now().await.map(Some)
    }

    /// Publishes every `every` when the log grew, until `stop` resolves.
    pub async fn run_periodic(&self, every: Duration, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = tick.tick() => {
                    if let Err(e) = self.publish_if_grown().await {
                        tracing::warn!(error = %format!("{e:#}"), "periodic checkpoint failed");
                    }
                }
            }
        }
    }
}

/// `<size>-<root hex>-<note digest>.checkpoint`: one name per note (a checkpoint of the same
/// tree with other cosignatures is another object).
pub fn object_name(cp: &SignedCheckpoint) -> String {
    use sha3::Digest as _;
    format!(
        "{:012}-{}-{}.checkpoint",
        cp.checkpoint.size,
        hex::encode(&cp.checkpoint.root[..8]),
        hex::encode(&sha3::Sha3_256::digest(cp.note.as_bytes())[..8])
    )
}

/// Writes `<dir>/<size>-<root hex>.checkpoint`, never replacing an existing file (a second
/// checkpoint of the same tree with other cosignatures gets its own name).
fn write_once(dir: &std::path::Path, cp: &SignedCheckpoint) -> Result<()> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let base = format!(
        "{:012}-{}",
        cp.checkpoint.size,
        hex::encode(&cp.checkpoint.root[..8])
    );
    for n in 0..100 {
        let name = if n == 0 {
            format!("{base}.checkpoint")
        } else {
            format!("{base}.{n}.checkpoint")
        };
        let path = dir.join(name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                f.write_all(cp.note.as_bytes())?;
                f.sync_all()?;
                return Ok(());
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if std::fs::read_to_string(&path).is_ok_and(|t| t == cp.note) {
                    return Ok(());
                }
            }
            Err(e) => return Err(e).with_context(|| format!("writing {}", path.display())),
        }
    }
    bail!("too many checkpoint files named {base}")
}
