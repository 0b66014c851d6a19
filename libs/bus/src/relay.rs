//! The outbox relay: publishes committed ledger events to the bus in ledger order, and
//! durably records how far it got (a ledger cursor). After a crash it republishes from there;
//! the bus drops the duplicates by event id.
//!
//! Any number of processes may run a relay of one scope: they elect one leader through the
//! ledger's store ([`goose_ledger::Backend::try_lead`]: a PostgreSQL session advisory lock),
//! the others wait and take over when the leader's session ends (its process died, its
//! connection broke). Even two leaders at once (a partition) would only publish duplicates
//! the bus drops, never lose or reorder events, because the cursor only moves forward.
//!
//! A scoped relay ([`OutboxRelay::only`]) publishes the events of some aggregate types — a
//! service's own — so that each service's NATS user may publish on its own subjects only.

use crate::{Bus, Result};
use goose_ledger::{Leadership, Ledger};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// The relay.
#[derive(Debug, Clone)]
pub struct OutboxRelay {
    ledger: Ledger,
    bus: Arc<dyn Bus>,
    cursor: String,
    /// Publish only these aggregate types (`None`: every event).
    only: Option<BTreeSet<String>>,
    /// Where a scoped relay without a cursor of its own starts: the unscoped relay's cursor
    /// (a deployment that ran one relay for everything does not republish its history).
    inherit: Option<String>,
    batch: u32,
    /// How often a follower tries to become the leader.
    contend_every: Duration,
}

impl OutboxRelay {
    /// A relay of every event whose progress (and leadership) is kept under the name `cursor`.
    pub fn new(ledger: Ledger, bus: Arc<dyn Bus>, cursor: impl Into<String>) -> Self {
        Self {
            ledger,
            bus,
            cursor: cursor.into(),
            only: None,
            inherit: None,
            batch: 500,
            contend_every: Duration::from_secs(1),
        }
    }

    /// The relay of one service's events (the aggregate types it writes): cursor and leadership
    /// `relay:<service>`, starting where the deployment-wide cursor `relay` was if it has none.
    pub fn scoped(
        ledger: Ledger,
        bus: Arc<dyn Bus>,
        service: &str,
        aggregates: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        let mut relay = Self::new(ledger, bus, format!("relay:{service}"));
        relay.only = Some(aggregates.into_iter().map(Into::into).collect());
        relay.inherit = Some("relay".into());
        relay
    }

    /// How often a process that does not lead tries to (default 1 s).
    pub fn contend_every(mut self, every: Duration) -> Self {
        self.contend_every = every;
        self
    }

    /// The cursor's (and leadership's) name.
    pub fn name(&self) -> &str {
        &self.cursor
    }

    /// The next position to publish.
    pub async fn next_position(&self) -> Result<u64> {
        let backend = self.ledger.backend();
        if let Some(next) = backend.load_cursor(&self.cursor).await? {
            return Ok(next);
        }
        match &self.inherit {
            Some(from) => Ok(backend.load_cursor(from).await?.unwrap_or(0)),
            None => Ok(0),
        }
    }

    /// Publishes one batch if any is waiting; returns how many ledger events it moved past
    /// (published, or skipped as another scope's; 0: nothing was waiting). Call it only while
    /// leading (or in tests).
    pub async fn run_once(&self) -> Result<usize> {
        let from = self.next_position().await?;
        let events = self.ledger.read_all(from, self.batch).await?;
        if events.is_empty() {
            RELAY_LAG.gauge(&[&self.cursor]).set(0.0);
            return Ok(0);
        }
        let next = from + events.len() as u64;
        let mine: Vec<_> = match &self.only {
            None => events,
            Some(only) => events
                .into_iter()
                .filter(|e| only.contains(e.stream.aggregate_type()))
                .collect(),
        };
        if !mine.is_empty() {
            self.bus.publish(&mine).await?;
        }
        self.ledger
            .backend()
            .store_cursor(&self.cursor, next)
            .await?;
        RELAY_PUBLISHED
            .counter(&[&self.cursor])
            .increment(mine.len() as u64);
        match self.ledger.size().await {
            Ok(size) => RELAY_LAG
                .gauge(&[&self.cursor])
                .set(size.saturating_sub(next) as f64),
            Err(e) => {
                tracing::debug!(relay = %self.cursor, error = %e, "reading the log size for the lag gauge failed")
            }
        }
        Ok((next - from) as usize)
    }

    /// Waits until this process leads; `None` when `shutdown` came first.
    async fn lead(
        &self,
        shutdown: &mut (impl std::future::Future<Output = ()> + Unpin),
    ) -> Option<Box<dyn Leadership>> {
        let mut waiting_logged = false;
        loop {
            match self.ledger.backend().try_lead(&self.cursor).await {
                Ok(Some(l)) => {
                    tracing::info!(relay = %self.cursor, "this process now runs the outbox relay");
                    RELAY_LEADER.gauge(&[&self.cursor]).set(1.0);
                    return Some(l);
                }
                Ok(None) => {
                    if !waiting_logged {
                        tracing::info!(relay = %self.cursor, "another process runs the outbox relay; standing by");
                        waiting_logged = true;
                    }
                }
                Err(e) => {
                    tracing::warn!(relay = %self.cursor, error = %e, "could not contend for the outbox relay; retrying");
                }
            }
            tokio::select! {
                () = &mut *shutdown => return None,
                () = tokio::time::sleep(self.contend_every) => {}
            }
        }
    }

    /// Runs until `shutdown` resolves: leads (or stands by), publishes, retries failures with
    /// capped exponential backoff, gives leadership up when its session is lost.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(50);
        'lead: loop {
            let Some(mut leadership) = self.lead(&mut shutdown).await else {
                return;
            };
            loop {
                if !leadership.still_leads().await {
                    tracing::warn!(relay = %self.cursor, "lost the outbox relay's leadership (database session ended); contending again");
                    RELAY_LEADER.gauge(&[&self.cursor]).set(0.0);
                    RELAY_LEADERSHIP_LOST.counter(&[&self.cursor]).increment(1);
                    continue 'lead;
                }
                let step = async {
                    match self.run_once().await {
                        Ok(0) => {
                            let next = self.next_position().await.unwrap_or(0);
                            // Wakes on commit (or after a second, to catch missed notifications
                            // and to check the leadership).
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
                    () = &mut shutdown => {
                        RELAY_LEADER.gauge(&[&self.cursor]).set(0.0);
                        return;
                    }
                    r = step => match r {
                        Ok(()) => backoff = Duration::from_millis(50),
                        Err(e) => {
                            tracing::warn!(relay = %self.cursor, error = %e, retry_in = ?backoff, "relay failed to publish; retrying");
                            RELAY_FAILURES.counter(&[&self.cursor]).increment(1);
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
}

/// The relay's metrics (defined in the catalog, `goose_metrics`).
pub use goose_metrics::bus::{
    RELAY_FAILURES, RELAY_LAG, RELAY_LEADER, RELAY_LEADERSHIP_LOST, RELAY_PUBLISHED,
};
