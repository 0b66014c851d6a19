//! The registry service: the service catalog (onboarding from the seed's template or
//! Backstage entities), its dependency graph, and the organisation's org-config.
//!
//! Architecture invariant: the catalog is one aggregate (`catalog/default`), so a batch of
//! services is validated against the whole catalog — unknown dependencies, duplicates,
//! cycles — and recorded in one append or not at all.
//!
//! The model registry lives here too (`models`): one aggregate per model (`model/<name>`),
//! deployments through the model policy (`policies/model_gates.yaml`) and rbac approvals; and
//! the use cases built on the models (`usecases`, `usecase/<name>`).
//!
//! Layout (docs/adding-a-service.md): [`routes`] the one route list, [`api`] wire types,
//! `handlers` and `models`, [`views`] the read model, [`grpc`].

pub mod api;
pub mod cli;
pub mod grpc;
pub mod guard;
mod handlers;
mod mlflow;
mod models;
mod routes;
mod usecases;
pub mod views;

pub use goose_domain::org_config::OrgConfigEvent;
pub use routes::{openapi, routes};
pub use views::RegistryView;

use axum::Router;
use goose_domain::catalog::{Catalog, CatalogEvent};
use goose_domain::model::policy::ModelPolicy;
use goose_domain::model::{ModelEvent, RegisteredModel};
use goose_domain::org_config::OrgConfigState;
use goose_domain::streams;
use goose_platform::approvals::ApprovalRequester;
use goose_platform::view::ViewHandle;
use goose_platform::Platform;
use std::sync::Arc;

goose_ledger::ledger_aggregate!(CatalogAgg(Catalog), streams::CATALOG, CatalogEvent);
goose_ledger::ledger_aggregate!(
    OrgConfigAgg(OrgConfigState),
    streams::ORG_CONFIG,
    OrgConfigEvent
);
goose_ledger::ledger_aggregate!(ModelAgg(RegisteredModel), streams::MODEL, ModelEvent);
goose_ledger::ledger_aggregate!(
    UseCaseAgg(goose_domain::usecase::UseCase),
    streams::USECASE,
    goose_domain::usecase::UseCaseEvent
);

/// The id of the one catalog and the one org-config.
pub const DEFAULT_ID: &str = "default";

#[derive(Clone)]
pub(crate) struct AppState {
    platform: Platform,
    view: ViewHandle<RegistryView>,
    model_policy: Arc<ModelPolicy>,
    approvals: Option<Arc<dyn ApprovalRequester>>,
}

/// How the registry runs.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// The gates of model deployments.
    pub model_policy: ModelPolicy,
    /// Raises the approval request of a production deployment in rbac for the caller; without
    /// it, the caller raises one and passes its id.
    pub approvals: Option<Arc<dyn ApprovalRequester>>,
    /// How often the model guard looks at least (it also wakes on every event it follows).
    pub guard_every: std::time::Duration,
}

impl RegistryConfig {
    /// The shipped model policy; approvals raised through `approvals` when given.
    pub fn new(approvals: Option<Arc<dyn ApprovalRequester>>) -> anyhow::Result<Self> {
        Ok(Self {
            model_policy: ModelPolicy::parse(
                goose_domain::model::policy::DEFAULT_MODEL_POLICY_YAML,
            )?,
            approvals,
            guard_every: std::time::Duration::from_secs(5),
        })
    }
}

impl AppState {
    fn catalog(&self) -> views::MappedCatalog<'_> {
        views::MappedCatalog(self.view.read())
    }
}

pub async fn build(platform: &Platform, config: RegistryConfig) -> anyhow::Result<Router> {
    let view = platform.start_view::<RegistryView>("registry").await?;
    // Not tonic's `Routes::into_axum_router`: its fallback would clash when `goosectl dev`
    // merges the services into one router.
    let grpc = Router::new().route_service(
        "/goose.v1.Registry/{*method}",
        grpc::RegistryGrpc { view: view.clone() }.server(),
    );
    let state = AppState {
        platform: platform.clone(),
        view,
        model_policy: Arc::new(config.model_policy),
        approvals: config.approvals,
    };
    platform.spawn(guard::run(
        state.clone(),
        config.guard_every,
        platform.stopped(),
    ));
    let (rest, specs) = routes::api().into_parts();
    let router = rest.with_state(state).merge(grpc);
    let router = goose_platform::refuse_declared_lengths_over(router, goose_platform::BODY_LIMIT);
    Ok(platform.protect(router, &[specs.as_slice(), grpc::GRPC_ROUTES].concat()))
}
