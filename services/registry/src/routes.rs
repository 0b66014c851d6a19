//! The registry API as one list: each route with its access rule, OpenAPI operation and
//! handler.

use crate::api::{ApplyResult, ServiceView};
use crate::handlers::*;
use crate::AppState;
use goose_domain::catalog::{CatalogEntry, ServiceDefinition};
use goose_domain::graph::GraphView;
use goose_domain::org_config::OrgConfig;
use goose_domain::rbac::Permission;
use goose_runtime::routes::{Access, RouteSpec, Routes};

/// The registry REST API: each route with its handler. This one list builds the router, the
/// access table the middleware enforces, the OpenAPI document and the matrix test's rows.
pub(crate) fn api() -> Routes<AppState> {
    Routes::new()
.route(RouteSpec::post("/v1/services", Access::Permission(Permission::ServiceOnboard), "Onboard or update services: seed template or Backstage entities, YAML (multi-document) or JSON; all or nothing, in dependency order").returns("ApplyResult"), apply)
.route(RouteSpec::get("/v1/services", Access::Permission(Permission::ServiceRead), "List the catalog"), list)
.route(RouteSpec::get("/v1/services/{name}", Access::Permission(Permission::ServiceRead), "One service with its dependencies and dependants").returns("ServiceView"), get_service)
.route(RouteSpec::get("/v1/graph", Access::Permission(Permission::ServiceRead), "The dependency graph (?format=json|text|dot)").returns("GraphView"), graph)
.route(RouteSpec::put("/v1/org-config", Access::Permission(Permission::OrgConfigure), "Replace org-config (YAML); errors name field and line").returns("OrgConfig"), put_org_config)
.route(RouteSpec::get("/v1/org-config", Access::Permission(Permission::ServiceRead), "The current org-config (defaults until one is set)").returns("OrgConfig"), get_org_config)
}

/// The REST routes this service serves, with their access rules (gRPC: [`grpc::GRPC_ROUTES`]).
pub fn routes() -> Vec<RouteSpec> {
    api().specs().to_vec()
}

/// The OpenAPI document of this service.
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
        &routes(),
        <Doc as utoipa::OpenApi>::openapi().components,
    )
}
