//! The chain watch: verifies the log as it grows — every digest, chain link, service
//! signature and Merkle node — up to each newest signed checkpoint, whose signature (by the log
//! key) and root must match. Verification is incremental: each event is checked once per
//! process lifetime. The orchestrator's `evidence_chain_valid` rule reads it; the sla service
//! opens `evidence_integrity` incidents from it and states it in compliance reports.
//!
//! [`ChainArgs`] are the flags of every service that runs one (the trusted keys).

use goose_domain::gates::{ChainFact, FactRef};
use goose_ledger::verify::Verifier;
use goose_ledger::witness::WitnessPolicy;
use goose_ledger::{Keyring, LedgerReader, Vkey};
use parking_lot::RwLock;
use std::sync::Arc;
use std::time::Duration;

/// How often the newest checkpoint is looked up.
const POLL: Duration = Duration::from_millis(500);

/// Counter: checkpoint rows the chain watch found that the log key did not sign (intrusions).
pub use goose_metrics::chain::INTRUSIONS as CHAIN_INTRUSIONS;

/// What the watch has established; cloned into each target's facts.
#[derive(Debug, Clone, Default)]
pub struct ChainWatch {
    status: Arc<RwLock<ChainFact>>,
    /// Intrusions found (checkpoint row id → what is wrong with it), in the order found.
    intrusions: Arc<parking_lot::Mutex<std::collections::BTreeMap<i64, String>>>,
}

impl ChainWatch {
    pub fn fact(&self) -> ChainFact {
        self.status.read().clone()
    }

    /// Checkpoint rows the log key did not sign, by row id (someone with database rights
    /// wrote them).
    pub fn intrusions(&self) -> Vec<(i64, String)> {
        self.intrusions
            .lock()
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    }

    fn update(&self, f: impl FnOnce(&mut ChainFact)) {
        f(&mut self.status.write());
    }

