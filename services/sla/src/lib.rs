//! The sla service: service level objectives as OpenSLO documents (versioned on the chain,
//! one stream per SLO), measurements summarised per service and minute (HdrHistograms on
//! the chain, so every figure is re-derivable), and each SLO's status — attainment, error
//! budget, multi-window burn-rate alerts, latency percentiles — computed from them.
//!
//! Architecture invariant: a status is a pure function (`goose_domain::sla::status`) of
//! recorded events and the moment asked about; nothing here keeps figures the chain does not.
//!
//! Layout (docs/adding-a-service.md): [`routes`] the one route list, [`api`] wire types,
//! `handlers`, [`views`] the read model, [`grpc`].

pub mod api;
pub mod cli;
pub mod evaluate;
pub mod grpc;
mod handlers;
mod incidents;
pub mod metrics;
pub mod refusals;
pub mod remote_write;
mod report_html;
pub mod reports;
mod routes;
pub mod runbooks;
pub mod telemetry;
pub mod views;

pub use routes::{openapi, routes};
pub use views::SlaView;

use axum::Router;
use goose_domain::sla::incident::{CauseState, IncidentEvent};
use goose_domain::sla::prom::{CounterMemory, Mapping};
use goose_domain::sla::report::{ReportEvent, ReportState};
use goose_domain::sla::{
    AlertEvent, AlertsState, BatchState, MeasurementEvent, SloEvent, SloState,
};
use goose_domain::streams;
use goose_platform::chain_watch::ChainWatch;
use goose_platform::view::ViewHandle;
use goose_platform::Platform;
use std::sync::Arc;
use std::time::Duration;

goose_ledger::ledger_aggregate!(SloAgg(SloState), streams::SLO, SloEvent);
goose_ledger::ledger_aggregate!(BatchAgg(BatchState), streams::MEASUREMENT, MeasurementEvent);
goose_ledger::ledger_aggregate!(AlertsAgg(AlertsState), streams::SLO_ALERT, AlertEvent);
goose_ledger::ledger_aggregate!(IncidentAgg(CauseState), streams::INCIDENT, IncidentEvent);
goose_ledger::ledger_aggregate!(ReportAgg(ReportState), streams::REPORT, ReportEvent);

/// How the service runs.
#[derive(Debug, Clone)]
pub struct SlaConfig {
    /// How often every SLO is evaluated (alerts, violations, incidents).
    pub evaluate_every: Duration,
    /// Which remote-written Prometheus series mean requests and latency.
    pub prometheus: Mapping,
    /// Raw samples from NATS; None: not listened for.
    pub telemetry: Option<telemetry::TelemetryConfig>,
    /// Bursts of refused requests: what one is, and where notices come from.
    pub refusals: refusals::RefusalConfig,
    /// The keys the chain watch trusts; without a log key there is no watch (no
    /// `evidence_integrity` incidents, and reports say the chain was not checked).
    pub chain: goose_platform::chain_watch::ChainTrust,
}

impl Default for SlaConfig {
    fn default() -> Self {
        Self {
            evaluate_every: Duration::from_secs(30),
            prometheus: Mapping::default(),
            telemetry: None,
            refusals: Default::default(),
            chain: Default::default(),
        }
    }
}

/// Most samples in one measurements batch.
pub const MAX_SAMPLES_PER_BATCH: usize = 50_000;
/// Most distinct minutes one batch may cover (each becomes a summary event of one append).
pub const MAX_MINUTES_PER_BATCH: usize = 1_440;

#[derive(Clone)]
pub(crate) struct AppState {
    platform: Platform,
    view: ViewHandle<SlaView>,
    config: Arc<SlaConfig>,
    /// Remote write: the last sample of each series recorded.
    remote_write: Arc<tokio::sync::Mutex<CounterMemory>>,
    /// The chain as verified by this process (not configured without a log key).
    chain: ChainWatch,
}

pub async fn build(platform: &Platform, config: SlaConfig) -> anyhow::Result<Router> {
    let view = platform.start_view::<SlaView>("sla").await?;
    let state = AppState {
        platform: platform.clone(),
        view,
        config: Arc::new(config.clone()),
        remote_write: Arc::default(),
        chain: ChainWatch::start(
            (*platform.ledger).clone(),
            config.chain.keyring.clone().unwrap_or_default(),
            config.chain.log_key.clone(),
            config.chain.witness_policy.clone(),
            platform.stopped(),
        ),
    };
    platform.spawn(evaluate::run(
        state.clone(),
        config.evaluate_every,
        platform.stopped(),
    ));
    platform.spawn(refusals::run(
        state.clone(),
        config.refusals.clone(),
        platform.stopped(),
    ));
    if let Some(t) = config.telemetry.clone() {
        platform.spawn(telemetry::run(state.clone(), t, platform.stopped()));
    }
    let v = state.view.clone();
    platform.on_scrape(move || metrics::export(&v.read()));
    let grpc = Router::new().route_service(
        "/goose.v1.Sla/{*method}",
        grpc::SlaGrpc {
            state: state.clone(),
        }
        .server(),
    );
    let (rest, specs) = routes::api().into_parts();
    let router = rest.with_state(state).merge(grpc);
    let router = goose_platform::refuse_declared_lengths_over(router, goose_platform::BODY_LIMIT);
    Ok(platform.protect(router, &[specs.as_slice(), grpc::GRPC_ROUTES].concat()))
}
