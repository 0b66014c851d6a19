//! The analytics service: the ledger as Arrow tables (`goose_analytics`), read-only SQL over
//! them with Apache DataFusion, and named KPI views.
//!
//! Architecture invariant: it writes nothing; every answer is a function of the events below
//! the position it reports, so two replicas at the same position answer alike.
//!
//! Layout (docs/adding-a-service.md): [`routes`] the one route list, [`api`] wire types,
//! `handlers`, [`views`] the read model.

pub mod api;
pub mod cli;
mod handlers;
mod routes;
mod stream;
pub mod views;

pub use routes::{openapi, routes};
pub use views::AnalyticsView;

use axum::Router;
use goose_platform::view::ViewHandle;
use goose_platform::Platform;

pub use goose_analytics::Limits;

#[derive(Clone)]
pub(crate) struct AppState {
    platform: Platform,
    view: ViewHandle<AnalyticsView>,
    limits: Limits,
}

/// The service's API on `platform`, with `limits` on every query.
pub async fn build(platform: &Platform, limits: Limits) -> anyhow::Result<Router> {
    let view = ViewHandle::<AnalyticsView>::start(platform).await?;
    let state = AppState {
        platform: platform.clone(),
        view,
        limits,
    };
    let (rest, specs) = routes::api().into_parts();
    let router = rest.with_state(state);
    let router = goose_platform::refuse_declared_lengths_over(router, goose_platform::BODY_LIMIT);
    Ok(platform.protect(router, &specs))
}
