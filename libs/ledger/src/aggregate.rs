//! Event-sourced aggregates on the ledger, in the shape of cqrs-es (`handle` decides,
//! `apply` folds and cannot fail) but synchronous and without a framework: the domain crate
//! holds the rules, this module loads a stream, runs the decision and appends the events with
//! optimistic concurrency, deciding again on a conflict.

use crate::{AppendReceipt, Error, Ledger, LedgerReader, Metadata, NewEvent, StreamId};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// An aggregate whose events live in one ledger stream `(TYPE, id)`.
pub trait Aggregate: Default + Send + Sync {
    /// The stream's aggregate type.
    const TYPE: &'static str;
    type Event: Serialize + DeserializeOwned + Send + Sync;
    /// Folds one event.
    fn apply(&mut self, event: &Self::Event);
    /// The event's type name on the ledger.
    fn event_type(event: &Self::Event) -> &'static str;
}

/// An aggregate as loaded, with the stream version it reflects.
#[derive(Debug, Clone, Default)]
pub struct Loaded<A> {
    pub state: A,
    /// 0 for a stream with no events.
    pub version: u64,
}

/// Outcome of a command that was accepted.
#[derive(Debug, Clone)]
pub struct Executed<A: Aggregate> {
    /// State after the new events.
    pub state: A,
    pub events: Vec<A::Event>,
    /// `None` when the decision produced no events (nothing appended).
    pub receipt: Option<AppendReceipt>,
}

/// A command that failed: refused by the rules, or the ledger failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError<E> {
    #[error("{0}")]
    Rejected(E),
    #[error(transparent)]
    Ledger(#[from] Error),
}

/// Loads the aggregate `(A::TYPE, id)`.
pub async fn load<A: Aggregate>(reader: &LedgerReader, id: &str) -> Result<Loaded<A>, Error> {
    let stream = StreamId::new(A::TYPE, id)?;
    let mut loaded = Loaded::<A>::default();
    loop {
        let batch = reader
            .read_stream(&stream, loaded.version + 1, 1000)
            .await?;
        if batch.is_empty() {
            return Ok(loaded);
        }
        for ev in &batch {
            let e: A::Event = ev.payload_as()?;
            loaded.state.apply(&e);
            loaded.version = ev.version;
        }
    }
}

/// How many times a command is decided again after losing a race for the stream.
const MAX_ATTEMPTS: usize = 5;

/// Loads, decides and appends. On a version conflict (another writer got there first) the
/// aggregate is loaded again and `decide` runs again on the new state.
pub async fn execute<A, E>(
    ledger: &Ledger,
    id: &str,
    metadata: &Metadata,
    decide: impl Fn(&A) -> Result<Vec<A::Event>, E>,
) -> Result<Executed<A>, ExecuteError<E>>
where
    A: Aggregate + Clone,
{
    let stream = StreamId::new(A::TYPE, id)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Loaded { mut state, version } = load::<A>(ledger, id).await?;
        let events = decide(&state).map_err(ExecuteError::Rejected)?;
        if events.is_empty() {
            return Ok(Executed {
                state,
                events,
                receipt: None,
            });
        }
        let new: Vec<NewEvent> = events
            .iter()
            .map(|e| NewEvent::json(A::event_type(e), e, metadata.clone()))
            .collect::<Result<_, _>>()?;
        match ledger.append(&stream, version, new).await {
            Ok(receipt) => {
                for e in &events {
                    state.apply(e);
                }
                return Ok(Executed {
                    state,
                    events,
                    receipt: Some(receipt),
                });
            }
            Err(Error::Conflict { .. }) if attempt < MAX_ATTEMPTS => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Declares `$name`, an [`Aggregate`] wrapping the domain type `$state` whose events `$event`
/// live in streams of `$type`. The domain type folds events with `apply(&mut self, &$event)`
/// and the event names itself with `event_type()`: the wrapper only binds them to the ledger
/// (the orphan rule keeps the domain crate free of ledger types).
#[macro_export]
macro_rules! ledger_aggregate {
    ($(#[$meta:meta])* $vis:vis $name:ident($state:ty), $type:expr, $event:ty) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default)]
        $vis struct $name(pub $state);

        impl $crate::aggregate::Aggregate for $name {
            const TYPE: &'static str = $type;
            type Event = $event;
            fn apply(&mut self, e: &$event) {
                self.0.apply(e);
            }
            fn event_type(e: &$event) -> &'static str {
                e.event_type()
            }
        }
    };
}
