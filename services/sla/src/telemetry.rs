//! Raw samples from NATS (`goose.telemetry.<service>`, core NATS, queue group `goose-sla` so
//! that replicas share the work instead of each counting every sample): folded into
//! [`Accumulator`]s, and every `flush_every` the minutes closed for longer than `grace` are
//! recorded as minute summaries (one batch per service and flush). A batch that cannot be
//! appended is put back and tried again at the next flush.
//!
//! Delivery is core NATS (at most once): samples published while no goose-sla listens, and
//! those held in memory when a process dies (at most `grace` plus a minute), are not
//! counted. Telemetry is a measurement, not a record; what was recorded is on the chain.

use crate::{AppState, BatchAgg};
use futures::StreamExt as _;
use goose_domain::sla::telemetry::{self, Accumulator};
use goose_domain::sla::MeasurementEvent;
use goose_ledger::{aggregate, Metadata};
use parking_lot::Mutex;
use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// Where telemetry comes from and how often it is recorded.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    pub nats_url: String,
    /// NATS user and password (the service's own).
    pub credentials: Option<(String, String)>,
    /// Samples of service S come on `<prefix>.S`.
    pub subject_prefix: String,
    pub flush_every: Duration,
    /// How long after its end a minute stays open for late samples.
    pub grace: Duration,
}

/// The actor of recorded telemetry summaries.
pub const ACTOR: &str = "goose-sla/telemetry";

/// Folds messages into the accumulator; what it drops, and why, is counted.
#[derive(Debug)]
pub struct Ingest {
    acc: Mutex<Accumulator>,
    prefix: String,
}

impl Ingest {
    pub fn new(prefix: &str) -> Self {
        Self {
            acc: Mutex::new(Accumulator::default()),
            prefix: format!("{prefix}."),
        }
    }

    /// The service a subject is for.
    pub fn service<'a>(&self, subject: &'a str) -> Option<&'a str> {
        subject
            .strip_prefix(&self.prefix)
            .filter(|s| !s.is_empty() && !s.contains('.'))
    }

    /// Adds one message (of `version`, from its `Goose-Version` header); Err says why it was
    /// dropped.
    pub fn message(
        &self,
        service: &str,
        version: Option<&str>,
        payload: &[u8],
    ) -> Result<usize, String> {
        if let Some(v) = version {
            goose_domain::version::Version::parse(v)
                .map_err(|e| format!("{VERSION_HEADER}: {e}"))?;
        }
        let samples = telemetry::parse(payload).map_err(|e| e.0)?;
        self.acc
            .lock()
            .add(service, version, &samples)
            .map_err(|e| e.0)?;
        Ok(samples.len())
    }

    /// Samples held, not yet recorded.
    pub fn pending(&self) -> u64 {
        self.acc.lock().pending_samples()
    }

    pub fn accumulator(&self) -> &Mutex<Accumulator> {
        &self.acc
    }
}

/// The message header naming the version that served a message's samples.
pub const VERSION_HEADER: &str = "Goose-Version";

/// Subscribes and folds until the subscription ends.
pub async fn fold(
    mut sub: async_nats::Subscriber,
    ingest: Arc<Ingest>,
    known: impl Fn(&str) -> bool,
) {
    while let Some(msg) = sub.next().await {
        let Some(service) = ingest.service(msg.subject.as_str()) else {
            crate::metrics::TELEMETRY_DROPPED
                .counter(&["subject"])
                .increment(1);
            continue;
        };
        if !known(service) {
            crate::metrics::TELEMETRY_DROPPED
                .counter(&["unknown_service"])
                .increment(1);
            tracing::warn!(service, "telemetry of a service not in the catalog dropped");
            continue;
        }
        let version = msg
            .headers
            .as_ref()
            .and_then(|h| h.get(VERSION_HEADER))
            .map(|v| v.as_str().to_owned());
        match ingest.message(service, version.as_deref(), &msg.payload) {
            Ok(n) => crate::metrics::TELEMETRY_SAMPLES
                .counter(&[])
                .increment(n as u64),
            Err(e) => {
                crate::metrics::TELEMETRY_DROPPED
                    .counter(&["malformed"])
                    .increment(1);
                tracing::warn!(service, error = %e, "telemetry message dropped");
            }
        }
    }
}

