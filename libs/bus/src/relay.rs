//! The outbox relay: publishes committed ledger events to the bus in global order, and
//! durably records how far it got (a ledger cursor). After a crash it republishes from there;
//! the bus drops the duplicates by event id.
//!
//! Run one relay per deployment. Two would only publish duplicates (dropped by the bus), never
//! lose or reorder events, because the cursor only moves forward.

use crate::{Bus, Result};
use goose_ledger::Ledger;
use std::sync::Arc;
use std::time::Duration;

/// The relay.
#[derive(Debug, Clone)]
pub struct OutboxRelay {
    ledger: Ledger,
    bus: Arc<dyn Bus>,
    cursor: String,
    batch: u32,
}

impl OutboxRelay {
    /// A relay whose progress is kept under the cursor name `cursor`.
    pub fn new(ledger: Ledger, bus: Arc<dyn Bus>, cursor: impl Into<String>) -> Self {
        Self {
            ledger,
            bus,
            cursor: cursor.into(),
            batch: 500,
        }
    }

    /// The next position to publish.
    pub async fn next_position(&self) -> Result<u64> {
        Ok(self
            .ledger
            .backend()
            .load_cursor(&self.cursor)
            .await?
            .unwrap_or(0))
    }

    /// Publishes one batch if any is waiting; returns how many events were published.
    pub async fn run_once(&self) -> Result<usize> {
        let from = self.next_position().await?;
        let events = self.ledger.read_all(from, self.batch).await?;
        if events.is_empty() {
            return Ok(0);
        }
        self.bus.publish(&events).await?;
        let next = from + events.len() as u64;
        self.ledger
            .backend()
            .store_cursor(&self.cursor, next)
            .await?;
        metrics::counter!(RELAY_PUBLISHED).increment(events.len() as u64);
        Ok(events.len())
    }

    /// Runs until `shutdown` resolves, retrying failures with capped exponential backoff.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(50);
        loop {
            let step = async {
                match self.run_once().await {
                    Ok(0) => {
                        let next = self.next_position().await.unwrap_or(0);
                        // Wakes on commit (or after a second, to catch missed notifications).
                        let _ = self
                            .ledger
                            .wait_for_commit(next, Duration::from_secs(1))
                            .await;
                        Ok(())
                    }
                    Ok(_) => Ok(()),
                    Err(e) => Err(e),
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                r = step => match r {
                    Ok(()) => backoff = Duration::from_millis(50),
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?backoff, "relay failed to publish; retrying");
                        tokio::select! {
                            () = &mut shutdown => return,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
    }
}

/// Counter: events published by the relay.
pub const RELAY_PUBLISHED: &str = "goose_relay_published_events_total";
