//! The registry service: the service catalog (onboarding from the seed's template or
//! Backstage entities), its dependency graph, and the organisation's org-config.
//!
//! Architecture invariant: the catalog is one aggregate (`catalog/default`), so a batch of
//! services is validated against the whole catalog — unknown dependencies, duplicates,
//! cycles — and recorded in one append or not at all.

pub mod grpc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use goose_domain::catalog::{
    parse_definitions, Catalog, CatalogEntry, CatalogEvent, Rejected, ServiceDefinition,
    ServiceName,
};
use goose_domain::graph::GraphView;
use goose_domain::org_config::OrgConfig;
use goose_domain::rbac::Permission;
use goose_domain::streams;
use goose_ledger::aggregate::{self, Aggregate};
use goose_ledger::Metadata;
use goose_ledger::RecordedEvent;
use goose_platform::view::{View, ViewHandle};
use goose_platform::{execute_problem, Platform};
use goose_runtime::auth::{Access, AuthLayer, Caller, RouteSpec};
use goose_runtime::problem::Problem;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The registry API.
pub const ROUTES: &[RouteSpec] = &[
    RouteSpec::new("POST", "/v1/services", Access::Permission(Permission::ServiceOnboard), "Onboard or update services: seed template or Backstage entities, YAML (multi-document) or JSON; all or nothing, in dependency order").returns("ApplyResult"),
    RouteSpec::new("GET", "/v1/services", Access::Permission(Permission::ServiceRead), "List the catalog"),
    RouteSpec::new("GET", "/v1/services/{name}", Access::Permission(Permission::ServiceRead), "One service with its dependencies and dependants").returns("ServiceView"),
    RouteSpec::new("GET", "/v1/graph", Access::Permission(Permission::ServiceRead), "The dependency graph (?format=json|text|dot)").returns("GraphView"),
    RouteSpec::new("PUT", "/v1/org-config", Access::Permission(Permission::OrgConfigure), "Replace org-config (YAML); errors name field and line").returns("OrgConfig"),
    RouteSpec::new("GET", "/v1/org-config", Access::Permission(Permission::ServiceRead), "The current org-config (defaults until one is set)").returns("OrgConfig"),
];

pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(components(schemas(
        ApplyResult,
        ServiceView,
        GraphView,
        OrgConfig,
        CatalogEntry,
        ServiceDefinition
    )))]
    struct Doc;
    goose_runtime::openapi::document(
        "Golden Goose registry",
        ROUTES,
        <Doc as utoipa::OpenApi>::openapi().components,
    )
}

goose_ledger::ledger_aggregate!(CatalogAgg(Catalog), streams::CATALOG, CatalogEvent);

pub use goose_domain::org_config::OrgConfigEvent;

#[derive(Debug, Clone, Default)]
struct OrgConfigAgg(Option<OrgConfig>);

impl Aggregate for OrgConfigAgg {
    const TYPE: &'static str = streams::ORG_CONFIG;
    type Event = OrgConfigEvent;
    fn apply(&mut self, e: &OrgConfigEvent) {
        let OrgConfigEvent::OrgConfigSet { config, .. } = e;
        self.0 = Some(config.clone());
    }
    fn event_type(_: &OrgConfigEvent) -> &'static str {
        "OrgConfigSet"
    }
}

/// The id of the one catalog and the one org-config.
pub const DEFAULT_ID: &str = "default";

#[derive(Clone)]
struct AppState {
    platform: Platform,
    view: ViewHandle<RegistryView>,
}

/// The registry's read model: the catalog and the org-config, from its own events.
#[derive(Debug, Default)]
pub struct RegistryView {
    pub catalog: Catalog,
    pub org: Option<OrgConfig>,
}

impl View for RegistryView {
    const FOLLOWS: &'static [&'static str] = &[streams::CATALOG, streams::ORG_CONFIG];

    fn apply(&mut self, ev: &RecordedEvent) {
        match ev.stream.aggregate_type() {
            streams::CATALOG => {
                if let Some(e) = goose_platform::decoded::<CatalogEvent>(ev) {
                    self.catalog.apply(&e);
                }
            }
            _ => {
                if let Some(OrgConfigEvent::OrgConfigSet { config, .. }) =
                    goose_platform::decoded(ev)
                {
                    self.org = Some(config);
                }
            }
        }
    }
}

impl AppState {
    fn catalog(&self) -> MappedCatalog<'_> {
        MappedCatalog(self.view.read())
    }
}

/// A read guard on the view that derefs to its catalog.
pub(crate) struct MappedCatalog<'a>(std::sync::RwLockReadGuard<'a, RegistryView>);

