//! Read models owned by the platform: a service writes a [`View`] (what it keeps and how an
//! event changes it); [`ViewHandle`] does the rest the same way for every service — following
//! the ledger, locking (`parking_lot`: a panic in `apply` does not poison the view), and
//! read-your-writes waits that end in [`Stale`] instead of a silent stale read.
//!
//! Decode events in `apply` with [`crate::decoded`]: an event that does not decode is logged and
//! counted (`goose_read_model_undecodable_events_total`), never dropped without a word.

use crate::{Platform, READ_YOUR_WRITES};
use goose_bus::follow::{Follower, Stale};
use goose_ledger::RecordedEvent;
use goose_runtime::problem::Problem;
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::sync::Arc;
use tokio::sync::watch;

/// An in-memory read model.
pub trait View: Default + Send + Sync + 'static {
    /// The aggregate types whose events it applies (`goose_domain::streams`).
    const FOLLOWS: &'static [&'static str];
    /// Applies one event; called in position order, exactly once per event.
    fn apply(&mut self, ev: &RecordedEvent);
}

/// A running view: shared state plus the follower that keeps it current. Cheap to clone.
#[derive(Debug)]
pub struct ViewHandle<V> {
    state: Arc<RwLock<V>>,
    follower: Follower,
    /// One past the position of the newest event applied: sent under the state's write lock,
    /// so a reader holding the read lock sees the position its state reflects.
    changed: Arc<watch::Sender<u64>>,
}

impl<V> Clone for ViewHandle<V> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            follower: self.follower.clone(),
            changed: self.changed.clone(),
        }
    }
}

fn write<V>(state: &RwLock<V>) -> RwLockWriteGuard<'_, V> {
    // parking_lot locks do not poison: after a panic inside `apply` (logged by the follower)
    // the view keeps serving what it has; each event is applied once, never replayed twice.
    state.write()
}

impl<V: View> ViewHandle<V> {
    /// Catches the view up with the ledger, then follows it until the platform stops.
    pub async fn start(platform: &Platform) -> anyhow::Result<Self> {
        Self::follow(&platform.ledger, platform.bus.clone(), platform.stopped()).await
    }

    /// As [`ViewHandle::start`], from the parts (for views the platform itself starts).
    pub async fn follow(
        ledger: &goose_ledger::Ledger,
        bus: Arc<dyn goose_bus::Bus>,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<Self> {
        Self::follow_from(V::default(), 0, ledger, bus, stop).await
    }

    async fn follow_from(
        initial: V,
        next: u64,
        ledger: &goose_ledger::Ledger,
        bus: Arc<dyn goose_bus::Bus>,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<Self> {
        let state = Arc::new(RwLock::new(initial));
        let changed = Arc::new(watch::channel(next).0);
        let (s, c) = (state.clone(), changed.clone());
        let follower = Follower::start_at(
            next,
            (**ledger).clone(),
            bus,
            V::FOLLOWS,
            Arc::new(move |ev| {
                let mut guard = write(&s);
                guard.apply(ev);
                c.send_replace(ev.position + 1);
            }),
            stop,
        )
        .await?;
        Ok(Self {
            state,
            follower,
            changed,
        })
    }

    /// Every position below this one has been considered (applied, or not of this view).
    pub fn position(&self) -> u64 {
        (*self.changed.borrow()).max(self.follower.next_position())
    }

    /// Changes after every event applied (its value: one past that event's position).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Changes state that is not derived from events — caches, memos — under the same lock
    /// as `apply`. Never use it for what an event should say.
    pub fn amend<R>(&self, f: impl FnOnce(&mut V) -> R) -> R {
        f(&mut write(&self.state))
    }

    /// The current state.
    pub fn read(&self) -> RwLockReadGuard<'_, V> {
        self.state.read()
    }

    /// Waits until everything recorded now is applied, without the platform at hand.
    pub async fn catch_up_now(&self) -> Result<(), Stale> {
        self.follower.catch_up(READ_YOUR_WRITES).await
    }

    /// Waits until every position below `position` is applied (after an append).
    pub async fn wait_applied(&self, position: u64) -> Result<(), Stale> {
        self.follower.wait_applied(position, READ_YOUR_WRITES).await
    }

    /// Waits until the view has applied everything committed now (before refusing a request
    /// for something another process may have just written). 503 + `Retry-After` when it
    /// cannot.
    pub async fn catch_up(&self, platform: &Platform) -> Result<(), Problem> {
        let size = platform
            .ledger
            .size()
            .await
            .map_err(|e| crate::ledger_problem(&e))?;
        self.wait_applied(size)
            .await
            .map_err(|e| crate::stale_problem(&e))
    }

    /// After a write of this service: the next read should see it. A stale view is logged
    /// (the write stands).
    pub async fn after_write(&self, receipt: Option<goose_ledger::AppendReceipt>, what: &str) {
        if let Some(r) = receipt {
            crate::log_stale_after_write(self.wait_applied(r.last_position + 1).await, what);
        }
    }
}

/// A view's state with the position it reflects: a replica restores it and follows the ledger
/// from there instead of replaying the whole log. Where snapshots are kept (a file, object
/// storage) is the deployment's choice; this is their content.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Snapshot<V> {
    /// Every position below this one is applied.
    pub next: u64,
    /// Hex record digest of the event at `next - 1`: a snapshot of another log (or of a log
    /// rewritten since) does not match and is refused.
    pub last_digest: Option<String>,
    pub state: V,
}

