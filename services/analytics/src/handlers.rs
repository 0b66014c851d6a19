//! The analytics service's REST handlers.

use crate::api::{
    Column, ExportStatus, ExportedTable, HardwareInfo, KpiInfo, QueryAnswer, QueryRequest,
    TableInfo,
};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use goose_analytics::encode::{self, Format};
use goose_analytics::{kpis, Answer, QueryError, TableData};
use goose_platform::JsonBody;
use goose_runtime::problem::Problem;
use serde::Deserialize;

/// The query metrics (defined in the catalog, `goose_metrics`).
pub use goose_metrics::analytics::{LEDGER_ROWS_READ, QUERIES, QUERY_SECONDS};

fn columns(schema: &goose_analytics::query::SchemaRef) -> Vec<Column> {
    schema
        .fields()
        .iter()
        .map(|f| Column {
            name: f.name().clone(),
            data_type: f.data_type().to_string(),
            nullable: f.is_nullable(),
        })
        .collect()
}

fn query_problem(e: &QueryError) -> Problem {
    record_failure(e);
    match e {
        QueryError::Refused(_) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "statement not allowed",
            e.to_string(),
        ),
        QueryError::Invalid(_) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid query",
            e.to_string(),
        ),
        QueryError::Execution(_) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "query failed",
            e.to_string(),
        ),
        QueryError::Memory { .. } => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "query over its memory limit",
            e.to_string(),
        ),
        QueryError::Timeout(_) => Problem::unavailable(e.to_string()),
        QueryError::Busy(_) => Problem::unavailable(e.to_string()).retry_after(1),
        QueryError::Failed(_) => Problem::internal(e.to_string()),
    }
}

/// Counts a query that gave no answer by why, and logs the ones that are not the query's fault.
pub(crate) fn record_failure(e: &QueryError) {
    let outcome = match e {
        QueryError::Refused(_) => "refused",
        QueryError::Invalid(_) => "invalid",
        QueryError::Execution(_) => "execution",
        QueryError::Memory { .. } => "memory",
        QueryError::Timeout(_) => "timeout",
        QueryError::Busy(_) => "busy",
        QueryError::Failed(_) => "failed",
    };
    QUERIES.counter(&[outcome]).increment(1);
    if matches!(e, QueryError::Failed(_)) {
        tracing::error!(error = %e, "analytics query failed");
    }
}

/// The tables as they are after catching up with the ledger, and the position they reach.
pub(crate) async fn snapshot(s: &AppState) -> Result<(Vec<TableData>, u64), Problem> {
    s.view.catch_up(&s.platform).await?;
    let failed =
        |e: goose_analytics::table::ConvertError| query_problem(&QueryError::Failed(e.to_string()));
    let chain = chain_row(s);
    let (mut tables, position) = {
        let v = s.view.read();
        (v.tables.snapshot().map_err(failed)?, v.tables.next_position)
    };
    let chain = goose_analytics::Tables::chain_table(chain.as_ref()).map_err(failed)?;
    match tables.iter_mut().find(|t| t.def.name == chain.def.name) {
        Some(t) => *t = chain,
        None => tables.push(chain),
    }
    Ok((tables, position))
}

/// The chain watch's verdict now (none without a log key).
fn chain_row(s: &AppState) -> Option<goose_analytics::rows::ChainRow> {
    let fact = s.chain.fact();
    if !fact.configured {
        return None;
    }
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    Some(goose_analytics::rows::ChainRow {
        checked_at: goose_analytics::tables::micros(time::OffsetDateTime::now_utc()),
        configured: true,
        log_size: n(s.view.read().tables.next_position),
        verified: n(fact.verified),
        checkpoint_size: fact.newest_checkpoint.as_ref().map(|(size, _)| n(*size)),
        checkpoint_root: fact
            .newest_checkpoint
            .as_ref()
            .and_then(|(_, f)| f.digest.clone()),
        failure: fact.failure.clone(),
        witness_threshold: n(s.witnesses.threshold as u64),
        witnesses: n(s.witnesses.witnesses.len() as u64),
    })
}

/// Runs `sql` over the tables as they are after catching up with the ledger.
pub(crate) async fn answer(
    s: &AppState,
    sql: &str,
    max_rows: Option<usize>,
) -> Result<Answer, Problem> {
    let (tables, position) = snapshot(s).await?;
    let a = s
        .engine
        .run(&tables, position, sql, max_rows)
        .await
        .map_err(|e| query_problem(&e))?;
    record_answer(&a);
    Ok(a)
}

/// Counts an answered query and its time.
pub(crate) fn record_answer(a: &Answer) {
    LEDGER_ROWS_READ.counter(&[]).increment(a.ledger_rows_read);
    QUERIES.counter(&["answered"]).increment(1);
    QUERY_SECONDS.histogram(&[]).record(a.elapsed.as_secs_f64());
}

