//! The sla API as one list: each route with its access rule, OpenAPI operation and handler.

use crate::api::{AppliedSlo, MeasurementBatch, Recorded};
use crate::handlers::*;
use crate::views::SloEntry;
use crate::AppState;
use goose_domain::rbac::Permission;
use goose_domain::sla::measure::Sample;
use goose_domain::sla::openslo::{BurnCondition, Indicator, Objective, Op, Slo};
use goose_domain::sla::status::{AlertState, ObjectiveStatus, SloStatus};
use goose_runtime::routes::{Access, QueryParam, RouteSpec, Routes};

const AT: &[QueryParam] = &[QueryParam {
    name: "at",
    required: false,
    kind: "date-time",
    description: "The moment (RFC 3339; default now): the window is the SLO's, ending there",
}];

/// The sla REST API: each route with its handler. This one list builds the router, the
/// access table the middleware enforces, the OpenAPI document and the matrix test's rows.
pub(crate) fn api() -> Routes<AppState> {
    Routes::new()
.route(RouteSpec::put("/v1/slos", Access::Permission(Permission::SlaDefine), "Apply OpenSLO v1 documents (YAML, several): each changed SLO gets a new version; errors name document, field and line").returns_many("AppliedSlo").also(&[422]), apply)
.route(RouteSpec::get("/v1/slos", Access::Permission(Permission::SlaRead), "Every SLO, current version").returns_many("SloEntry"), list)
.route(RouteSpec::get("/v1/slos/{name}", Access::Permission(Permission::SlaRead), "One SLO, current version").returns("SloEntry"), get_slo)
.route(RouteSpec::get("/v1/slos/{name}/status", Access::Permission(Permission::SlaRead), "Attainment, error budget left, burn-rate alerts and latency percentiles over the SLO's window").returns("SloStatus").query(AT), slo_status)
.route(RouteSpec::post("/v1/measurements", Access::Permission(Permission::MeasurementSubmit), "Record a batch of one service's request samples as minute summaries (all or nothing; a repeated batch_id is not counted twice)").body("MeasurementBatch").returns("Recorded").also(&[422]), measurements)
}

/// The REST routes this service serves, with their access rules.
pub fn routes() -> Vec<RouteSpec> {
    api().specs().to_vec()
}

/// The OpenAPI document of this service.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(components(schemas(
        AppliedSlo,
        MeasurementBatch,
        Recorded,
        Sample,
        SloEntry,
        Slo,
        Indicator,
        Op,
        Objective,
        BurnCondition,
        SloStatus,
        ObjectiveStatus,
        AlertState
    )))]
    struct Doc;
    goose_runtime::openapi::document(
        "Golden Goose sla",
        &routes(),
        <Doc as utoipa::OpenApi>::openapi().components,
    )
}
