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
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(value_type = Option<u64>, minimum = 0)]
    pub max_rows: Option<usize>,
}

/// A JSON number that is a whole number, written as `5` or `5.0` (JSON Schema's integers).
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(u) = n.as_u64() {
        return Ok(Some(usize::try_from(u).unwrap_or(usize::MAX)));
    }
    match n.as_f64() {
        Some(f) if f >= 0.0 && f.fract() == 0.0 => Ok(Some(if f >= usize::MAX as f64 {
            usize::MAX
        } else {
            f as usize
        })),
        _ => Err(serde::de::Error::custom(format!(
            "max_rows must be a whole number of rows, not {n}"
        ))),
    }
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
    /// Rows `ledger_events` read from the ledger for this query (0 when it was not used).
    pub ledger_rows_read: u64,
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

/// How far the Parquet export got.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportStatus {
    /// False when the service runs without `--export-to`; nothing else is then set.
    pub configured: bool,
    /// The directory or `s3://bucket/prefix` written to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Every exported table holds the events below this ledger position.
    pub position: u64,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_export_at: Option<String>,
    /// Why the last round failed (the next one retries); absent after a success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub failures: u64,
    pub tables: Vec<ExportedTable>,
}

/// One table in the export.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportedTable {
    pub name: String,
    /// The timestamp column whose UTC day is the `date=` partition.
    pub partitioned_by: String,
    /// Rows only added (files per export) or changed in place (a file per day, rewritten).
    pub append: bool,
    pub files: u64,
    pub rows: u64,
}

/// The graphics adapters found and the one aggregates are offloaded to.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HardwareInfo {
    /// The service was built with the `gpu` feature.
    pub gpu_support: bool,
    /// `--gpu on|off`.
    pub enabled: bool,
    /// `--gpu-allow-software`: a software adapter (lavapipe) may stand in for a GPU.
    pub allow_software: bool,
    /// Aggregates over fewer inputs stay on the CPU.
    pub min_rows: usize,
    /// Aggregates on the GPU at once; more run on the CPU.
    pub concurrency: usize,
    pub adapters: Vec<AdapterInfo>,
    pub selected: Option<AdapterInfo>,
    /// Why this adapter, or why none.
    pub reason: String,
    /// Aggregates run on the selected adapter so far.
    pub offloaded: u64,
    /// Aggregates that failed on it and were computed on the CPU instead.
    pub fallbacks: u64,
}

/// A graphics adapter.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AdapterInfo {
    pub name: String,
    pub backend: String,
    /// `discrete_gpu`, `integrated_gpu`, `virtual_gpu`, `cpu` (software), `other`.
    pub device_type: String,
    pub driver: String,
    pub max_storage_buffer_binding_size: u64,
    pub max_compute_workgroups_per_dimension: u32,
    pub max_compute_invocations_per_workgroup: u32,
    pub software: bool,
}

impl From<goose_analytics::accel::Adapter> for AdapterInfo {
    fn from(a: goose_analytics::accel::Adapter) -> Self {
        Self {
            name: a.name,
            backend: a.backend,
            device_type: a.device_type,
            driver: a.driver,
            max_storage_buffer_binding_size: a.max_storage_buffer_binding_size,
            max_compute_workgroups_per_dimension: a.max_compute_workgroups_per_dimension,
            max_compute_invocations_per_workgroup: a.max_compute_invocations_per_workgroup,
            software: a.software,
        }
    }
}

impl From<goose_analytics::accel::Hardware> for HardwareInfo {
    fn from(h: goose_analytics::accel::Hardware) -> Self {
        Self {
            gpu_support: h.gpu_support,
            enabled: h.config.enabled,
            allow_software: h.config.allow_software,
            min_rows: h.config.min_rows,
            concurrency: h.config.concurrency,
            adapters: h.adapters.into_iter().map(Into::into).collect(),
            selected: h.selected.map(Into::into),
            reason: h.reason,
            offloaded: h.offloaded,
            fallbacks: h.fallbacks,
        }
    }
}
