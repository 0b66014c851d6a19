//! Conditions that make a service not ready (`/readyz` answers 503 naming them) while it keeps
//! serving — a read model that could not read a security setting, for example. Each service
//! registers the checks it has with its [`Platform`](crate::Platform).

use parking_lot::Mutex;
use std::sync::Arc;

/// Gauge: 1 while a condition keeps the service not ready (labelled by the condition).
pub use goose_metrics::health::NOT_READY;

type Check = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// The readiness conditions of one platform. Cheap to clone.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Arc<Mutex<Vec<(&'static str, Check)>>>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("checks", &self.checks.lock().len())
            .finish()
    }
}

impl Readiness {
    /// Adds a condition: `check` returns why the service is not ready, or `None`.
    pub fn add(
        &self,
        name: &'static str,
        check: impl Fn() -> Option<String> + Send + Sync + 'static,
    ) {
        self.checks.lock().push((name, Arc::new(check)));
    }

    /// The reasons the service is not ready now, if any (and the gauge, per condition).
    pub fn blocked(&self) -> Vec<String> {
        let checks: Vec<(&'static str, Check)> = self.checks.lock().clone();
        checks
            .into_iter()
            .filter_map(|(name, check)| {
                let why = check();
                NOT_READY
                    .gauge(&[name])
                    .set(if why.is_some() { 1.0 } else { 0.0 });
                why.map(|w| format!("{name}: {w}"))
            })
            .collect()
    }
}
