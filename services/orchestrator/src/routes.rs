//! The orchestrator API as one list: each route with its access rule, OpenAPI operation and
//! handler.

use crate::api::*;
use crate::handlers::audit::{export_promotion, export_service};
use crate::handlers::compliance::{demote, DemoteRequest, Demoted};
use crate::handlers::packages::*;
use crate::handlers::promotions::*;
use crate::AppState;
use goose_domain::approval::ImpactLevel;
use goose_domain::compliance::ComplianceState;
use goose_domain::package::Member;
use goose_domain::promotion::TargetSpec;
use goose_domain::rbac::Permission;
use goose_runtime::routes::{Access, RouteSpec, Routes};

/// The orchestrator REST API: each route with its handler. This one list builds the router, the
/// access table the middleware enforces, the OpenAPI document and the matrix test's rows.
pub(crate) fn api() -> Routes<AppState> {
    Routes::new()
.route(RouteSpec::post("/v1/promotions", Access::Permission(Permission::PromotionRequest), "Request the promotion of a service version to compliant (seed 001 §5.2); raises its approval request in rbac").body("PromotionRequest").returns("PromotionView").status(202), request_promotion)
.route(RouteSpec::get("/v1/promotions", Access::Permission(Permission::ServiceRead), "List promotions (?status=running|finished, ?package=ID)"), list_promotions)
.route(RouteSpec::get("/v1/promotions/{id}", Access::Permission(Permission::ServiceRead), "One promotion: each target's status, compliance state and newest gate outcomes").returns("PromotionView"), get_promotion)
.route(
    RouteSpec::get(
        "/v1/promotions/{id}/steps",
        Access::Permission(Permission::ServiceRead),
        "The promotion's steps as recorded (gate outcomes and reasons, without the facts they cite: see explain)",
    ),
    steps,
)
.route(
    RouteSpec::get(
        "/v1/promotions/{id}/targets/{service}/vsa",
        Access::Permission(Permission::ServiceRead),
        "SLSA verification summary (in-toto Statement v1, DSSE-signed by the orchestrator) of a target the promotion made compliant",
    ),
    target_vsa,
)
.route(RouteSpec::get("/v1/promotions/{id}/explain", Access::Permission(Permission::AuditRead), "Every decision of a promotion as recorded, with the facts it read (event ids, positions, digests)"), explain)
.route(
    RouteSpec::get(
        "/v1/audit/services/{service}/export",
        Access::Permission(Permission::AuditRead),
        "Audit export of a service (seed 001 §3.1 and §3.4 layouts): documents, evidence blob addresses, and an index of every file with the chain facts it states, DSSE-signed by the orchestrator",
    ),
    export_service,
)
.route(
    RouteSpec::get(
        "/v1/audit/promotions/{id}/export",
        Access::Permission(Permission::AuditRead),
        "Audit export of one promotion, every target, with its signed index",
    ),
    export_promotion,
)
.route(RouteSpec::get("/v1/compliance", Access::Permission(Permission::ServiceRead), "Compliance state of every service version (?service=NAME)"), compliance)
.route(
    RouteSpec::post(
        "/v1/compliance/{service}/{version}/demote",
        Access::Permission(Permission::PromotionApprove),
        "Demote a compliant version to sandbox, with a reason (recorded; dependants are reported, not changed)",
    )
    .body("DemoteRequest")
    .returns("Demoted"),
    demote,
)
.route(RouteSpec::get("/v1/promotion-policy", Access::Permission(Permission::ServiceRead), "The promotion policy in force and its digest"), get_policy)
.route(RouteSpec::post("/v1/packages", Access::Permission(Permission::PackageCreate), "Create a Golden Goose package {services, version} (seed 001 §3.5)").body("PackageRequest").returns("PackageView").status(201), create_package)
.route(RouteSpec::get("/v1/packages", Access::Permission(Permission::ServiceRead), "List packages"), list_packages)
.route(RouteSpec::get("/v1/packages/{id}", Access::Permission(Permission::ServiceRead), "One package with its promotions").returns("PackageView"), get_package)
.route(RouteSpec::post("/v1/packages/{id}/promote", Access::Permission(Permission::PackagePromote), "Promote every member of a package in dependency order").body("PromoteOptions").returns("PromotionView").status(202), promote_package)
.route(
    RouteSpec::get(
        "/v1/packages/{id}/bundle",
        Access::Permission(Permission::AuditRead),
        "The package's offline-verifiable bundle: signed manifest, signer key, manifest event and a tlog-proof of every cited fact (kept in the WORM bucket when one is configured); 409 until signed and checkpointed",
    ),
    get_bundle,
)
.route(RouteSpec::get("/v1/packages/{id}/manifest", Access::Permission(Permission::ServiceRead), "The newest signed manifest (DSSE envelope) with the events it cites"), get_manifest)
}

/// The REST routes this service serves, with their access rules (gRPC: [`grpc::GRPC_ROUTES`]).
pub fn routes() -> Vec<RouteSpec> {
    api().specs().to_vec()
}

/// The OpenAPI document of this service.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(components(schemas(
        DemoteRequest,
        Demoted,
        PromotionRequest,
        DependencyRefs,
        PromotionView,
        PackageRequest,
        PromoteOptions,
        PackageView,
        Member,
        TargetSpec,
        ComplianceState,
        ImpactLevel
    )))]
    struct Doc;
    goose_runtime::openapi::document(
        "Golden Goose orchestrator",
        &routes(),
        <Doc as utoipa::OpenApi>::openapi().components,
    )
}
