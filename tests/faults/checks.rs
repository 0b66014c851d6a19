//! The checkers, as pure functions over what the harness read back: the ledger's events, the
//! JetStream stream's messages and the acknowledged commands. Each returns what it found
//! wrong (empty: pass). The harness also runs them on damaged copies — a dropped event, a
//! duplicated one, a command whose event is gone, a promotion left unfinished — and on the
//! real stream after deleting a message and publishing a duplicate, and requires them to
//! fail: checkers that cannot fail prove nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// An acknowledged command (a 2xx) and the event it promises: an event of `event_type` on
/// `stream` whose payload mentions `mentions`.
#[derive(Debug, Clone)]
pub struct Ack {
    pub what: String,
    pub stream: String,
    pub event_type: String,
    pub mentions: Option<String>,
}

impl Ack {
    pub fn new(what: &str, stream: &str, event_type: &str, mentions: Option<&str>) -> Self {
        Self {
            what: what.to_owned(),
            stream: stream.to_owned(),
            event_type: event_type.to_owned(),
            mentions: mentions.map(str::to_owned),
        }
    }
}

/// A ledger event as the checkers need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEvent {
    pub position: u64,
    pub event_id: String,
    pub stream: String,
    pub event_type: String,
    pub payload: String,
}

impl LedgerEvent {
    pub fn aggregate(&self) -> &str {
        self.stream.split('/').next().unwrap_or_default()
    }
}

/// A message on the JetStream stream, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusMessage {
    pub subject: String,
    pub event_id: String,
    pub position: u64,
}

/// Acknowledged commands without their event.
pub fn lost(acks: &[Ack], ledger: &[LedgerEvent]) -> Vec<String> {
    let mut by_stream: HashMap<&str, Vec<&LedgerEvent>> = HashMap::new();
    for e in ledger {
        by_stream.entry(e.stream.as_str()).or_default().push(e);
    }
    acks.iter()
        .filter(|a| {
            !by_stream.get(a.stream.as_str()).is_some_and(|events| {
                events.iter().any(|e| {
                    e.event_type == a.event_type
                        && a.mentions
                            .as_ref()
                            .is_none_or(|m| e.payload.contains(&format!("\"{m}\"")))
                })
            })
        })
        .map(|a| format!("acknowledged but not recorded: {}", a.what))
        .collect()
}

/// Event ids that occur more than once (on the bus, or in the ledger).
pub fn duplicates<'a>(ids: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut seen = BTreeMap::<&str, u32>::new();
    for id in ids {
        *seen.entry(id).or_default() += 1;
    }
    seen.into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(id, n)| format!("event {id} occurs {n} times"))
        .collect()
}

/// Ledger events that never reached the bus, and bus messages that are not ledger events.
pub fn bus_differs(ledger: &[LedgerEvent], bus: &[BusMessage]) -> Vec<String> {
    let on_bus: BTreeSet<&str> = bus.iter().map(|m| m.event_id.as_str()).collect();
    let in_ledger: BTreeSet<&str> = ledger.iter().map(|e| e.event_id.as_str()).collect();
    let mut out: Vec<String> = ledger
        .iter()
        .filter(|e| !on_bus.contains(e.event_id.as_str()))
        .map(|e| {
            format!(
                "event {} ({} at {}) never reached the bus",
                e.event_id, e.event_type, e.position
            )
        })
        .collect();
    out.extend(
        bus.iter()
            .filter(|m| !in_ledger.contains(m.event_id.as_str()))
            .map(|m| {
                format!(
                    "bus message {} ({}) is not in the ledger",
                    m.event_id, m.subject
                )
            }),
    );
    out
}

/// Each service's relay publishes its events in ledger order: per writer, positions on the
/// stream only grow.
pub fn out_of_order(bus: &[BusMessage], prefix: &str) -> Vec<String> {
    let writers: HashMap<&str, &str> = goose_domain::events::families()
        .into_iter()
        .map(|f| (f.aggregate, f.writer))
        .collect();
    let mut last: HashMap<&str, u64> = HashMap::new();
    let mut out = Vec::new();
    for m in bus {
        let aggregate = m
            .subject
            .strip_prefix(prefix)
            .and_then(|s| s.strip_prefix('.'))
            .and_then(|s| s.split('.').next())
            .unwrap_or_default();
        let writer = writers.get(aggregate).copied().unwrap_or("unknown");
        if let Some(prev) = last.get(writer) {
            if m.position <= *prev {
                out.push(format!(
                    "{writer}'s events out of order on the bus: position {} after {prev}",
                    m.position
                ));
            }
        }
        last.insert(writer, m.position);
    }
    out
}

