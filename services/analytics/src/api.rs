//! The analytics service's wire types.

use serde::{Deserialize, Serialize};

/// A query.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// One read-only SQL statement (DataFusion's dialect, PostgreSQL-like).
    pub sql: String,
    /// `json` (default), `csv` or `arrow` (an Arrow IPC stream). The `Accept` header
    /// (`text/csv`, `application/vnd.apache.arrow.stream`) chooses too when this is absent.
    #[serde(default)]
    pub format: Option<AnswerFormat>,
    /// Rows returned at most (capped by the service's limit).
    #[serde(default)]
    pub max_rows: Option<usize>,
}

/// The format of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AnswerFormat {
    Json,
    Csv,
    /// An Arrow IPC stream.
    Arrow,
}

impl From<AnswerFormat> for goose_analytics::encode::Format {
    fn from(f: AnswerFormat) -> Self {
        match f {
            AnswerFormat::Json => Self::Json,
            AnswerFormat::Csv => Self::Csv,
            AnswerFormat::Arrow => Self::Arrow,
        }
    }
}

/// A column of an answer or a table.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Column {
    pub name: String,
    /// The Arrow type (`Int64`, `Utf8`, `Timestamp(µs, "UTC")`, ...).
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
}

/// A query's answer as JSON.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueryAnswer {
    pub columns: Vec<Column>,
    /// One object per row, keyed by column name (timestamps as RFC 3339 strings).
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<serde_json::Value>,
    pub row_count: usize,
    /// More rows existed than `max_rows`; they were not returned.
    pub truncated: bool,
    /// The tables held every ledger event below this position when the query ran.
    pub position: u64,
    pub elapsed_ms: f64,
}

/// A table one can query.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TableInfo {
    pub name: String,
    pub description: String,
    pub rows: usize,
    pub columns: Vec<Column>,
}

/// A KPI view.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KpiInfo {
    /// Short name (`goosectl kpi NAME`, `/v1/analytics/kpis/{name}`).
    pub name: String,
    /// The view's name in SQL (`SELECT * FROM kpi_...`).
    pub view: String,
    pub title: String,
    pub definition: String,
    pub sql: String,
}
