//! Hooks run when Prometheus scrapes: gauges computed from a read model at that moment.
//!
//! A hook lives as long as its [`ScrapeHook`] handle (the platform that registered it keeps
//! it), so the processes of a test that start and stop many systems do not accumulate hooks
//! of stopped ones.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

type Hook = Arc<dyn Fn() + Send + Sync>;

static HOOKS: Mutex<Vec<(u64, Hook)>> = Mutex::new(Vec::new());
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Keeps a hook registered; dropping it removes the hook.
#[must_use = "the hook is removed when this is dropped"]
pub struct ScrapeHook(u64);

impl std::fmt::Debug for ScrapeHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ScrapeHook").field(&self.0).finish()
    }
}

impl Drop for ScrapeHook {
    fn drop(&mut self) {
        HOOKS.lock().retain(|(id, _)| *id != self.0);
    }
}

/// Runs `hook` before every scrape until the returned handle is dropped. Hooks set gauges;
/// they must be quick (they hold a read model's read lock at most).
pub fn on_scrape(hook: impl Fn() + Send + Sync + 'static) -> ScrapeHook {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    HOOKS.lock().push((id, Arc::new(hook)));
    ScrapeHook(id)
}

/// Runs every registered hook (the `/metrics` handler calls this before rendering).
pub fn collect() {
    let hooks: Vec<Hook> = HOOKS.lock().iter().map(|(_, h)| h.clone()).collect();
    for h in hooks {
        h();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hook_runs_until_its_handle_is_dropped() {
        let runs = Arc::new(AtomicU64::new(0));
        let r = runs.clone();
        let handle = on_scrape(move || {
            r.fetch_add(1, Ordering::SeqCst);
        });
        collect();
        collect();
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        drop(handle);
        collect();
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }
}
