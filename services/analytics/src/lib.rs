//! The analytics service: the ledger as Arrow tables (`goose_analytics`), read-only SQL over
//! them with Apache DataFusion, and named KPI views.
//!
//! Architecture invariant: it writes nothing; every answer is a function of the events below
//! the position it reports, so two replicas at the same position answer alike.
//!
//! Layout (docs/adding-a-service.md): [`routes`] the one route list, [`api`] wire types,
//! `handlers`, [`views`] the read model, [`flight`] Arrow Flight SQL.

pub mod api;
pub mod cli;
pub mod export;
pub mod flight;
mod handlers;
mod routes;
mod stream;
pub mod views;

pub use routes::{openapi, routes};
pub use views::AnalyticsView;

use axum::Router;
use goose_ledger::witness::WitnessPolicy;
use goose_platform::chain_watch::{ChainTrust, ChainWatch};
use goose_platform::view::ViewHandle;
use goose_platform::Platform;

pub use export::ExportConfig;
use goose_analytics::Engine;
pub use goose_analytics::Limits;

#[derive(Clone)]
pub(crate) struct AppState {
    platform: Platform,
    view: ViewHandle<AnalyticsView>,
    engine: Engine,
    export: Option<export::SharedExport>,
    chain: ChainWatch,
    witnesses: WitnessPolicy,
}

/// How the service runs.
#[derive(Debug, Clone, Default)]
pub struct AnalyticsConfig {
    /// What one query may use.
    pub limits: Limits,
    /// The Parquet export, when wanted.
    pub export: Option<ExportConfig>,
    /// Where aggregates that can be offloaded run (the first service built in a process sets
    /// it for the process).
    pub accel: goose_analytics::accel::AccelConfig,
    /// The keys the chain watch trusts (the `chain` table, `kpi_chain_integrity`); without a
    /// log key there is no watch and the table is empty.
    pub chain: ChainTrust,
}

/// The service's API on `platform`.
pub async fn build(platform: &Platform, config: AnalyticsConfig) -> anyhow::Result<Router> {
    let accel = goose_analytics::accel::configure(config.accel.clone());
    tracing::info!(adapter = %accel.hardware().reason, "analytics aggregates offload");
    let view = ViewHandle::<AnalyticsView>::start(platform).await?;
    let mut state = AppState {
        platform: platform.clone(),
        view,
        engine: Engine::new(config.limits).with_ledger((*platform.ledger).clone()),
        export: None,
        chain: ChainWatch::start(
            (*platform.ledger).clone(),
            config.chain.keyring.clone().unwrap_or_default(),
            config.chain.log_key.clone(),
            config.chain.witness_policy.clone(),
            platform.stopped(),
        ),
        witnesses: config.chain.witness_policy.clone(),
    };
    if let Some(e) = config.export {
        let (store, _) = export::open_location(&e.location)?;
        let archive = goose_analytics::archive::Archive::new(
            &e.location,
            e.location.starts_with("s3://").then_some(store),
        )?;
        state.engine = state.engine.clone().with_archive(archive);
        state.export = Some(export::start(state.clone(), e).await?);
    }
    let (rest, specs) = routes::api().into_parts();
    let router = rest.with_state(state.clone()).merge(flight::router(state));
    let router = goose_platform::refuse_declared_lengths_over(router, goose_platform::BODY_LIMIT);
    Ok(platform.protect(router, &[specs.as_slice(), flight::GRPC_ROUTES].concat()))
}
