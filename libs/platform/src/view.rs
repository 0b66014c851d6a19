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
    /// The position of the newest event applied (for waiters on "something changed").
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
        let state: Arc<RwLock<V>> = Arc::default();
        let changed = Arc::new(watch::channel(0).0);
        let (s, c) = (state.clone(), changed.clone());
        let follower = Follower::start(
            (**ledger).clone(),
            bus,
            V::FOLLOWS,
            Arc::new(move |ev| {
                write(&s).apply(ev);
                c.send_replace(ev.position);
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

    /// Changes after every event applied (its value: that event's position).
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
