//! The event bus that carries committed ledger events to the services.
//!
//! [`Bus`] has two implementations: [`jetstream::JetStreamBus`] (NATS JetStream, for services)
//! and [`memory::MemoryBus`] (in-process, for `goosectl dev`). The ledger stays the system of
//! record: [`relay::OutboxRelay`] publishes what was committed, in order, resuming from a
//! durable cursor after a crash; [`follow::Follower`] applies events to an in-memory read
//! model exactly once, in order, filling any gap in positions from the ledger.

pub mod follow;
pub mod jetstream;
pub mod memory;
pub mod relay;

use goose_ledger::RecordedEvent;
use std::time::Duration;

/// Errors of the bus.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bus unavailable: {0}")]
    Unavailable(String),
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error(transparent)]
    Ledger(#[from] goose_ledger::Error),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where events go: stream name and subject prefix. Subjects are
/// `<prefix>.<aggregate type>.<event type>`.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// JetStream stream name (`GOOSE_EVENTS`).
    pub stream: String,
    /// Subject prefix (`goose.evt`).
    pub subject_prefix: String,
    /// How long a delivered, unacknowledged message waits before redelivery.
    pub ack_wait: Duration,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            stream: "GOOSE_EVENTS".into(),
            subject_prefix: "goose.evt".into(),
            ack_wait: Duration::from_secs(30),
        }
    }
}

impl BusConfig {
    /// The subject an event is published on.
    pub fn subject(&self, event: &RecordedEvent) -> String {
        format!(
            "{}.{}.{}",
            self.subject_prefix,
            event.stream.aggregate_type(),
            event.event_type
        )
    }

    /// The subject filter for a consumer: all events, or one aggregate type's.
    pub fn filter(&self, aggregate_type: Option<&str>) -> String {
        match aggregate_type {
            None => format!("{}.>", self.subject_prefix),
            Some(t) => format!("{}.{t}.>", self.subject_prefix),
        }
    }
}

/// The W3C Trace Context names, as NATS headers and event attributes.
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// The W3C trace context an event was appended under (from its metadata attributes).
pub fn trace_context_of(event: &RecordedEvent) -> std::collections::BTreeMap<String, String> {
    [TRACEPARENT, TRACESTATE]
        .into_iter()
        .filter_map(|k| {
            let v = event.metadata.attributes.get(k)?;
            Some((k.to_owned(), v.clone()))
        })
        .collect()
}

/// One delivered event; acknowledge it once applied.
pub struct Delivery {
    pub event: RecordedEvent,
    /// The W3C trace context the message carried (`traceparent`, `tracestate`): NATS
    /// headers on JetStream, the event's attributes in process.
    pub trace_context: std::collections::BTreeMap<String, String>,
    acker: Acker,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("position", &self.event.position)
            .finish()
    }
}

enum Acker {
    JetStream(Box<async_nats::jetstream::Message>),
    Memory(memory::MemoryAck),
}

impl Delivery {
    /// Acknowledges the delivery: it will not be redelivered. Waits for the server to confirm
    /// (JetStream "double ack"), so a returned `Ok` means the ack was recorded.
    pub async fn ack(self) -> Result<()> {
        match self.acker {
            Acker::JetStream(m) => m
                .double_ack()
                .await
                .map_err(|e| Error::Unavailable(format!("ack failed: {e}"))),
            Acker::Memory(a) => {
                a.ack();
                Ok(())
            }
        }
    }
}

/// A publish/subscribe transport for committed events.
#[async_trait::async_trait]
pub trait Bus: Send + Sync + std::fmt::Debug {
    /// Publishes events in the given order and returns once the bus has accepted all of them.
    /// Publishing an event again is harmless (deduplicated by event id).
    async fn publish(&self, events: &[RecordedEvent]) -> Result<()>;

    /// Opens (or resumes) the durable consumer `name`, optionally for one aggregate type.
    async fn subscribe(
        &self,
        name: &str,
        aggregate_type: Option<&str>,
    ) -> Result<Box<dyn Subscription>>;

    /// Opens a consumer for this process alone that delivers only events published from now
    /// on, and is removed by the server once the process stops fetching. For in-memory read
    /// models, which catch up from the ledger first ([`follow::Follower`]).
    async fn subscribe_live(&self, aggregate_type: Option<&str>) -> Result<Box<dyn Subscription>>;

    /// Whether the transport answers now (readiness and the `goose_dependency_up` gauge).
    /// In-process buses always do.
    async fn health(&self) -> Result<()> {
        Ok(())
    }
}

/// A durable, explicitly acknowledged pull subscription.
#[async_trait::async_trait]
pub trait Subscription: Send + Sync {
    /// Up to `max` deliveries, waiting at most `wait` for the first.
    async fn fetch(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>>;
}

/// Checks that a consumer name is usable as a JetStream durable name.
pub(crate) fn check_consumer_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(Error::Malformed(format!(
            "consumer name {name:?} must be 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'"
        )));
    }
    Ok(())
}
