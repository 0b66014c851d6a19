//! Event types: what a writer hands the ledger, and what the ledger gives back.

use crate::{Error, Result};
use std::collections::BTreeMap;
use std::fmt;
use time::OffsetDateTime;
use uuid::Uuid;

/// A SHA3-256 event digest.
pub type Digest = [u8; 32];

/// Identifies one aggregate instance: its type (`registry.service`, say, is spelt
/// `registry_service`) and its id.
///
/// The aggregate type becomes a NATS subject token, so it is restricted to
/// `[A-Za-z0-9_-]{1,64}`; the id may be any 1..=256 characters without control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId {
    aggregate_type: String,
    aggregate_id: String,
}

/// Validates a name that ends up in a NATS subject token or a column (`aggregate type`, `event type`).
pub(crate) fn check_token(what: &'static str, value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "{what} {value:?} must be 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'"
        )))
    }
}

impl StreamId {
    /// Builds a stream id, checking both parts.
    pub fn new(aggregate_type: impl Into<String>, aggregate_id: impl Into<String>) -> Result<Self> {
        let aggregate_type = aggregate_type.into();
        let aggregate_id = aggregate_id.into();
        check_token("aggregate type", &aggregate_type)?;
        if aggregate_id.is_empty()
            || aggregate_id.chars().count() > 256
            || aggregate_id.chars().any(char::is_control)
        {
            return Err(Error::InvalidInput(format!(
                "aggregate id {aggregate_id:?} must be 1 to 256 characters without control characters"
            )));
        }
        Ok(Self {
            aggregate_type,
            aggregate_id,
        })
    }

    pub fn aggregate_type(&self) -> &str {
        &self.aggregate_type
    }

    pub fn aggregate_id(&self) -> &str {
        &self.aggregate_id
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.aggregate_type, self.aggregate_id)
    }
}

/// Who did it, why, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The authenticated principal (user or service) that caused the event.
    pub actor: String,
    pub correlation_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
    /// When the writer recorded it (nanosecond precision is kept).
    pub recorded_at: OffsetDateTime,
    /// Free-form extra attributes (sorted, so the encoding is canonical).
    pub attributes: BTreeMap<String, String>,
}

impl Metadata {
    /// Metadata for `actor`, recorded now.
    pub fn now(actor: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            correlation_id: None,
            causation_id: None,
            recorded_at: OffsetDateTime::now_utc(),
            attributes: BTreeMap::new(),
        }
    }
}

/// An event a writer wants to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Client-chosen; appending the same id again returns the original position.
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: String,
    /// JSON, stored and hashed byte for byte as given.
    pub payload: Vec<u8>,
    pub metadata: Metadata,
}

impl NewEvent {
    /// A new event with a fresh (time-ordered) id, serialising `payload` to JSON.
    pub fn json(
        event_type: impl Into<String>,
        payload: &impl serde::Serialize,
        metadata: Metadata,
    ) -> Result<Self> {
        Ok(Self {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version: "1".to_owned(),
            payload: serde_json::to_vec(payload)
                .map_err(|e| Error::InvalidInput(format!("payload is not serialisable: {e}")))?,
            metadata,
        })
    }

    pub(crate) fn validate(&self) -> Result<()> {
        check_token("event type", &self.event_type)?;
        if self.schema_version.is_empty()
            || self.schema_version.len() > 32
            || self
                .schema_version
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Error::InvalidInput(format!(
                "schema version {:?} must be 1 to 32 characters without whitespace",
                self.schema_version
            )));
        }
        serde_json::from_slice::<serde::de::IgnoredAny>(&self.payload).map_err(|e| {
            Error::InvalidInput(format!(
                "payload of event {} is not valid JSON: {e}",
                self.event_id
            ))
        })?;
        if self.metadata.actor.is_empty() || self.metadata.actor.chars().any(char::is_control) {
            return Err(Error::InvalidInput(
                "metadata.actor must be non-empty and free of control characters".to_owned(),
            ));
        }
        Ok(())
    }
}

/// An event as stored: everything the writer gave, plus where the ledger put it and the proof
/// material (digest, chain link).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Global position, 0-based; equals the Merkle leaf index.
    pub position: u64,
    pub stream: StreamId,
    /// Version within the stream, 1-based (the first event of a stream has version 1).
    pub version: u64,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: String,
    pub payload: Vec<u8>,
    pub metadata: Metadata,
    /// The key id (`name+hex`) of the writer: the service key that sealed the event's commit.
    pub key_id: String,
    /// Digest of the event at `position - 1` (zeros for position 0).
    pub previous_digest: Digest,
    /// SHA3-256 of [`RecordedEvent::record`].
    pub digest: Digest,
    /// The exact canonical bytes stored (see `docs/chain-format.md`).
    pub record: Vec<u8>,
}

impl RecordedEvent {
    /// Decodes the payload as JSON.
    pub fn payload_as<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.payload).map_err(|e| Error::Corrupt {
            position: self.position,
            reason: format!("payload does not decode: {e}"),
        })
    }
}

/// Where an append put its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendReceipt {
    /// Global position of the first event of the batch.
    pub first_position: u64,
    /// Global position of the last event of the batch.
    pub last_position: u64,
    /// Stream version after the batch.
    pub stream_version: u64,
    /// True when every event id already existed and nothing new was written.
    pub duplicate: bool,
}