pub(crate) async fn run(
    s: AppState,
    config: TelemetryConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let options = match &config.credentials {
        Some((u, p)) => async_nats::ConnectOptions::with_user_and_password(u.clone(), p.clone()),
        None => async_nats::ConnectOptions::new(),
    }
    .retry_on_initial_connect();
    let client = match options.connect(&config.nats_url).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, url = %config.nats_url, "telemetry: cannot connect to NATS; no telemetry ingested");
            return;
        }
    };
    let subject = format!("{}.*", config.subject_prefix);
    let sub = match client
        .queue_subscribe(subject.clone(), "goose-sla".into())
        .await
    {
        Ok(sub) => sub,
        Err(e) => {
            tracing::error!(error = %e, %subject, "telemetry: cannot subscribe; no telemetry ingested");
            return;
        }
    };
    tracing::info!(%subject, "telemetry: listening");
    let ingest = Arc::new(Ingest::new(&config.subject_prefix));
    // The catalog as the view knows it; unknown services get one catch-up per flush.
    let known: Arc<Mutex<HashSet<String>>> = Arc::default();
    let folding = {
        let (ingest, known, s) = (ingest.clone(), known.clone(), s.clone());
        tokio::spawn(fold(sub, ingest, move |service| {
            if known.lock().contains(service) {
                return true;
            }
            let Ok(name) = goose_domain::catalog::ServiceName::parse(service) else {
                return false;
            };
            let found = s.view.read().catalog.get(&name).is_some();
            if found {
                known.lock().insert(service.to_owned());
            }
            found
        }))
    };
    tokio::pin!(shutdown);
    let instance = uuid::Uuid::now_v7().simple().to_string();
    let mut seq: u64 = 0;
    let mut last_catch_up = std::time::Instant::now();
    loop {
        let stopping = tokio::select! {
            () = &mut shutdown => true,
            () = tokio::time::sleep(config.flush_every) => false,
        };
        if last_catch_up.elapsed() > Duration::from_secs(10) {
            // Services onboarded since the view last heard: the catalog is read again.
            if let Err(e) = s.view.catch_up(&s.platform).await {
                tracing::warn!(error = ?e, "telemetry: catching up with the catalog failed");
            }
            last_catch_up = std::time::Instant::now();
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        // At shutdown every minute is recorded, open or not: summaries of a minute add up.
        let closed_before = if stopping {
            i64::MAX - 60
        } else {
            now - config.grace.as_secs() as i64
        };
        seq += 1;
        if let Err(e) = flush(
            &s,
            &ingest,
            closed_before,
            &format!("nats-{instance}-{seq}"),
        )
        .await
        {
            crate::metrics::TELEMETRY_FLUSH_FAILURES
                .counter(&[])
                .increment(1);
            tracing::error!(error = %e, "telemetry: recording summaries failed; kept for the next flush");
        }
        if stopping {
            folding.abort();
            return;
        }
    }
}

/// Records the closed minutes, one batch per service; what fails is put back.
async fn flush(
    s: &AppState,
    ingest: &Ingest,
    closed_before: i64,
    batch: &str,
) -> anyhow::Result<()> {
    let taken = ingest.accumulator().lock().take_closed(closed_before)?;
    let meta = Metadata::now(ACTOR);
    let mut failed = Vec::new();
    let mut first_error = None;
    for (service, summaries) in taken {
        let r = aggregate::execute::<BatchAgg, Infallible>(
            &s.platform.ledger,
            &MeasurementEvent::stream_id(&service, batch),
            &meta,
            |cur| Ok(cur.0.record(&summaries)),
        )
        .await;
        match r {
            Ok(done) => s.view.after_write(done.receipt, "sla").await,
            Err(e) => {
                first_error.get_or_insert(e.to_string());
                failed.extend(summaries);
            }
        }
    }
    if let Some(e) = first_error {
        ingest.accumulator().lock().restore(failed)?;
        anyhow::bail!(e);
    }
    Ok(())
}
