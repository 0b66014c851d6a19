//! The registry service: the service catalog (onboarding from the seed's template or
//! Backstage entities), its dependency graph, and the organisation's org-config.
//!
//! Architecture invariant: the catalog is one aggregate (`catalog/default`), so a batch of
//! services is validated against the whole catalog — unknown dependencies, duplicates,
//! cycles — and recorded in one append or not at all.
//!
//! Layout (docs/adding-a-service.md): [`routes`] the one route list, [`api`] wire types,
//! `handlers`, [`views`] the read model, [`grpc`].

pub mod api;
pub mod cli;
pub mod grpc;
mod handlers;
mod routes;
pub mod views;

pub use goose_domain::org_config::OrgConfigEvent;
pub use routes::{openapi, routes};
pub use views::RegistryView;

use axum::Router;
use goose_domain::catalog::{Catalog, CatalogEvent};
use goose_domain::org_config::OrgConfigState;
use goose_domain::streams;
use goose_platform::view::ViewHandle;
use goose_platform::Platform;

goose_ledger::ledger_aggregate!(CatalogAgg(Catalog), streams::CATALOG, CatalogEvent);
goose_ledger::ledger_aggregate!(
    OrgConfigAgg(OrgConfigState),
    streams::ORG_CONFIG,
    OrgConfigEvent
);

/// The id of the one catalog and the one org-config.
pub const DEFAULT_ID: &str = "default";

#[derive(Clone)]
pub(crate) struct AppState {
    platform: Platform,
    view: ViewHandle<RegistryView>,
}

impl AppState {
    fn catalog(&self) -> views::MappedCatalog<'_> {
        views::MappedCatalog(self.view.read())
    }
}

pub async fn build(platform: &Platform) -> anyhow::Result<Router> {
    let view = ViewHandle::<RegistryView>::start(platform).await?;
    // Not tonic's `Routes::into_axum_router`: its fallback would clash when `goosectl dev`
    // merges the services into one router.
    let grpc = Router::new().route_service(
        "/goose.v1.Registry/{*method}",
        grpc::RegistryGrpc { view: view.clone() }.server(),
    );
    let state = AppState {
        platform: platform.clone(),
        view,
    };
    let (rest, specs) = routes::api().into_parts();
    let router = rest.with_state(state).merge(grpc);
    let router = goose_platform::refuse_declared_lengths_over(router, goose_platform::BODY_LIMIT);
    Ok(platform.protect(router, &[specs.as_slice(), grpc::GRPC_ROUTES].concat()))
}