/// Why a snapshot was not restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("the snapshot is of position {next} but the log holds only {size} events")]
    Ahead { next: u64, size: u64 },
    #[error("the snapshot does not match this log at position {position}: it names digest {expected}, the log has {found}")]
    Mismatch {
        position: u64,
        expected: String,
        found: String,
    },
    #[error(transparent)]
    Ledger(#[from] goose_ledger::Error),
    #[error(transparent)]
    Start(#[from] anyhow::Error),
}

impl<V: View + Clone + serde::Serialize> ViewHandle<V> {
    /// The current state and the position it reflects.
    pub async fn snapshot(&self, platform: &Platform) -> goose_ledger::Result<Snapshot<V>> {
        self.snapshot_of(&platform.ledger).await
    }

    /// [`ViewHandle::snapshot`], with the ledger at hand.
    pub async fn snapshot_of(
        &self,
        ledger: &goose_ledger::Ledger,
    ) -> goose_ledger::Result<Snapshot<V>> {
        // Events of other aggregates move the follower but not the view: everything below
        // the follower's position (read first) was applied when it was published, and no
        // event at or past `changed` (read under the lock) is in the state.
        let followed = self.follower.next_position();
        let (next, state) = {
            let guard = self.state.read();
            ((*self.changed.borrow()).max(followed), guard.clone())
        };
        let last_digest = match next.checked_sub(1) {
            Some(p) => Some(event_digest(ledger, p).await?),
            None => None,
        };
        Ok(Snapshot {
            next,
            last_digest,
            state,
        })
    }
}

impl<V: View> ViewHandle<V> {
    /// Starts from a snapshot, after checking that it belongs to this log, and follows the
    /// ledger from its position.
    pub async fn restore(platform: &Platform, snapshot: Snapshot<V>) -> Result<Self, RestoreError> {
        Self::restore_parts(
            &platform.ledger,
            platform.bus.clone(),
            platform.stopped(),
            snapshot,
        )
        .await
    }

    /// [`ViewHandle::restore`] from the parts (for views the platform itself starts).
    pub async fn restore_parts(
        ledger: &goose_ledger::Ledger,
        bus: Arc<dyn goose_bus::Bus>,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
        snapshot: Snapshot<V>,
    ) -> Result<Self, RestoreError> {
        let size = ledger.size().await?;
        if snapshot.next > size {
            return Err(RestoreError::Ahead {
                next: snapshot.next,
                size,
            });
        }
        if let Some(expected) = &snapshot.last_digest {
            let position = snapshot.next.saturating_sub(1);
            let found = event_digest(ledger, position).await?;
            if &found != expected {
                return Err(RestoreError::Mismatch {
                    position,
                    expected: expected.clone(),
                    found,
                });
            }
        }
        Ok(Self::follow_from(snapshot.state, snapshot.next, ledger, bus, stop).await?)
    }
}

async fn event_digest(
    ledger: &goose_ledger::Ledger,
    position: u64,
) -> goose_ledger::Result<String> {
    let events = ledger.read_all(position, 1).await?;
    events
        .first()
        .filter(|e| e.position == position)
        .map(|e| hex::encode(e.digest))
        .ok_or_else(|| goose_ledger::Error::NotFound(format!("position {position}")))
}
