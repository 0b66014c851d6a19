//! The chain watch behind the `evidence_chain_valid` rule: verifies the log as it grows —
//! every digest, chain link, service signature and Merkle node — up to each newest signed
//! checkpoint, whose signature (by the log key) and root must match. Verification is
//! incremental: each event is checked once per process lifetime.

use goose_domain::gates::{ChainFact, FactRef};
use goose_ledger::verify::Verifier;
use goose_ledger::{Keyring, LedgerReader, Vkey};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How often the newest checkpoint is looked up.
const POLL: Duration = Duration::from_millis(500);

/// What the watch has established; cloned into each target's facts.
#[derive(Debug, Clone, Default)]
pub struct ChainWatch {
    status: Arc<RwLock<ChainFact>>,
}

impl ChainWatch {
    pub fn fact(&self) -> ChainFact {
        self.status
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn update(&self, f: impl FnOnce(&mut ChainFact)) {
        f(&mut self
            .status
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    }

    /// Starts verifying in the background. Without a log key the rule has nothing to check
    /// checkpoints against and reports that (never passes).
    pub fn start(
        reader: LedgerReader,
        keyring: Keyring,
        log_key: Option<Vkey>,
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
            let mut verifier = match Verifier::new(keyring, &log_key, &[]) {
                Ok(v) => v,
                Err(f) => {
                    w.update(|s| s.failure = Some(f.to_string()));
                    return;
                }
            };
            loop {
                if let Err(e) = w.catch_up(&reader, &mut verifier, &log_key).await {
                    tracing::warn!(error = %e, "chain watch: reading the ledger failed; retrying");
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

    async fn catch_up(
        &self,
        reader: &LedgerReader,
        verifier: &mut Verifier,
        log_key: &Vkey,
    ) -> goose_ledger::Result<()> {
        let Some(cp) = reader.latest_checkpoint().await? else {
            return Ok(());
        };
        let fact = FactRef {
            kind: "checkpoint".into(),
            id: cp.size.to_string(),
            position: None,
            digest: Some(hex::encode(&cp.root)),
            note: "signed checkpoint (tree size, root)".into(),
        };
        if cp.size <= verifier.position() {
            if cp.size == verifier.position() {
                self.update(|s| s.newest_checkpoint = Some((cp.size, fact)));
            }
            return Ok(());
        }
        if let Err(f) = verifier.add_checkpoint(&cp, log_key) {
            self.update(|s| s.failure = Some(f.to_string()));
            return Ok(());
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
            let mut owned = std::mem::replace(
                verifier,
                Verifier::new(Keyring::new(), log_key, &[])
                    .map_err(|f| goose_ledger::Error::InvalidInput(f.to_string()))?,
            );
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