    /// Starts verifying in the background. Without a log key the rule has nothing to check
    /// checkpoints against and reports that (never passes).
    pub fn start(
        reader: LedgerReader,
        keyring: Keyring,
        log_key: Option<Vkey>,
        witnesses: WitnessPolicy,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Self {
        let watch = Self::default();
        let Some(log_key) = log_key else {
            return watch;
        };
        watch.update(|s| s.configured = true);
        let w = watch.clone();
        tokio::spawn(async move {
            tokio::pin!(stop);
            let mut verifier = Verifier::new(keyring, &log_key, &[]);
            let mut seen_size = None;
            loop {
                match w
                    .catch_up(&reader, &mut verifier, &log_key, &witnesses)
                    .await
                {
                    Ok(()) => w.export(&mut seen_size),
                    Err(e) => {
                        tracing::warn!(error = %e, "chain watch: reading the ledger failed; retrying");
                    }
                }
                if w.fact().failure.is_some() {
                    tracing::error!(failure = ?w.fact().failure, "chain watch: the chain does not verify");
                    return;
                }
                tokio::select! {
                    () = &mut stop => return,
                    () = tokio::time::sleep(POLL) => {}
                }
            }
        });
        watch
    }

    /// Sets the chain integrity gauges after a verification round (`seen_size`: the newest
    /// checkpoint size already reported, to time when a new one first appeared).
    fn export(&self, seen_size: &mut Option<u64>) {
        use goose_metrics::chain as m;
        let fact = self.fact();
        m::VERIFY_OK
            .gauge(&[])
            .set(if fact.failure.is_none() { 1.0 } else { 0.0 });
        m::VERIFIED_EVENTS.gauge(&[]).set(fact.verified as f64);
        let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
        m::LAST_VERIFY.gauge(&[]).set(now);
        if let Some((size, _)) = fact.newest_checkpoint {
            m::CHECKPOINT_SIZE.gauge(&[]).set(size as f64);
            if *seen_size != Some(size) {
                *seen_size = Some(size);
                m::CHECKPOINT_SEEN.gauge(&[]).set(now);
            }
        }
    }

    async fn catch_up(
        &self,
        reader: &LedgerReader,
        verifier: &mut Verifier,
        log_key: &Vkey,
        witnesses: &WitnessPolicy,
    ) -> goose_ledger::Result<()> {
        // Only checkpoints signed by the log key count; other rows are intrusions (someone with
        // database rights inserted them) and raise an alert, never a verdict.
        let (cp, intrusions) = reader
            .latest_valid_checkpoint(log_key, verifier.position())
            .await?;
        for i in intrusions {
            if self.intrusions.lock().insert(i.id, i.to_string()).is_none() {
                CHAIN_INTRUSIONS.counter(&[]).increment(1);
                tracing::error!(intrusion = %i, "chain watch: a checkpoint row this log did not sign");
            }
        }
        let Some(mut cp) = cp else {
            return Ok(());
        };
        if witnesses.is_set() && !witnesses.is_witnessed(&cp.note) {
            // Rely only on the newest checkpoint that enough witnesses cosigned.
            let older = reader
                .backend()
                .checkpoints_from(verifier.position(), 200)
                .await?
                .into_iter()
                .filter(|c| witnesses.is_witnessed(&c.note))
                .find_map(|c| goose_ledger::verify::check_stored_checkpoint(&c, log_key).ok());
            match older {
                Some(o) => cp = o,
                None => {
                    tracing::warn!(
                        size = cp.checkpoint.size,
                        "chain watch: newest checkpoint lacks the witness quorum; waiting"
                    );
                    return Ok(());
                }
            }
        }
        let cp = goose_ledger::StoredCheckpoint {
            id: 0,
            size: cp.checkpoint.size,
            root: cp.checkpoint.root.to_vec(),
            note: cp.note,
        };
        let fact = FactRef {
            kind: "checkpoint".into(),
            id: cp.size.to_string(),
            position: None,
            digest: Some(hex::encode(&cp.root)),
            note: if witnesses.is_set() {
                format!(
                    "signed checkpoint (tree size, root), cosigned by {} of {} witnesses",
                    witnesses.cosigners(&cp.note),
                    witnesses.witnesses.len()
                )
            } else {
                "signed checkpoint (tree size, root)".into()
            },
        };
        if cp.size <= verifier.position() {
            if cp.size == verifier.position() {
                self.update(|s| s.newest_checkpoint = Some((cp.size, fact)));
            }
            return Ok(());
        }
        match verifier.add_checkpoint(&cp, log_key) {
            Ok(Ok(())) => {}
            Ok(Err(intrusion)) => {
                // Verified a moment ago: only a concurrent change gets here.
                tracing::error!(%intrusion, "chain watch: checkpoint changed while reading");
                return Ok(());
            }
            Err(f) => {
                self.update(|s| s.failure = Some(f.to_string()));
                return Ok(());
            }
        }
        while verifier.position() < cp.size {
            let want = (cp.size - verifier.position()).min(5_000) as u32;
            let rows = reader
                .backend()
                .read_rows(verifier.position(), want)
                .await?;
            if rows.is_empty() {
                self.update(|s| {
                    s.failure = Some(format!(
                        "the log ends at {} but a checkpoint covers {}",
                        verifier.position(),
                        cp.size
                    ));
                });
                return Ok(());
            }
            let rows: Vec<_> = rows.into_iter().filter(|r| r.position < cp.size).collect();
            // Hashing and signature checks are CPU work: off the async threads.
            let mut owned =
                std::mem::replace(verifier, Verifier::new(Keyring::new(), log_key, &[]));
            let (back, result) = tokio::task::spawn_blocking(move || {
                let r = owned.push_rows(&rows).and_then(|()| owned.flush());
                (owned, r)
            })
            .await
            .map_err(|e| goose_ledger::Error::Unavailable(format!("verifier task: {e}")))?;
            *verifier = back;
            if let Err(f) = result {
                self.update(|s| s.failure = Some(f.to_string()));
                return Ok(());
            }
            let at = verifier.position();
            self.update(|s| s.verified = at);
            tracing::debug!(verified = at, "chain watch progress");
        }
        if verifier.checkpoints_verified().contains(&cp.size) {
            // Published only once verified, so a rule never sees a checkpoint it would have to
            // wait for: the evaluation cites the newest checkpoint this process has checked.
            self.update(|s| s.newest_checkpoint = Some((cp.size, fact)));
        } else {
            self.update(|s| {
                s.failure = Some(format!("checkpoint of size {} was not matched", cp.size));
            });
        }
        Ok(())
    }
}

/// The keys a chain watch trusts, as flags (the orchestrator's and the sla service's).
#[derive(Debug, Clone, clap::Args)]
pub struct ChainArgs {
    /// Trusted service verifier keys (C2SP vkeys, or @FILE with one per line): the signers of
    /// events (commit seals) the chain watch accepts.
    #[arg(long = "keyring", env = "GOOSE_KEYRING", value_delimiter = ',')]
    pub keyring: Vec<String>,
    /// The log's checkpoint verifier key (vkey or @FILE). Without it there is no chain watch.
    #[arg(long, env = "GOOSE_LOG_VKEY")]
    pub log_vkey: Option<String>,
    /// A witness's cosigner verifier key; with --witness-threshold, the watch relies only on
    /// checkpoints cosigned by enough of them. Repeatable.
    #[arg(
        long = "witness-key",
        env = "GOOSE_WITNESS_KEYS",
        value_delimiter = ','
    )]
    pub witness_keys: Vec<String>,
    /// How many of the witnesses must have cosigned a checkpoint (0: no witness policy).
    #[arg(long, env = "GOOSE_WITNESS_THRESHOLD", default_value_t = 0)]
    pub witness_threshold: usize,
}

/// What [`ChainArgs`] say, parsed.
#[derive(Debug, Clone, Default)]
pub struct ChainTrust {
    pub keyring: Option<Keyring>,
    pub log_key: Option<Vkey>,
    pub witness_policy: WitnessPolicy,
}

impl ChainArgs {
    pub fn trust(&self) -> anyhow::Result<ChainTrust> {
        let vkeys = crate::parse_vkeys(&self.keyring)?;
        let keyring = (!vkeys.is_empty()).then(|| {
            let mut k = Keyring::new();
            for v in &vkeys {
                k.add(v);
            }
            k
        });
        let log_key = match &self.log_vkey {
            Some(v) => crate::parse_vkeys(std::slice::from_ref(v))?
                .into_iter()
                .next(),
            None => None,
        };
        let witness_policy = WitnessPolicy {
            witnesses: self
                .witness_keys
                .iter()
                .map(|k| goose_ledger::witness::WitnessKey::parse(k))
                .collect::<Result<_, _>>()?,
            threshold: self.witness_threshold,
        };
        anyhow::ensure!(
            witness_policy.threshold <= witness_policy.witnesses.len(),
            "--witness-threshold {} is more than the {} --witness-key given",
            witness_policy.threshold,
            witness_policy.witnesses.len()
        );
        Ok(ChainTrust {
            keyring,
            log_key,
            witness_policy,
        })
    }
}
