//! The evidence API as one list: each route with its access rule, OpenAPI operation and
//! handler (the chain's routes are in [`crate::chain_api`]).

use crate::handlers::*;
use crate::{chain_api, AppState};
use goose_domain::evidence::{BlobDownload, EvidenceKind, EvidenceRecord, EvidenceSummary};
use goose_domain::rbac::Permission;
use goose_runtime::routes::{Access, RouteSpec, Routes};

/// The evidence REST API: each route with its handler. This one list builds the router, the
/// access table the middleware enforces, the OpenAPI document and the matrix test's rows.
pub(crate) fn api() -> Routes<AppState> {
    Routes::new()
.route(RouteSpec::post("/v1/evidence", Access::Permission(Permission::EvidenceSubmit), "Submit evidence about a service version or a model version: multipart (service or model, version, kind, file) or the raw file with ?service=|model=&version=&kind=").returns("EvidenceRecord"), submit)
.route(RouteSpec::get("/v1/evidence", Access::Permission(Permission::EvidenceRead), "List evidence (?service=|model=&version=)"), list)
.route(RouteSpec::get("/v1/evidence/{id}", Access::Permission(Permission::EvidenceRead), "One evidence record").returns("EvidenceRecord"), get_record)
.route(RouteSpec::get("/v1/blobs/{digest}", Access::Permission(Permission::EvidenceRead), "An evidence file by its SHA3-256 digest"), get_blob)
.route(
    RouteSpec::get(
        "/v1/blobs/{digest}/downloads",
        Access::Permission(Permission::AuditRead),
        "Who downloaded an evidence file, and when (each download is recorded on the chain before the bytes are served)",
    )
    .returns_many("BlobDownload"),
    blob_downloads,
)
.route(RouteSpec::post("/v1/chain/checkpoints", Access::Permission(Permission::ChainCheckpoint), "Sign a checkpoint of the chain now"), checkpoint_now)
}

/// The REST routes this service serves, with their access rules (gRPC: [`grpc::GRPC_ROUTES`]).
pub fn routes() -> Vec<RouteSpec> {
    [api().specs(), &chain_api::specs()].concat()
}

/// The OpenAPI document of this service.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(components(schemas(EvidenceRecord, EvidenceSummary, EvidenceKind, BlobDownload)))]
    struct Doc;
    goose_runtime::openapi::document(
        "Golden Goose evidence",
        &routes(),
        <Doc as utoipa::OpenApi>::openapi().components,
    )
}
