//! The analytics service's REST handlers.

use crate::api::{Column, KpiInfo, QueryAnswer, QueryRequest, TableInfo};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use goose_analytics::encode::{self, Format};
use goose_analytics::{kpis, query, Answer, QueryError};
use goose_platform::JsonBody;
use goose_runtime::problem::Problem;
use serde::Deserialize;

/// Queries answered, by outcome.
pub const QUERIES: &str = "goose_analytics_queries_total";
/// Seconds a query took (answered ones).
pub const QUERY_SECONDS: &str = "goose_analytics_query_duration_seconds";

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
    let p = match e {
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
        QueryError::Failed(_) => Problem::internal(e.to_string()),
    };
    let outcome = match e {
        QueryError::Refused(_) => "refused",
        QueryError::Invalid(_) => "invalid",
        QueryError::Execution(_) => "execution",
        QueryError::Memory { .. } => "memory",
        QueryError::Timeout(_) => "timeout",
        QueryError::Failed(_) => "failed",
    };
    metrics::counter!(QUERIES, "outcome" => outcome).increment(1);
    if matches!(e, QueryError::Failed(_)) {
        tracing::error!(error = %e, "analytics query failed");
    }
    p
}

/// Runs `sql` over the tables as they are after catching up with the ledger.
pub(crate) async fn answer(
    s: &AppState,
    sql: &str,
    max_rows: Option<usize>,
) -> Result<Answer, Problem> {
    s.view.catch_up(&s.platform).await?;
    let (tables, position) = {
        let v = s.view.read();
        let t = v
            .tables
            .snapshot()
            .map_err(|e| query_problem(&QueryError::Failed(e.to_string())))?;
        (t, v.tables.next_position)
    };
    let mut limits = s.limits.clone();
    if let Some(m) = max_rows {
        limits.max_rows = m.clamp(1, limits.max_rows);
    }
    let a = query::run(&tables, position, sql, &limits)
        .await
        .map_err(|e| query_problem(&e))?;
    metrics::counter!(QUERIES, "outcome" => "answered").increment(1);
    metrics::histogram!(QUERY_SECONDS).record(a.elapsed.as_secs_f64());
    Ok(a)
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
