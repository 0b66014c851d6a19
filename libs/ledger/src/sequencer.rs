//! The pure half of a commit: given the locked head of the log and what the store already
//! holds, decide each request's fate and build the rows to insert. Backends do the I/O around
//! it, inside one transaction that holds the log's head lock, so positions are assigned in
//! commit order and there are never gaps.

use crate::canonical;
use crate::event::{AppendReceipt, Digest, StreamId};
use crate::merkle::Frontier;
use crate::seal::Sealer;
use crate::{Error, Result};
use std::collections::HashMap;
use uuid::Uuid;

/// An event whose content is encoded (done outside the lock, by the caller).
#[derive(Debug, Clone)]
pub struct PreparedEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub content: Vec<u8>,
}

/// One caller's batch.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    pub stream: StreamId,
    pub expected_version: u64,
    pub events: Vec<PreparedEvent>,
}

/// Where an existing event id lives.
#[derive(Debug, Clone)]
pub struct ExistingEvent {
    pub position: u64,
    pub stream: StreamId,
    pub version: u64,
}

/// A row to insert.
#[derive(Debug, Clone)]
pub struct NewRow {
    pub position: u64,
    pub event_id: Uuid,
    pub stream: StreamId,
    pub version: u64,
    pub event_type: String,
    pub record: Vec<u8>,
    pub digest: Digest,
    /// Concatenated subtree hashes completed by this leaf (see [`crate::merkle`]).
    pub subtrees: Vec<u8>,
    /// The commit's seal note, on the commit's last row only.
    pub seal: Option<String>,
}

/// The head of the log under the lock.
#[derive(Debug, Clone)]
pub struct Head {
    pub last_digest: Digest,
    pub frontier: Frontier,
}

/// Plans a group of requests. Each request is all-or-nothing on its own; a failed request does
/// not affect the others.
pub fn plan_group(
    head: &mut Head,
    stream_versions: &HashMap<StreamId, u64>,
    existing: &HashMap<Uuid, ExistingEvent>,
    requests: &[AppendRequest],
) -> (Vec<NewRow>, Vec<Result<AppendReceipt>>) {
    let mut rows = Vec::new();
    let mut outcomes = Vec::with_capacity(requests.len());
    let mut versions = stream_versions.clone();
    // Ids written earlier in this same group count as existing too.
    let mut in_group: HashMap<Uuid, ExistingEvent> = HashMap::new();

    for req in requests {
        let mut ids = std::collections::HashSet::with_capacity(req.events.len());
        if let Some(dup) = req.events.iter().find(|e| !ids.insert(e.event_id)) {
            outcomes.push(Err(Error::InvalidInput(format!(
                "event id {} appears twice in one batch",
                dup.event_id
            ))));
            continue;
        }
        let lookup = |id: &Uuid| existing.get(id).or_else(|| in_group.get(id)).cloned();
        let found: Vec<Option<ExistingEvent>> =
            req.events.iter().map(|e| lookup(&e.event_id)).collect();
        if found.iter().all(Option::is_some) && !found.is_empty() {
            // A retry of a batch that was already committed: return the original positions.
            let found: Vec<ExistingEvent> = found.into_iter().flatten().collect();
            let same_stream = found.iter().all(|f| f.stream == req.stream);
            let contiguous = found.windows(2).all(|w| w[1].version == w[0].version + 1);
            if same_stream && contiguous && found[0].version == req.expected_version + 1 {
                let first = &found[0];
                let last = &found[found.len() - 1];
                outcomes.push(Ok(AppendReceipt {
                    first_position: first.position,
                    last_position: last.position,
                    stream_version: last.version,
                    duplicate: true,
                }));
            } else {
                outcomes.push(Err(mismatch(req.events[0].event_id, &found[0])));
            }
            continue;
        }
        if let Some((ev, f)) = req
            .events
            .iter()
            .zip(&found)
            .find_map(|(e, f)| f.as_ref().map(|f| (e, f)))
        {
            outcomes.push(Err(mismatch(ev.event_id, f)));
            continue;
        }
        let actual = versions.get(&req.stream).copied().unwrap_or(0);
        if actual != req.expected_version {
            outcomes.push(Err(Error::Conflict {
                stream: req.stream.to_string(),
                expected: req.expected_version,
                actual,
            }));
            continue;
        }
        let first_position = head.frontier.size();
        for (i, ev) in req.events.iter().enumerate() {
            let position = head.frontier.size();
            let version = req.expected_version + 1 + i as u64;
            let record = canonical::encode_record(position, &head.last_digest, &ev.content);
            let digest = canonical::digest(&record);
            let (_, completed) = head.frontier.push(&digest);
            head.last_digest = digest;
            in_group.insert(
                ev.event_id,
                ExistingEvent {
                    position,
                    stream: req.stream.clone(),
                    version,
                },
            );
            rows.push(NewRow {
                position,
                event_id: ev.event_id,
                stream: req.stream.clone(),
                version,
                event_type: ev.event_type.clone(),
                record,
                digest,
                subtrees: completed.concat(),
                seal: None,
            });
        }
        let new_version = req.expected_version + req.events.len() as u64;
        versions.insert(req.stream.clone(), new_version);
        outcomes.push(Ok(AppendReceipt {
            first_position,
            last_position: head.frontier.size() - 1,
            stream_version: new_version,
            duplicate: false,
        }));
    }
    (rows, outcomes)
}

/// Seals the planned rows as one commit: the last row carries the seal over the tree `head`
/// has grown to. Call after [`plan_group`] with the same head, only when rows were planned.
pub fn seal_rows(rows: &mut [NewRow], head: &Head, sealer: &Sealer) -> Result<()> {
    let (Some(first), Some(last)) = (rows.first().map(|r| r.position), rows.last_mut()) else {
        return Ok(());
    };
    let seal = sealer.seal(first, head.frontier.size(), &head.frontier.root())?;
    last.seal = Some(seal.note);
    Ok(())
}

