//! Bursts of refused requests (403s) become `unauthorized_access` incidents. Every service
//! reports the requests its access rules refused (`goose_platform::refusals`): on core NATS
//! `goose.refusals.<service>` — every sla replica subscribes (no queue group), so each sees
//! all of them and finds the same bursts; the incident's cause names the burst, and the
//! incident stream records it once — or in-process when one process runs every service.
//! A notice's service is the subject's (a service's NATS user may publish on its own subject
//! only), whatever its body says.

use crate::evaluate::ACTOR;
use crate::{AppState, IncidentAgg};
use futures::StreamExt as _;
use goose_domain::sla::access::{Burst, BurstDetector, Refusal};
use goose_domain::sla::incident::{IncidentReport, IncidentSeverity, IncidentType};
use goose_ledger::{aggregate, Metadata};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;

/// Counter: refusal notices received, and dropped (`outcome`: counted, malformed).
pub use goose_metrics::sla::REFUSAL_NOTICES as NOTICES;

/// What a burst is, and where notices come from.
#[derive(Debug, Clone)]
pub struct RefusalConfig {
    /// Refusals of one user within `window` that make a burst.
    pub threshold: usize,
    pub window: Duration,
    /// NATS URL and credentials to subscribe with; None: in-process notices only.
    pub nats: Option<(String, Option<(String, String)>)>,
}

impl Default for RefusalConfig {
    fn default() -> Self {
        Self {
            threshold: 20,
            window: Duration::from_secs(60),
            nats: None,
        }
    }
}

/// The incident a burst opens.
fn report(b: &Burst) -> IncidentReport {
    let secs = (b.last_ms - b.first_ms) as f64 / 1000.0;
    let mut title = format!(
        "{} was refused {} requests in {secs:.0} s by {} (e.g. {})",
        b.user,
        b.refusals,
        b.services.join(", "),
        b.examples.join("; ")
    );
    if title.len() > 500 {
        let mut cut = 497;
        while !title.is_char_boundary(cut) {
            cut -= 1;
        }
        title.truncate(cut);
        title.push_str("...");
    }
    IncidentReport {
        kind: IncidentType::UnauthorizedAccess,
        severity: IncidentSeverity::Warning,
        title,
        service: (b.services.len() == 1).then(|| b.services[0].clone()),
        caused_by: Vec::new(),
    }
}

async fn open(s: &AppState, b: Burst) {
    let cause = format!("access:{}:{}", b.user, b.first_ms);
    let report = report(&b);
    let id = uuid::Uuid::now_v7().to_string();
    let meta = Metadata::now(ACTOR);
    match aggregate::execute::<IncidentAgg, _>(&s.platform.ledger, &cause, &meta, |cur| {
        cur.0.occur(&cause, &id, &report, ACTOR)
    })
    .await
    {
        Ok(done) => {
            s.view.after_write(done.receipt, "sla").await;
            if done.receipt.is_some() {
                tracing::warn!(%cause, title = %report.title, "burst of refused requests");
            }
        }
        Err(e) => {
            crate::evaluate::EVALUATION_FAILURES
                .counter(&[])
                .increment(1);
            tracing::error!(%cause, error = %e, "recording the incident of a burst of refused requests failed");
        }
    }
}

async fn feed(s: &AppState, detector: &Mutex<BurstDetector>, r: Refusal) {
    NOTICES.counter(&["counted"]).increment(1);
    let burst = detector.lock().refused(r);
    if let Some(b) = burst {
        open(s, b).await;
    }
}

pub(crate) async fn run(
    s: AppState,
    config: RefusalConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    tokio::pin!(shutdown);
    let detector = Arc::new(Mutex::new(BurstDetector::new(
        config.threshold,
        config.window.as_secs(),
    )));
    let mut local = s.platform.refusals.subscribe_local();
    let mut remote = match &config.nats {
        None => None,
        Some((url, creds)) => {
            let options = match creds {
                Some((u, p)) => {
                    async_nats::ConnectOptions::with_user_and_password(u.clone(), p.clone())
                }
                None => async_nats::ConnectOptions::new(),
            }
            .retry_on_initial_connect();
            let subject = format!("{}.*", goose_platform::refusals::SUBJECT_PREFIX);
            match options.connect(url).await {
                Ok(c) => match c.subscribe(subject.clone()).await {
                    Ok(sub) => Some(sub),
                    Err(e) => {
                        tracing::error!(error = %e, %subject, "refusal notices: cannot subscribe; bursts of 403s are not noticed");
                        None
                    }
                },
                Err(e) => {
                    tracing::error!(error = %e, %url, "refusal notices: cannot connect; bursts of 403s are not noticed");
                    None
                }
            }
        }
    };
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = tick.tick() => {
                let now = i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
                detector.lock().expire(now);
            }
            r = local.recv() => match r {
                Ok(r) => feed(&s, &detector, r).await,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "refusal notices: fell behind; some were not counted");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    local = s.platform.refusals.subscribe_local();
                }
            },
            m = async {
                match remote.as_mut() {
                    Some(sub) => sub.next().await,
                    None => std::future::pending().await,
                }
            } => {
                let Some(m) = m else {
                    tracing::error!("refusal notices: the subscription ended");
                    remote = None;
                    continue;
                };
                let service = m
                    .subject
                    .as_str()
                    .strip_prefix(goose_platform::refusals::SUBJECT_PREFIX)
                    .and_then(|x| x.strip_prefix('.'))
                    .unwrap_or_default()
                    .to_owned();
                match serde_json::from_slice::<Refusal>(&m.payload) {
                    Ok(mut r) if !service.is_empty() => {
                        r.service = service;
                        feed(&s, &detector, r).await;
                    }
                    _ => {
                        NOTICES.counter(&["malformed"]).increment(1);
                        tracing::warn!(subject = %m.subject, "malformed refusal notice dropped");
                    }
                }
            }
        }
    }
}