fn wanted_format(asked: Option<Format>, headers: &HeaderMap) -> Format {
    if let Some(f) = asked {
        return f;
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if accept.contains("text/csv") {
        Format::Csv
    } else if accept.contains("application/vnd.apache.arrow.stream") {
        Format::Arrow
    } else {
        Format::Json
    }
}

fn respond(a: &Answer, format: Format) -> Result<Response, Problem> {
    let encoding = |e: goose_analytics::query::ArrowError| {
        Problem::internal(format!("the answer could not be encoded: {e}"))
    };
    let bytes = match format {
        Format::Json => {
            let rows = match encode::json_rows(a).map_err(encoding)? {
                serde_json::Value::Array(rows) => rows,
                other => vec![other],
            };
            return Ok(Json(QueryAnswer {
                columns: columns(&a.schema),
                rows,
                row_count: a.rows,
                truncated: a.truncated,
                position: a.position,
                ledger_rows_read: a.ledger_rows_read,
                elapsed_ms: a.elapsed.as_secs_f64() * 1e3,
            })
            .into_response());
        }
        Format::Csv => encode::csv(a).map_err(encoding)?,
        Format::Arrow => encode::arrow_ipc(a).map_err(encoding)?,
    };
    Ok((
        [
            (header::CONTENT_TYPE, format.media_type().to_owned()),
            (
                header::HeaderName::from_static("goose-ledger-position"),
                a.position.to_string(),
            ),
            (
                header::HeaderName::from_static("goose-truncated"),
                a.truncated.to_string(),
            ),
        ],
        bytes,
    )
        .into_response())
}

pub(crate) async fn run_query(
    State(s): State<AppState>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<QueryRequest>,
) -> Result<Response, Problem> {
    let a = answer(&s, &req.sql, req.max_rows).await?;
    respond(&a, wanted_format(req.format.map(Into::into), &headers))
}

pub(crate) async fn tables(State(s): State<AppState>) -> Result<Json<Vec<TableInfo>>, Problem> {
    s.view.catch_up(&s.platform).await?;
    let counts = s.view.read().tables.row_counts();
    Ok(Json(
        goose_analytics::Tables::defs()
            .into_iter()
            .map(|d| TableInfo {
                name: d.name.to_owned(),
                description: d.description.to_owned(),
                rows: counts
                    .iter()
                    .find(|(n, _)| *n == d.name)
                    .map_or(0, |(_, c)| *c),
                columns: columns(&d.schema()),
            })
            .collect(),
    ))
}

pub(crate) async fn list_kpis() -> Json<Vec<KpiInfo>> {
    Json(
        kpis::KPIS
            .iter()
            .map(|k| KpiInfo {
                name: k.name.to_owned(),
                view: k.view(),
                title: k.title.to_owned(),
                definition: k.definition.to_owned(),
                sql: k.sql.to_owned(),
            })
            .collect(),
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct KpiQuery {
    #[serde(default)]
    format: Option<Format>,
}

pub(crate) async fn kpi(
    State(s): State<AppState>,
    Path(name): Path<String>,
    q: Result<Query<KpiQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let Query(q) = q.map_err(|e| Problem::bad_request(e.body_text()))?;
    let k = kpi_named(&name)?;
    let a = answer(&s, &format!("SELECT * FROM {}", k.view()), None).await?;
    respond(&a, wanted_format(q.format, &headers))
}

/// The KPI called `name`, or 404 listing the known ones.
pub(crate) fn kpi_named(name: &str) -> Result<&'static kpis::Kpi, Problem> {
    kpis::find(name).ok_or_else(|| {
        let known: Vec<&str> = kpis::KPIS.iter().map(|k| k.name).collect();
        Problem::not_found(format!("no KPI named {name} (known: {})", known.join(", ")))
    })
}

pub(crate) async fn export_status(State(s): State<AppState>) -> Json<ExportStatus> {
    let Some(export) = &s.export else {
        return Json(ExportStatus {
            configured: false,
            location: None,
            position: 0,
            last_export_at: None,
            last_error: None,
            failures: 0,
            tables: Vec::new(),
        });
    };
    let e = export.lock();
    let tables = goose_analytics::export::PARTITIONING
        .iter()
        .map(|p| {
            let t = e.manifest.tables.get(p.table);
            ExportedTable {
                name: p.table.to_owned(),
                partitioned_by: p.column.to_owned(),
                append: p.append,
                files: t.map_or(0, |t| t.files),
                rows: t.map_or(0, |t| t.rows),
            }
        })
        .collect();
    Json(ExportStatus {
        configured: true,
        location: Some(e.location.clone()),
        position: e.manifest.position,
        last_export_at: e.last_export_at.and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        }),
        last_error: e.last_error.clone(),
        failures: e.failures,
        tables,
    })
}

pub(crate) async fn hardware() -> Json<HardwareInfo> {
    Json(goose_analytics::accel::accel().hardware().into())
}