impl std::ops::Deref for MappedCatalog<'_> {
    type Target = Catalog;
    fn deref(&self) -> &Catalog {
        &self.0.catalog
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
    let router = Router::new()
        .route("/v1/services", post(apply).get(list))
        .route("/v1/services/{name}", get(get_service))
        .route("/v1/graph", get(graph))
        .route("/v1/org-config", get(get_org_config).put(put_org_config))
        .with_state(state)
        .merge(grpc);
    let auth = AuthLayer::new(
        platform.verifier.clone(),
        Arc::new(platform.directory.clone()),
        &[ROUTES, grpc::GRPC_ROUTES].concat(),
    );
    Ok(auth.protect(router))
}

/// What an apply did.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApplyResult {
    /// Newly onboarded, in the order applied (dependencies first).
    pub onboarded: Vec<String>,
    /// Changed definitions, in the order applied.
    pub updated: Vec<String>,
    /// Submitted but identical to what is stored.
    pub unchanged: Vec<String>,
}

fn body_text(body: &Bytes) -> Result<&str, Problem> {
    std::str::from_utf8(body).map_err(|e| Problem::bad_request(format!("body is not UTF-8: {e}")))
}

async fn apply(
    State(s): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<ApplyResult>, Problem> {
    let defs =
        parse_definitions(body_text(&body)?).map_err(|e| Problem::bad_request(e.to_string()))?;
    let submitted: Vec<String> = defs.iter().map(|d| d.name.to_string()).collect();
    let meta = Metadata::now(caller.user.clone());
    let done =
        aggregate::execute::<CatalogAgg, Rejected>(&s.platform.ledger, DEFAULT_ID, &meta, |c| {
            c.0.submit(defs.clone())
        })
        .await
        .map_err(|e| {
            execute_problem(e, |r| {
                Problem::new(
                    axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                    "rejected",
                    r.to_string(),
                )
            })
        })?;
    s.view.after_write(done.receipt, "registry").await;
    let mut result = ApplyResult {
        onboarded: Vec::new(),
        updated: Vec::new(),
        unchanged: Vec::new(),
    };
    for e in &done.events {
        let name = e.definition().name.to_string();
        match e {
            CatalogEvent::ServiceOnboarded { .. } => result.onboarded.push(name),
            CatalogEvent::ServiceUpdated { .. } => result.updated.push(name),
        }
    }
    result.unchanged = submitted
        .into_iter()
        .filter(|n| !result.onboarded.contains(n) && !result.updated.contains(n))
        .collect();
    tracing::info!(user = %caller.user, onboarded = ?result.onboarded, updated = ?result.updated, "catalog applied");
    Ok(Json(result))
}

async fn list(State(s): State<AppState>) -> Json<Vec<CatalogEntry>> {
    Json(s.catalog().entries().cloned().collect())
}

/// A service with its place in the graph.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServiceView {
    #[serde(flatten)]
    pub entry: CatalogEntry,
    pub dependants: Vec<String>,
}

async fn get_service(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ServiceView>, Problem> {
    let name = ServiceName::parse(&name).map_err(Problem::bad_request)?;
    let catalog = s.catalog();
    let entry = catalog
        .get(&name)
        .cloned()
        .ok_or_else(|| Problem::not_found(format!("no service {name} in the catalog")))?;
    let dependants = catalog
        .graph()
        .dependants(&name)
        .into_iter()
        .map(ToString::to_string)
        .collect();
    Ok(Json(ServiceView { entry, dependants }))
}

#[derive(Debug, Deserialize)]
struct GraphQuery {
    #[serde(default)]
    format: Option<String>,
}

async fn graph(
    State(s): State<AppState>,
    q: Result<Query<GraphQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Query(q) = q.map_err(|e| Problem::bad_request(e.body_text()))?;
    let g = s.catalog().graph();
    Ok(match q.format.as_deref().unwrap_or("json") {
        "json" => Json(g.view()).into_response(),
        "dot" => ([(header::CONTENT_TYPE, "text/vnd.graphviz")], g.to_dot()).into_response(),
        "text" => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            g.to_text(),
        )
            .into_response(),
        other => {
            return Err(Problem::bad_request(format!(
                "format {other:?} is not json, text or dot"
            )))
        }
    })
}

async fn get_org_config(State(s): State<AppState>) -> Json<OrgConfig> {
    Json(s.view.read().org.clone().unwrap_or_default())
}

async fn put_org_config(
    State(s): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<OrgConfig>, Problem> {
    let text = body_text(&body)?;
    let config = OrgConfig::parse(text).map_err(|e| Problem::bad_request(e.to_string()))?;
    let meta = Metadata::now(caller.user.clone());
    let event = OrgConfigEvent::OrgConfigSet {
        config: config.clone(),
        source: text.to_owned(),
    };
    let done = aggregate::execute::<OrgConfigAgg, std::convert::Infallible>(
        &s.platform.ledger,
        DEFAULT_ID,
        &meta,
        |cur| {
            Ok(if cur.0.as_ref() == Some(&config) {
                Vec::new()
            } else {
                vec![event.clone()]
            })
        },
    )
    .await
    .map_err(|e| execute_problem(e, |never| match never {}))?;
    s.view.after_write(done.receipt, "registry").await;
    Ok(Json(config))
}
