//! The per-service promotion lock: at most one promotion in flight per service, across every
//! orchestrator replica. The lock is a ledger stream (`promotion_lock/<service>`), so taking
//! it is an append with an expected version: of two replicas racing, one wins and the other
//! sees the winner when it decides again. It outlives a crash of its holder — the promotion,
//! not the process, holds it — and is released when the promotion's target ends.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A lock whose holder never recorded its promotion (its replica died between taking the
/// lock and recording the request) may be broken after this long.
pub const ORPHAN_AFTER: time::Duration = time::Duration::minutes(2);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum LockEvent {
    LockAcquired {
        promotion_id: String,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    LockReleased {
        promotion_id: String,
        reason: String,
    },
}

impl LockEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::LockAcquired { .. } => "LockAcquired",
            Self::LockReleased { .. } => "LockReleased",
        }
    }
}

/// What the lock's holder is doing, as far as the orchestrator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// Its promotion is recorded and this service's target has not ended.
    InFlight,
    /// Its promotion is recorded and this service's target ended.
    Ended,
    /// No promotion with that id is recorded.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a promotion is already in flight for this service: {0}")]
pub struct Held(pub String);

/// The lock as folded from its events.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServiceLock {
    pub holder: Option<(String, OffsetDateTime)>,
}

impl ServiceLock {
    pub fn apply(&mut self, e: &LockEvent) {
        match e {
            LockEvent::LockAcquired { promotion_id, at } => {
                self.holder = Some((promotion_id.clone(), *at));
            }
            LockEvent::LockReleased { promotion_id, .. } => {
                if self.holder.as_ref().is_some_and(|(h, _)| h == promotion_id) {
                    self.holder = None;
                }
            }
        }
    }

    /// Takes the lock for `promotion_id`. A lock whose holder ended, or whose holder was never
    /// recorded and is older than [`ORPHAN_AFTER`], is released first (on the record).
    pub fn acquire(
        &self,
        promotion_id: &str,
        now: OffsetDateTime,
        holder: impl Fn(&str) -> Holder,
    ) -> Result<Vec<LockEvent>, Held> {
        let mut out = Vec::new();
        if let Some((h, at)) = &self.holder {
            if h == promotion_id {
                return Ok(out);
            }
            match holder(h) {
                Holder::InFlight => return Err(Held(h.clone())),
                Holder::Unknown if now - *at < ORPHAN_AFTER => return Err(Held(h.clone())),
                Holder::Ended => out.push(LockEvent::LockReleased {
                    promotion_id: h.clone(),
                    reason: "its target had ended".into(),
                }),
                Holder::Unknown => out.push(LockEvent::LockReleased {
                    promotion_id: h.clone(),
                    reason: "orphaned: the promotion was never recorded".into(),
                }),
            }
        }
        out.push(LockEvent::LockAcquired {
            promotion_id: promotion_id.to_owned(),
            at: now,
        });
        Ok(out)
    }

    /// Releases the lock if `promotion_id` holds it.
    pub fn release(&self, promotion_id: &str, reason: &str) -> Vec<LockEvent> {
        match &self.holder {
            Some((h, _)) if h == promotion_id => vec![LockEvent::LockReleased {
                promotion_id: promotion_id.to_owned(),
                reason: reason.to_owned(),
            }],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(events: &[LockEvent]) -> ServiceLock {
        let mut l = ServiceLock::default();
        for e in events {
            l.apply(e);
        }
        l
    }

    #[test]
    fn one_holder_at_a_time() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let l = fold(
            &ServiceLock::default()
                .acquire("p1", now, |_| Holder::Unknown)
                .unwrap(),
        );
        assert_eq!(
            l.acquire("p2", now, |_| Holder::InFlight),
            Err(Held("p1".into()))
        );
        // Re-taking one's own lock changes nothing.
        assert_eq!(l.acquire("p1", now, |_| Holder::InFlight), Ok(vec![]));
        let l = fold(&[
            LockEvent::LockAcquired {
                promotion_id: "p1".into(),
                at: now,
            },
            l.release("p1", "done").remove(0),
        ]);
        assert_eq!(l.holder, None);
        assert!(l.release("p1", "again").is_empty());
    }

    #[test]
    fn ended_and_orphaned_holders_are_released_on_the_record() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let l = fold(
            &ServiceLock::default()
                .acquire("p1", now, |_| Holder::Unknown)
                .unwrap(),
        );
        let e = l.acquire("p2", now, |_| Holder::Ended).unwrap();
        assert!(
            matches!(&e[0], LockEvent::LockReleased { promotion_id, .. } if promotion_id == "p1")
        );
        assert!(l
            .acquire("p2", now + time::Duration::seconds(10), |_| Holder::Unknown)
            .is_err());
        let e = l
            .acquire("p2", now + ORPHAN_AFTER, |_| Holder::Unknown)
            .unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(
            fold(&[
                LockEvent::LockAcquired {
                    promotion_id: "p1".into(),
                    at: now
                },
                e[0].clone(),
                e[1].clone()
            ])
            .holder
            .unwrap()
            .0,
            "p2"
        );
    }
}
