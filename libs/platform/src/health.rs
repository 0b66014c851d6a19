//! Dependency health: the ledger, the bus and the peer services this one calls. `/readyz`
//! checks them on each request; a background task checks them every [`EVERY`] for the
//! `goose_dependency_up` and `goose_health_status` gauges (seed 002's health status gauges
//! and dependency health tracking).
//!
//! A peer is checked on its `/healthz` (alive), not its `/readyz`: readiness that followed
//! peers' readiness would cascade one outage into every service that calls it.

use goose_bus::Bus;
use goose_ledger::Ledger;
use goose_metrics::health as m;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;

/// How often the background task checks (and the gauges move).
pub const EVERY: Duration = Duration::from_secs(5);
/// How long one check may take before it counts as down.
const TIMEOUT: Duration = Duration::from_secs(2);

/// A peer service: its name (the gauge's `dependency` label) and base URL.
#[derive(Debug, Clone)]
struct Peer {
    name: String,
    url: String,
}

/// The dependencies of one platform. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Dependencies {
    peers: Arc<Mutex<Vec<Peer>>>,
    http: reqwest::Client,
}

impl Default for Dependencies {
    fn default() -> Self {
        Self {
            peers: Arc::default(),
            http: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .build()
                .unwrap_or_default(),
        }
    }
}

/// One dependency's state: `Err` says why it is down.
pub type Check = (String, Result<(), String>);

impl Dependencies {
    /// Adds a peer service this one calls (`name`: `rbac`, ...; `url`: its base URL).
    pub fn add_peer(&self, name: &str, url: &str) {
        let mut peers = self.peers.lock();
        if !peers.iter().any(|p| p.name == name) {
            peers.push(Peer {
                name: name.to_owned(),
                url: url.trim_end_matches('/').to_owned(),
            });
        }
    }

    /// Checks every dependency now, concurrently, each within the timeout.
    pub async fn check(&self, ledger: &Ledger, bus: &Arc<dyn Bus>) -> Vec<Check> {
        let within = |what: &'static str| {
            move |r: Result<Result<(), String>, tokio::time::error::Elapsed>| match r {
                Ok(r) => r,
                Err(_) => Err(format!("{what} did not answer within {TIMEOUT:?}")),
            }
        };
        let ledger_check = async {
            tokio::time::timeout(TIMEOUT, async {
                ledger.size().await.map(|_| ()).map_err(|e| e.to_string())
            })
            .await
        };
        let bus_check = async {
            tokio::time::timeout(TIMEOUT, async {
                bus.health().await.map_err(|e| e.to_string())
            })
            .await
        };
        let peers: Vec<Peer> = self.peers.lock().clone();
        let peer_checks = futures::future::join_all(peers.iter().map(|p| async move {
            let r = match self.http.get(format!("{}/healthz", p.url)).send().await {
                Ok(resp) if resp.status().is_success() => Ok(()),
                Ok(resp) => Err(format!("{}/healthz answered {}", p.url, resp.status())),
                Err(e) => Err(format!("{}/healthz: {e}", p.url)),
            };
            (p.name.clone(), r)
        }));
        let (l, b, peers) = tokio::join!(ledger_check, bus_check, peer_checks);
        let mut out = vec![
            ("ledger".to_owned(), within("the ledger")(l)),
            ("bus".to_owned(), within("the bus")(b)),
        ];
        out.extend(peers);
        out
    }

    /// Sets the gauges from a round of checks and the readiness conditions.
    pub fn export(checks: &[Check], conditions_blocked: bool) {
        let mut healthy = !conditions_blocked;
        for (name, r) in checks {
            m::DEPENDENCY_UP
                .gauge(&[name])
                .set(if r.is_ok() { 1.0 } else { 0.0 });
            healthy &= r.is_ok();
        }
        m::STATUS.gauge(&[]).set(if healthy { 1.0 } else { 0.0 });
    }
}

/// Why a round of checks makes the service not ready (`None`: every dependency answers).
pub fn not_ready(checks: &[Check]) -> Option<String> {
    let down: Vec<String> = checks
        .iter()
        .filter_map(|(name, r)| r.as_ref().err().map(|e| format!("{name} is down: {e}")))
        .collect();
    (!down.is_empty()).then(|| down.join("; "))
}