/// Promotions (streams `promotion/<id>`) without a `PromotionCompleted`.
pub fn unfinished(ledger: &[LedgerEvent]) -> Vec<String> {
    let mut promotions: BTreeMap<&str, bool> = BTreeMap::new();
    for e in ledger.iter().filter(|e| e.aggregate() == "promotion") {
        let done = promotions.entry(e.stream.as_str()).or_default();
        *done |= e.event_type == "PromotionCompleted";
    }
    promotions
        .into_iter()
        .filter(|(_, done)| !done)
        .map(|(s, _)| format!("{s} never reached an end state"))
        .collect()
}

/// Ledger positions must be 0..n with no hole.
pub fn holes(ledger: &[LedgerEvent]) -> Vec<String> {
    ledger
        .iter()
        .enumerate()
        .filter(|(i, e)| e.position != *i as u64)
        .map(|(i, e)| format!("ledger position {} where {i} was expected", e.position))
        .take(5)
        .collect()
}

/// Every checker over one run's data.
pub fn all(acks: &[Ack], ledger: &[LedgerEvent], bus: &[BusMessage], prefix: &str) -> Vec<String> {
    let mut out = lost(acks, ledger);
    out.extend(duplicates(ledger.iter().map(|e| e.event_id.as_str())));
    out.extend(duplicates(bus.iter().map(|m| m.event_id.as_str())));
    out.extend(bus_differs(ledger, bus));
    out.extend(out_of_order(bus, prefix));
    out.extend(unfinished(ledger));
    out.extend(holes(ledger));
    out
}

/// The canaries: damaged copies of a passing run's data, each of which the checker that
/// claims to catch it must fail. Returns the canaries that went unnoticed.
pub fn canaries(acks: &[Ack], ledger: &[LedgerEvent], bus: &[BusMessage]) -> Vec<&'static str> {
    let mut missed = Vec::new();
    // An event the bus dropped.
    let mut dropped = bus.to_vec();
    dropped.remove(dropped.len() / 2);
    if bus_differs(ledger, &dropped).is_empty() {
        missed.push("a dropped bus message");
    }
    // An event the bus delivered twice.
    let mut doubled = bus.to_vec();
    doubled.push(bus[bus.len() / 3].clone());
    if duplicates(doubled.iter().map(|m| m.event_id.as_str())).is_empty() {
        missed.push("a duplicated bus message");
    }
    // An event recorded twice.
    let mut twice = ledger.to_vec();
    twice.push(ledger[ledger.len() / 2].clone());
    if duplicates(twice.iter().map(|e| e.event_id.as_str())).is_empty() {
        missed.push("a duplicated ledger event");
    }
    // An acknowledged upload whose event is gone.
    match acks.iter().position(|a| a.event_type == "EvidenceAccepted") {
        Some(i) => {
            let ack = &acks[i];
            let gone: Vec<LedgerEvent> = ledger
                .iter()
                .filter(|e| {
                    !(e.stream == ack.stream
                        && ack
                            .mentions
                            .as_ref()
                            .is_some_and(|m| e.payload.contains(&format!("\"{m}\""))))
                })
                .cloned()
                .collect();
            if lost(acks, &gone).is_empty() {
                missed.push("an acknowledged upload lost");
            }
        }
        None => missed.push("an acknowledged upload lost (no upload was acknowledged)"),
    }
    // Promotions that never ended.
    let open: Vec<LedgerEvent> = ledger
        .iter()
        .filter(|e| e.event_type != "PromotionCompleted")
        .cloned()
        .collect();
    if unfinished(&open).is_empty() {
        missed.push("promotions left unfinished");
    }
    // A hole in the positions.
    let mut holed = ledger.to_vec();
    holed.remove(ledger.len() / 2);
    if holes(&holed).is_empty() {
        missed.push("a hole in the ledger's positions");
    }
    missed
}
