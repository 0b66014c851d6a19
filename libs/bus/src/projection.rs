//! Applying events to a read model exactly once in effect.
//!
//! [`Projection`] pulls deliveries from a durable subscription, restores global order and fills
//! gaps from the ledger (the bus may lose or duplicate messages; the ledger may not), and hands
//! each event to a [`ReadModel`] that records the last applied position in the same transaction
//! as its change. A redelivered or duplicated event is recognised by its position and skipped.

use crate::{Delivery, Result, Subscription};
use goose_ledger::{Ledger, RecordedEvent};
use sqlx::PgPool;
use std::future::Future;
use std::time::Duration;

/// A read model that applies events transactionally with its position.
pub trait ReadModel: Send + Sync {
    /// The next position this read model expects (everything below is applied).
    fn next_position(&self) -> impl Future<Output = Result<u64>> + Send;
    /// Applies `event` if its position is not yet applied; returns whether it was applied.
    fn apply(&self, event: &RecordedEvent) -> impl Future<Output = Result<bool>> + Send;
}

/// Drives a read model from a subscription.
pub struct Projection<R> {
    subscription: Box<dyn Subscription>,
    ledger: Ledger,
    read_model: R,
    aggregate_type: Option<String>,
}

impl<R> std::fmt::Debug for Projection<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projection")
            .field("aggregate_type", &self.aggregate_type)
            .finish_non_exhaustive()
    }
}

impl<R: ReadModel> Projection<R> {
    /// `aggregate_type` must match the subscription's filter.
    pub fn new(
        subscription: Box<dyn Subscription>,
        ledger: Ledger,
        read_model: R,
        aggregate_type: Option<&str>,
    ) -> Self {
        Self {
            subscription,
            ledger,
            read_model,
            aggregate_type: aggregate_type.map(str::to_owned),
        }
    }

    pub fn read_model(&self) -> &R {
        &self.read_model
    }

    fn wanted(&self, ev: &RecordedEvent) -> bool {
        self.aggregate_type
            .as_deref()
            .is_none_or(|t| ev.stream.aggregate_type() == t)
    }

    /// Fetches and applies one batch; returns how many events were newly applied.
    pub async fn step(&mut self, wait: Duration) -> Result<usize> {
        let deliveries: Vec<Delivery> = self.subscription.fetch(256, wait).await?;
        let mut applied = 0;
        let mut events: Vec<RecordedEvent> = deliveries.iter().map(|d| d.event.clone()).collect();
        events.sort_by_key(|e| e.position);
        for ev in events {
            let next = self.read_model.next_position().await?;
            if ev.position < next {
                continue; // a duplicate or redelivery: already applied
            }
            if ev.position > next {
                // A gap: the bus lost something, or filtered it. The ledger has it all.
                applied += self.fill_gap(next, ev.position).await?;
            }
            let span = tracing::debug_span!(
                "apply_event",
                position = ev.position,
                event_id = %ev.event_id,
                event_type = %ev.event_type
            );
            if tracing::Instrument::instrument(self.read_model.apply(&ev), span).await? {
                applied += 1;
            }
        }
        // Acknowledge only after the read model committed.
        for d in deliveries {
            d.ack().await?;
        }
        Ok(applied)
    }

    async fn fill_gap(&self, from: u64, to: u64) -> Result<usize> {
        let mut applied = 0;
        let mut at = from;
        while at < to {
            let limit = (to - at).min(1000) as u32;
            let batch = self.ledger.read_all(at, limit).await?;
            if batch.is_empty() {
                break;
            }
            at += batch.len() as u64;
            for ev in batch.iter().filter(|e| self.wanted(e)) {
                if self.read_model.apply(ev).await? {
                    applied += 1;
                }
            }
        }
        if from < to {
            tracing::debug!(from, to, applied, "filled a gap from the ledger");
        }
        Ok(applied)
    }
}

/// A read model in PostgreSQL: `handler` runs inside the transaction that also moves the
/// model's position, so a crash can never apply an event twice or lose one.
#[derive(Debug, Clone)]
pub struct PgReadModel<H> {
    pool: PgPool,
    name: String,
    handler: H,
}

/// What a [`PgReadModel`] does with each event, inside its transaction.
pub trait PgHandler: Send + Sync {
    fn handle<'a>(
        &'a self,
        tx: &'a mut sqlx::PgConnection,
        event: &'a RecordedEvent,
    ) -> impl Future<Output = Result<()>> + Send + 'a;
}

impl<H: PgHandler> PgReadModel<H> {
    /// Creates the offsets table if needed.
    pub async fn new(pool: PgPool, name: impl Into<String>, handler: H) -> Result<Self> {
        // Not a sqlx migration: the ledger's migrator owns `_sqlx_migrations` in this database.
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS read_model_offsets (\
                 name TEXT PRIMARY KEY, \
                 next_position BIGINT NOT NULL CHECK (next_position >= 0))",
        )
        .execute(&pool)
        .await?;
        Ok(Self {
            pool,
            name: name.into(),
            handler,
        })
    }
}

impl<H: PgHandler> ReadModel for PgReadModel<H> {
    async fn next_position(&self) -> Result<u64> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT next_position FROM read_model_offsets WHERE name = $1")
                .bind(&self.name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(v.unwrap_or(0).max(0) as u64)
    }

    async fn apply(&self, event: &RecordedEvent) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO read_model_offsets (name, next_position) VALUES ($1, 0) ON CONFLICT DO NOTHING",
        )
        .bind(&self.name)
        .execute(&mut *tx)
        .await?;
        let next: i64 = sqlx::query_scalar(
            "SELECT next_position FROM read_model_offsets WHERE name = $1 FOR UPDATE",
        )
        .bind(&self.name)
        .fetch_one(&mut *tx)
        .await?;
        if (event.position as i64) < next {
            return Ok(false);
        }
        self.handler.handle(&mut tx, event).await?;
        sqlx::query("UPDATE read_model_offsets SET next_position = $2 WHERE name = $1")
            .bind(&self.name)
            .bind(event.position as i64 + 1)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}
