//! The analytics API as one list: each route with its access rule, OpenAPI operation and
//! handler.

use crate::api::{
    AdapterInfo, AnswerFormat, Column, ExportStatus, ExportedTable, HardwareInfo, KpiInfo,
    QueryAnswer, QueryRequest, TableInfo,
};
use crate::handlers::*;
use crate::AppState;
use goose_domain::rbac::Permission;
use goose_runtime::routes::{Access, QueryParam, RouteSpec, Routes};

const FORMAT: &[QueryParam] = &[QueryParam {
    name: "format",
    required: false,
    kind: "string",
    values: &["json", "csv", "arrow"],
    description: "json (default), csv, or arrow (an Arrow IPC stream)",
}];

/// The answers' other media types (CSV, an Arrow IPC stream).
const ANSWERS: &[&str] = &["text/csv", "application/vnd.apache.arrow.stream"];

/// The analytics REST API: each route with its handler. This one list builds the router, the
/// access table the middleware enforces, the OpenAPI document and the matrix test's rows.
pub(crate) fn api() -> Routes<AppState> {
    Routes::new()
.route(RouteSpec::post("/v1/analytics/query", Access::Permission(Permission::AnalyticsQuery), "Run one read-only SQL query over the analytics tables and KPI views ({sql, format, max_rows}): JSON rows, CSV or an Arrow IPC stream; DDL/DML refused; memory, time and row limits").body("QueryRequest").returns("QueryAnswer").produces(ANSWERS).also(&[422, 503]), run_query)
.route(RouteSpec::get("/v1/analytics/tables", Access::Permission(Permission::AnalyticsQuery), "The tables one can query: columns, types, row counts").returns_many("TableInfo"), tables)
.route(RouteSpec::get("/v1/analytics/hardware", Access::Permission(Permission::AnalyticsQuery), "Graphics adapters found (name, backend, device type, limits), the one aggregates are offloaded to and why, and how many ran there").returns("HardwareInfo"), hardware)
.route(RouteSpec::get("/v1/analytics/export", Access::Permission(Permission::AnalyticsQuery), "How far the Hive-partitioned Parquet export got: location, ledger position, files and rows per table, the last error").returns("ExportStatus"), export_status)
.route(RouteSpec::get("/v1/analytics/kpis", Access::Permission(Permission::AnalyticsQuery), "The KPI views with their definitions and SQL").returns_many("KpiInfo"), list_kpis)
.route(RouteSpec::get("/v1/analytics/kpis/{name}/stream", Access::Permission(Permission::AnalyticsQuery), "One KPI's value as server-sent events (text/event-stream): `kpi` events {position, rows} at once and whenever new events change it; an `error` event ends the stream").produces(&["text/event-stream"]), crate::stream::kpi_stream)
.route(RouteSpec::get("/v1/analytics/kpis/{name}", Access::Permission(Permission::AnalyticsQuery), "One KPI's current value(s)").returns("QueryAnswer").query(FORMAT).produces(ANSWERS).also(&[503]), kpi)
}

/// The REST routes this service serves, with their access rules.
pub fn routes() -> Vec<RouteSpec> {
    api().specs().to_vec()
}

/// The OpenAPI document of this service.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(components(schemas(
        QueryRequest,
        AnswerFormat,
        QueryAnswer,
        Column,
        TableInfo,
        KpiInfo,
        ExportStatus,
        ExportedTable,
        HardwareInfo,
        AdapterInfo
    )))]
    struct Doc;
    goose_runtime::openapi::document(
        "Golden Goose analytics",
        &routes(),
        <Doc as utoipa::OpenApi>::openapi().components,
    )
}
