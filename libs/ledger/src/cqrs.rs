//! cqrs-es 0.5 persistence over the ledger: aggregates written with cqrs-es store their events
//! here, hashed, signed and chained like every other event.
//!
//! Snapshots are not supported (aggregates are rebuilt from their events); a store built with
//! `PersistedEventStore::new_event_store` never asks for them.

use crate::event::{Metadata, NewEvent, RecordedEvent, StreamId};
use crate::{Error, Ledger};
use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// Metadata keys with a meaning of their own; everything else goes to attributes.
pub const ACTOR: &str = "actor";
pub const CORRELATION_ID: &str = "correlation_id";
pub const CAUSATION_ID: &str = "causation_id";
const RECORDED_AT: &str = "recorded_at";

/// A [`PersistedEventRepository`] backed by a [`Ledger`].
#[derive(Debug, Clone)]
pub struct LedgerEventRepository {
    ledger: Ledger,
}

impl LedgerEventRepository {
    pub fn new(ledger: Ledger) -> Self {
        Self { ledger }
    }
}

fn to_persistence(e: Error) -> PersistenceError {
    match e {
        Error::Conflict { .. } => PersistenceError::OptimisticLockError,
        Error::Unavailable(_) | Error::Closed => PersistenceError::ConnectionError(Box::new(e)),
        Error::Corrupt { .. } => PersistenceError::DeserializationError(Box::new(e)),
        other => PersistenceError::UnknownError(Box::new(other)),
    }
}

fn serialize(ev: &RecordedEvent) -> Result<SerializedEvent, PersistenceError> {
    let payload: Value = serde_json::from_slice(&ev.payload)?;
    let mut meta: HashMap<String, String> = ev.metadata.attributes.clone().into_iter().collect();
    meta.insert(ACTOR.into(), ev.metadata.actor.clone());
    if let Some(c) = ev.metadata.correlation_id {
        meta.insert(CORRELATION_ID.into(), c.to_string());
    }
    if let Some(c) = ev.metadata.causation_id {
        meta.insert(CAUSATION_ID.into(), c.to_string());
    }
    if let Ok(t) = ev
        .metadata
        .recorded_at
        .format(&time::format_description::well_known::Rfc3339)
    {
        meta.insert(RECORDED_AT.into(), t);
    }
    Ok(SerializedEvent {
        aggregate_id: ev.stream.aggregate_id().to_owned(),
        sequence: ev.version as usize,
        aggregate_type: ev.stream.aggregate_type().to_owned(),
        event_type: ev.event_type.clone(),
        event_version: ev.schema_version.clone(),
        payload,
        metadata: serde_json::to_value(meta)?,
    })
}

fn metadata_of(value: &Value) -> Result<Metadata, PersistenceError> {
    let mut map: BTreeMap<String, String> = serde_json::from_value(value.clone())?;
    let parse_id = |v: Option<String>| -> Result<Option<Uuid>, PersistenceError> {
        v.map(|s| Uuid::parse_str(&s))
            .transpose()
            .map_err(|e| PersistenceError::UnknownError(Box::new(e)))
    };
    let mut md = Metadata::now(map.remove(ACTOR).unwrap_or_else(|| "system".to_owned()));
    md.correlation_id = parse_id(map.remove(CORRELATION_ID))?;
    md.causation_id = parse_id(map.remove(CAUSATION_ID))?;
    map.remove(RECORDED_AT);
    md.attributes = map;
    Ok(md)
}

impl PersistedEventRepository for LedgerEventRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.get_last_events::<A>(aggregate_id, 0).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let stream = StreamId::new(A::TYPE, aggregate_id).map_err(to_persistence)?;
        let mut out = Vec::new();
        let mut from = last_sequence as u64 + 1;
        loop {
            let batch = self
                .ledger
                .read_stream(&stream, from, 1000)
                .await
                .map_err(to_persistence)?;
            let done = batch.len() < 1000;
            for ev in &batch {
                out.push(serialize(ev)?);
                from = ev.version + 1;
            }
            if done {
                return Ok(out);
            }
        }
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        _aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        Ok(None)
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        if snapshot_update.is_some() {
            return Err(PersistenceError::UnknownError(
                "the ledger keeps no snapshots; use PersistedEventStore::new_event_store".into(),
            ));
        }
        let Some(first) = events.first() else {
            return Ok(());
        };
        let stream = StreamId::new(A::TYPE, first.aggregate_id.clone()).map_err(to_persistence)?;
        let expected = (first.sequence as u64).saturating_sub(1);
        let mut batch = Vec::with_capacity(events.len());
        for ev in events {
            if ev.aggregate_id != first.aggregate_id {
                return Err(PersistenceError::UnknownError(
                    "one commit must touch one aggregate".into(),
                ));
            }
            batch.push(NewEvent {
                event_id: Uuid::now_v7(),
                event_type: ev.event_type.clone(),
                schema_version: ev.event_version.clone(),
                payload: serde_json::to_vec(&ev.payload)?,
                metadata: metadata_of(&ev.metadata)?,
            });
        }
        self.ledger
            .append(&stream, expected, batch)
            .await
            .map(|_| ())
            .map_err(to_persistence)
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        let events = self.get_events::<A>(aggregate_id).await?;
        let (mut feed, stream) = ReplayStream::new(events.len().max(1));
        for ev in events {
            feed.push(Ok(ev)).await?;
        }
        Ok(stream)
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        let ledger = self.ledger.clone();
        let (mut feed, stream) = ReplayStream::new(256);
        tokio::spawn(async move {
            let mut from = 0;
            loop {
                let batch = match ledger.read_all(from, 1000).await {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = feed.push(Err(to_persistence(e))).await;
                        return;
                    }
                };
                if batch.is_empty() {
                    return;
                }
                from += batch.len() as u64;
                for ev in batch
                    .iter()
                    .filter(|e| e.stream.aggregate_type() == A::TYPE)
                {
                    if feed.push(serialize(ev)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(stream)
    }
}
