//! The append-only event store of Golden Goose, which doubles as the tamper-evident evidence
//! chain.
//!
//! Every event is encoded canonically ([`canonical`]), chained to the event before it by
//! digest, and becomes a leaf of an RFC 6962 Merkle tree ([`merkle`]); every commit is sealed
//! by the writing service's key over its positions and the tree after it ([`seal`], [`keys`]);
//! signed checkpoints ([`checkpoint`]) kept outside the database let anyone verify the log
//! offline ([`verify`]).
//!
//! [`Ledger`] is the one entry point; it runs on a [`Backend`]: [`postgres::PgBackend`] for
//! services, [`sqlite::SqliteBackend`] for `goosectl dev`. Both pass the same conformance suite.

pub mod aggregate;
pub mod canonical;
pub mod checkpoint;
pub mod event;
pub mod keys;
pub mod merkle;
pub mod postgres;
pub mod seal;
#[doc(hidden)]
pub mod sequencer;
pub mod sqlite;
mod store;
pub mod verify;
pub mod witness;

#[cfg(test)]
mod fuzz;

pub use checkpoint::{Checkpoint, SignedCheckpoint, TlogProof};
pub use event::{AppendReceipt, Digest, Metadata, NewEvent, RecordedEvent, StreamId};
pub use keys::{Keyring, NoteKey, Vkey};
pub use seal::{Authorship, Seal, Sealer};
pub use store::telemetry;
pub use store::{
    Backend, InclusionProof, Leadership, Ledger, LedgerConfig, LedgerReader, StoredCheckpoint,
    StoredRow, DEFAULT_ORIGIN,
};

/// Errors of the ledger.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller's input is invalid; nothing was written.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Optimistic concurrency: the stream moved on; nothing was written.
    #[error("stream {stream} is at version {actual}, not the expected {expected}")]
    Conflict {
        stream: String,
        expected: u64,
        actual: u64,
    },
    /// An event id was reused for a different event.
    #[error("event id {event_id} already exists at {existing}; an idempotent retry must resend the same batch")]
    IdempotencyMismatch {
        event_id: uuid::Uuid,
        existing: String,
    },
    #[error("event {0} not found")]
    NotFound(String),
    /// The store could not be reached or failed; the append may be retried (it is idempotent).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Stored data does not decode or does not verify.
    #[error("position {position}: {reason}")]
    Corrupt { position: u64, reason: String },
    #[error("key error: {0}")]
    Key(String),
    #[error("bad checkpoint: {0}")]
    BadCheckpoint(String),
    #[error("bad proof: {0}")]
    BadProof(String),
    #[error("the ledger has shut down")]
    Closed,
}

impl Error {
    /// Whether retrying the same call may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Self::Unavailable(format!("migration failed: {e}"))
    }
}

impl From<merkle::ProofError> for Error {
    fn from(e: merkle::ProofError) -> Self {
        match e {
            merkle::ProofError::IndexOutOfRange { .. } | merkle::ProofError::BadSizes { .. } => {
                Self::InvalidInput(e.to_string())
            }
            other => Self::BadProof(other.to_string()),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