fn mismatch(event_id: Uuid, f: &ExistingEvent) -> Error {
    Error::IdempotencyMismatch {
        event_id,
        existing: format!(
            "{} version {} (position {})",
            f.stream, f.version, f.position
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(stream: &str, expected: u64, ids: &[u128]) -> AppendRequest {
        AppendRequest {
            stream: StreamId::new("t", stream).unwrap(),
            expected_version: expected,
            events: ids
                .iter()
                .map(|i| PreparedEvent {
                    event_id: Uuid::from_u128(*i),
                    event_type: "E".into(),
                    content: vec![*i as u8],
                })
                .collect(),
        }
    }

    fn head() -> Head {
        Head {
            last_digest: [0; 32],
            frontier: Frontier::default(),
        }
    }

    #[test]
    fn assigns_positions_in_order_and_chains_digests() {
        let mut h = head();
        let (rows, out) = plan_group(
            &mut h,
            &HashMap::new(),
            &HashMap::new(),
            &[req("a", 0, &[1, 2]), req("b", 0, &[3])],
        );
        assert_eq!(
            rows.iter().map(|r| r.position).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        let prev = canonical::RECORD_PREVIOUS_OFFSET;
        assert_eq!(rows[1].record[prev..prev + 32], rows[0].digest);
        assert_eq!(out[1].as_ref().unwrap().first_position, 2);
        assert_eq!(h.last_digest, rows[2].digest);
    }

    #[test]
    fn conflicting_request_writes_nothing_and_spares_the_others() {
        let mut h = head();
        let versions = HashMap::from([(StreamId::new("t", "a").unwrap(), 5)]);
        let (rows, out) = plan_group(
            &mut h,
            &versions,
            &HashMap::new(),
            &[req("a", 4, &[1, 2]), req("b", 0, &[3]), req("b", 0, &[4])],
        );
        assert!(matches!(out[0], Err(Error::Conflict { actual: 5, .. })));
        assert!(out[1].is_ok());
        // The second writer to b in the same group sees the first's events.
        assert!(matches!(out[2], Err(Error::Conflict { actual: 1, .. })));
        assert_eq!(rows.len(), 1);
    }

    #[test]
    fn retry_returns_original_positions_and_partial_reuse_is_refused() {
        let mut h = head();
        let (_, out) = plan_group(
            &mut h,
            &HashMap::new(),
            &HashMap::new(),
            &[
                req("a", 0, &[1, 2]),
                req("a", 0, &[1, 2]),
                req("a", 2, &[2, 9]),
            ],
        );
        let first = out[0].as_ref().unwrap();
        let again = out[1].as_ref().unwrap();
        assert!(again.duplicate);
        assert_eq!(
            (again.first_position, again.last_position),
            (first.first_position, first.last_position)
        );
        assert!(matches!(out[2], Err(Error::IdempotencyMismatch { .. })));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// A request: which of 3 streams, how far off the right expected version, which ids
        /// (from a small pool, so retries and reuse happen).
        fn requests() -> impl Strategy<Value = Vec<(u8, i8, Vec<u8>)>> {
            prop::collection::vec(
                (0u8..3, -1i8..=1, prop::collection::vec(0u8..12, 1..4)),
                1..12,
            )
        }

        proptest! {
            /// Whatever mix of good, stale, retried and conflicting requests arrives, the rows
            /// written are gap-free, chained, each stream's versions are contiguous from 1, and
            /// no event id is written twice.
            #[test]
            fn groups_keep_every_invariant(reqs in requests()) {
                let mut h = head();
                let mut written: Vec<NewRow> = Vec::new();
                let mut versions: HashMap<StreamId, u64> = HashMap::new();
                let mut existing: HashMap<Uuid, ExistingEvent> = HashMap::new();
                // Feed the requests in groups of two, carrying state across groups as the
                // database would.
                for chunk in reqs.chunks(2) {
                    let group: Vec<AppendRequest> = chunk
                        .iter()
                        .map(|(s, off, ids)| {
                            let stream = format!("s{s}");
                            let current = versions
                                .get(&StreamId::new("t", stream.as_str()).unwrap())
                                .copied()
                                .unwrap_or(0);
                            let expected = (current as i64 + i64::from(*off)).max(0) as u64;
                            let ids: Vec<u128> = ids.iter().map(|i| u128::from(*i)).collect();
                            req(&stream, expected, &ids)
                        })
                        .collect();
                    let (rows, outcomes) = plan_group(&mut h, &versions, &existing, &group);
                    prop_assert_eq!(outcomes.len(), group.len());
                    for r in &rows {
                        versions.insert(r.stream.clone(), r.version);
                        prop_assert!(existing
                            .insert(r.event_id, ExistingEvent {
                                position: r.position,
                                stream: r.stream.clone(),
                                version: r.version,
                            })
                            .is_none(), "event id written twice");
                    }
                    written.extend(rows);
                }
                let mut previous = [0u8; 32];
                for (i, r) in written.iter().enumerate() {
                    prop_assert_eq!(r.position, i as u64);
                    let prev = canonical::RECORD_PREVIOUS_OFFSET;
                    prop_assert_eq!(&r.record[prev..prev + 32], &previous[..]);
                    previous = r.digest;
                }
                let mut per_stream: HashMap<&StreamId, u64> = HashMap::new();
                for r in &written {
                    let v = per_stream.entry(&r.stream).or_insert(0);
                    prop_assert_eq!(r.version, *v + 1);
                    *v = r.version;
                }
                prop_assert_eq!(h.frontier.size(), written.len() as u64);
            }
        }
    }
}
