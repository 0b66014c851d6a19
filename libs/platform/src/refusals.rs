//! Refused requests (403s), reported so bursts can be noticed: every request a service's
//! access rules refuse becomes a notice (`goose_domain::sla::access::Refusal`) — on core NATS
//! subject `goose.refusals.<service>` when the service runs as its own process (its NATS user
//! may publish on its own subject only; sla subscribes to all), or on an in-process channel
//! when one process runs every service (`goosectl dev`, the in-process tests). Notices are not
//! chain events — an attacker causes refusals cheaply, and must not be able to flood the
//! ledger with them; only the incident a burst opens is recorded. Delivery is at most once:
//! a notice that cannot be queued is counted in `goose_refusal_notices_dropped_total`.

use goose_domain::sla::access::Refusal;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};

/// Notices of service S go to `goose.refusals.S`.
pub const SUBJECT_PREFIX: &str = "goose.refusals";
/// Counter: notices dropped (`reason`: queue_full, publish).
pub use goose_metrics::bus::REFUSAL_NOTICES_DROPPED as DROPPED;

/// Where this process's refusal notices go.
#[derive(Clone)]
pub struct Refusals {
    service: String,
    /// In-process subscribers (used when nothing goes to NATS).
    local: broadcast::Sender<Refusal>,
    nats: Option<mpsc::Sender<Refusal>>,
}

impl std::fmt::Debug for Refusals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refusals")
            .field("service", &self.service)
            .field("nats", &self.nats.is_some())
            .finish()
    }
}

impl Refusals {
    /// In-process only (one process runs every service).
    pub fn local(service: &str) -> Self {
        Self {
            service: service.to_owned(),
            local: broadcast::channel(4096).0,
            nats: None,
        }
    }

    /// Published on NATS by a task that connects (and reconnects) as `credentials`.
    pub fn nats(
        service: &str,
        url: &str,
        credentials: Option<(String, String)>,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Self {
        let (tx, mut rx) = mpsc::channel::<Refusal>(4096);
        let (url, subject) = (url.to_owned(), format!("{SUBJECT_PREFIX}.{service}"));
        tokio::spawn(async move {
            tokio::pin!(stop);
            let options = match credentials {
                Some((u, p)) => async_nats::ConnectOptions::with_user_and_password(u, p),
                None => async_nats::ConnectOptions::new(),
            }
            .retry_on_initial_connect();
            let client = tokio::select! {
                () = &mut stop => return,
                c = options.connect(&url) => match c {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(error = %e, %url, "refusal notices: cannot connect to NATS; they are dropped");
                        return;
                    }
                },
            };
            loop {
                let r = tokio::select! {
                    () = &mut stop => return,
                    r = rx.recv() => match r { Some(r) => r, None => return },
                };
                let body = match serde_json::to_vec(&r) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::error!(error = %e, "refusal notice not serialisable");
                        continue;
                    }
                };
                if let Err(e) = client.publish(subject.clone(), body.into()).await {
                    DROPPED.counter(&["publish"]).increment(1);
                    tracing::warn!(error = %e, "refusal notice not published");
                }
            }
        });
        Self {
            service: service.to_owned(),
            local: broadcast::channel(16).0,
            nats: Some(tx),
        }
    }

    /// The in-process notices (empty when they go to NATS).
    pub fn subscribe_local(&self) -> broadcast::Receiver<Refusal> {
        self.local.subscribe()
    }
}

impl goose_runtime::auth::RefusalSink for Refusals {
    fn refused(&self, user: &str, method: &str, route: &str, reason: &str) {
        let r = Refusal {
            service: self.service.clone(),
            user: user.to_owned(),
            at_ms: i64::try_from(
                time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000,
            )
            .unwrap_or(i64::MAX),
            request: format!("{method} {route}"),
            reason: reason.to_owned(),
        };
        match &self.nats {
            Some(tx) => {
                if tx.try_send(r).is_err() {
                    DROPPED.counter(&["queue_full"]).increment(1);
                }
            }
            // No subscriber (no sla in this process) is not an error.
            None => {
                let _ = self.local.send(r);
            }
        }
    }
}

/// The sink as the auth layer takes it.
pub fn sink(r: &Refusals) -> Arc<dyn goose_runtime::auth::RefusalSink> {
    Arc::new(r.clone())
}
