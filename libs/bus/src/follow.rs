//! In-memory read models that follow the ledger: catch up from the ledger at start, then
//! apply what the bus announces, filling any gap from the ledger.
//!
//! The bus is only a wake-up here: a lost or duplicated message changes nothing, because
//! every event is applied in position order exactly once (positions below `next` are
//! skipped, a jump is filled from the ledger), and an idle follower also polls the ledger's
//! size. A service keeps small read models this way (users and roles, the catalog, evidence
//! summaries) and rebuilds them on every start.

use crate::{Bus, Result};
use goose_ledger::{LedgerReader, RecordedEvent};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Counter: waits for a read model that timed out (the read model was behind).
pub use goose_metrics::bus::STALE_READS;

/// A read model that has not applied a position within the time allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the read model has applied positions below {applied}, not {wanted}, after waiting {waited:?}"
)]
pub struct Stale {
    pub wanted: u64,
    pub applied: u64,
    pub waited: Duration,
}

/// What a follower does with each event, in position order.
pub type Handler = Arc<dyn Fn(&RecordedEvent) + Send + Sync>;

/// A running follower; clone it to wait for positions.
#[derive(Debug, Clone)]
pub struct Follower {
    next: watch::Receiver<u64>,
    /// Wakes the follower to read the ledger now (after a local append).
    poke: Arc<tokio::sync::Notify>,
    /// For catching up on demand.
    ledger: LedgerReader,
}

impl Follower {
    /// Catches up with the ledger, then follows it in a background task until `shutdown`.
    /// `aggregate_types`: events of other types are skipped (empty: all).
    pub async fn start(
        ledger: LedgerReader,
        bus: Arc<dyn Bus>,
        aggregate_types: &'static [&'static str],
        handler: Handler,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<Self> {
        Self::start_at(0, ledger, bus, aggregate_types, handler, shutdown).await
    }

    /// As [`Follower::start`], for a read model that has applied every position below `next`
    /// already (restored from a snapshot).
    pub async fn start_at(
        next: u64,
        ledger: LedgerReader,
        bus: Arc<dyn Bus>,
        aggregate_types: &'static [&'static str],
        handler: Handler,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<Self> {
        // Subscribe before catching up, so nothing committed in between is missed.
        let filter = match aggregate_types {
            [one] => Some(*one),
            _ => None,
        };
        let subscription = bus.subscribe_live(filter).await?;
        let mut state = State {
            ledger: ledger.clone(),
            handler,
            aggregate_types,
            next,
        };
        state.fill_to(u64::MAX).await?;
        let (tx, rx) = watch::channel(state.next);
        let poke = Arc::new(tokio::sync::Notify::new());
        let poked = poke.clone();
        tokio::spawn(async move {
            let mut subscription = subscription;
            tokio::pin!(shutdown);
            loop {
                let r = tokio::select! {
                    () = &mut shutdown => break,
                    // A local append: read the ledger now rather than wait for the bus (a
                    // fetch cut short here is redelivered and then skipped by position).
                    () = poked.notified() => match state.ledger.size().await {
                        Ok(size) => state.fill_to(size).await,
                        Err(e) => Err(e.into()),
                    },
                    r = state.step(&mut *subscription) => r,
                };
                if let Err(e) = r {
                    tracing::warn!(error = %e, "follower step failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                let _ = tx.send(state.next);
            }
        });
        Ok(Self {
            next: rx,
            poke,
            ledger,
        })
    }

    /// Waits until everything committed now is applied (a read that missed must not miss
    /// what another process wrote a moment ago).
    pub async fn catch_up(&self, timeout: Duration) -> std::result::Result<(), Stale> {
        let size = match self.ledger.size().await {
            Ok(size) => size,
            Err(e) => {
                tracing::warn!(error = %e, "catch-up could not read the ledger size");
                return Err(Stale {
                    wanted: u64::MAX,
                    applied: *self.next.borrow(),
                    waited: Duration::ZERO,
                });
            }
        };
        self.wait_applied(size, timeout).await
    }

    /// The next position not yet applied.
    pub fn next_position(&self) -> u64 {
        *self.next.borrow()
    }

    /// Waits until every position below `position` is applied (read-your-writes after an
    /// append). A timeout is a [`Stale`] read model, which the caller must handle: answer 503
    /// with `Retry-After` on a read, or log it on a write that already happened. Counted in
    /// `goose_read_model_stale_total`.
    pub async fn wait_applied(&self, position: u64, timeout: Duration) -> Result<(), Stale> {
        if *self.next.borrow() >= position {
            return Ok(());
        }
        self.poke.notify_one();
        let mut rx = self.next.clone();
        let applied = tokio::time::timeout(timeout, rx.wait_for(|n| *n >= position))
            .await
            .is_ok_and(|r| r.is_ok());
        if applied {
            return Ok(());
        }
        STALE_READS.counter(&[]).increment(1);
        Err(Stale {
            wanted: position,
            applied: *self.next.borrow(),
            waited: timeout,
        })
    }
}

struct State {
    ledger: LedgerReader,
    handler: Handler,
    aggregate_types: &'static [&'static str],
    next: u64,
}

impl State {
    /// Applies `ev` if it is the next position. `trace_context`: what the bus message
    /// carried; a live event applied under it continues the appender's trace (a consumer span).
    fn apply(&mut self, ev: &RecordedEvent, trace_context: Option<&BTreeMap<String, String>>) {
        if ev.position != self.next {
            return;
        }
        if self.aggregate_types.is_empty()
            || self.aggregate_types.contains(&ev.stream.aggregate_type())
        {
            let span = match trace_context.filter(|t| !t.is_empty() && goose_telemetry::exporting())
            {
                Some(t) => {
                    let span = tracing::info_span!(
                        "consume event",
                        otel.name = %format!("{} process", ev.event_type),
                        otel.kind = "consumer",
                        messaging.system = "nats",
                        messaging.operation.type = "process",
                        event.position = ev.position,
                        event.id = %ev.event_id,
                        event.r#type = %ev.event_type,
                        follows = %self.aggregate_types.join(","),
                    );
                    goose_telemetry::set_parent(&span, |k| t.get(k).cloned());
                    span
                }
                None => tracing::debug_span!(
                    "follow_event",
                    position = ev.position,
                    event_id = %ev.event_id,
                    event_type = %ev.event_type
                ),
            };
            let _entered = span.entered();
            (self.handler)(ev);
        }
        self.next += 1;
    }

    /// Applies everything in the ledger from `next` up to (excluding) `to`.
    async fn fill_to(&mut self, to: u64) -> Result<()> {
        while self.next < to {
            let limit = (to - self.next).min(1000) as u32;
            let batch = self.ledger.read_all(self.next, limit).await?;
            if batch.is_empty() {
                break;
            }
            for ev in &batch {
                self.apply(ev, None);
            }
        }
        Ok(())
    }

    async fn step(&mut self, subscription: &mut dyn crate::Subscription) -> Result<()> {
        let deliveries = subscription.fetch(256, Duration::from_secs(1)).await?;
        if deliveries.is_empty() {
            // Idle: make sure nothing was missed (a bus outage, a filtered gap).
            let size = self.ledger.size().await?;
            return self.fill_to(size).await;
        }
        let mut order: Vec<&crate::Delivery> = deliveries.iter().collect();
        order.sort_by_key(|d| d.event.position);
        for d in order {
            if d.event.position > self.next {
                self.fill_to(d.event.position).await?;
            }
            self.apply(&d.event, Some(&d.trace_context));
        }
        for d in deliveries {
            d.ack().await?;
        }
        Ok(())
    }
}
