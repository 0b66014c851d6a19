//! Read-only SQL over a snapshot of the tables: a fresh DataFusion session per query with the
//! tables and the KPI views registered, a memory limit, a timeout and a row cap. Statements
//! that would change anything (DDL, DML including `COPY TO`, `SET`) are refused before they
//! run.

use crate::kpis::KPIS;
use crate::tables::TableData;
pub use datafusion::arrow::datatypes::SchemaRef;
pub use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use futures::StreamExt as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one query may use.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Memory for the query's operators (sorts, joins, aggregates); past it the query fails.
    pub memory_bytes: usize,
    /// Planning and execution together.
    pub timeout: Duration,
    /// Rows returned at most; more are cut off and the answer says so.
    pub max_rows: usize,
    /// Threads a query's plan may use.
    pub partitions: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            timeout: Duration::from_secs(30),
            max_rows: 10_000,
            partitions: 2,
        }
    }
}

/// Longest SQL text accepted.
pub const MAX_SQL_BYTES: usize = 64 * 1024;

/// Why a query gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The statement would change something: only queries are allowed.
    #[error("only read-only queries are allowed: {0}")]
    Refused(String),
    /// The SQL does not parse or plan (unknown table or column, type error, ...).
    #[error("{0}")]
    Invalid(String),
    #[error("the query ran past its time limit of {0:?}")]
    Timeout(Duration),
    #[error("the query needs more memory than its limit of {limit} bytes: {detail}")]
    Memory { limit: usize, detail: String },
    /// The query ran and failed on the data (division by zero, a cast that does not fit).
    #[error("the query failed: {0}")]
    Execution(String),
    /// Something went wrong that is not the query's fault.
    #[error("the query failed: {0}")]
    Failed(String),
}

/// A query's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub rows: usize,
    /// More rows than `max_rows` existed; the rest were not returned.
    pub truncated: bool,
    /// The tables held every event below this ledger position.
    pub position: u64,
    pub elapsed: Duration,
}

/// A session over `tables` with the KPI views, limited by `limits`.
pub async fn session(tables: &[TableData], limits: &Limits) -> Result<SessionContext, QueryError> {
    // No spilling to disk: the memory limit is the limit (a user's query must not fill the
    // service's disk).
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(limits.memory_bytes, 1.0)
        .with_disk_manager_builder(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
        )
        .build_arc()
        .map_err(|e| QueryError::Failed(e.to_string()))?;
    let config = SessionConfig::new()
        .with_target_partitions(limits.partitions.max(1))
        .with_information_schema(true);
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    for t in tables {
        let mem = MemTable::try_new(t.def.schema(), vec![t.batches.clone()])
            .map_err(|e| QueryError::Failed(format!("table {}: {e}", t.def.name)))?;
        ctx.register_table(t.def.name, Arc::new(mem))
            .map_err(|e| QueryError::Failed(format!("table {}: {e}", t.def.name)))?;
    }
    for k in KPIS {
        let view = ctx
            .sql(k.sql)
            .await
            .map_err(|e| QueryError::Failed(format!("KPI view {}: {e}", k.view())))?
            .into_view();
        ctx.register_table(k.view(), view)
            .map_err(|e| QueryError::Failed(format!("KPI view {}: {e}", k.view())))?;
    }
    Ok(ctx)
}

/// Runs one read-only query over `tables` (a snapshot reaching `position`).
pub async fn run(
    tables: &[TableData],
    position: u64,
    sql: &str,
    limits: &Limits,
) -> Result<Answer, QueryError> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(QueryError::Invalid(format!(
            "the SQL is {} bytes; at most {MAX_SQL_BYTES} are accepted",
            sql.len()
        )));
    }
    if sql.trim().is_empty() {
        return Err(QueryError::Invalid("the SQL is empty".into()));
    }
    let started = Instant::now();
    let work = async {
        let ctx = session(tables, limits).await?;
        let plan = ctx
            .state()
            .create_logical_plan(sql)
            .await
            .map_err(|e| classify(e, limits))?;
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)
            .map_err(|e| QueryError::Refused(strip(&e)))?;
        let df = ctx
            .execute_logical_plan(plan)
            .await
            .map_err(|e| classify(e, limits))?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let mut stream = df.execute_stream().await.map_err(|e| classify(e, limits))?;
        let (mut batches, mut rows, mut truncated) = (Vec::new(), 0usize, false);
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| classify(e, limits))?;
            let room = limits.max_rows - rows;
            if batch.num_rows() > room {
                batches.push(batch.slice(0, room));
                rows += room;
                truncated = true;
                break;
            }
            rows += batch.num_rows();
            batches.push(batch);
        }
        Ok::<_, QueryError>((schema, batches, rows, truncated))
    };
    let (schema, batches, rows, truncated) = tokio::time::timeout(limits.timeout, work)
        .await
        .map_err(|_| QueryError::Timeout(limits.timeout))??;
    Ok(Answer {
        schema,
        batches,
        rows,
        truncated,
        position,
        elapsed: started.elapsed(),
    })
}

fn strip(e: &DataFusionError) -> String {
    e.strip_backtrace()
}

fn classify(e: DataFusionError, limits: &Limits) -> QueryError {
    match e.find_root() {
        DataFusionError::ResourcesExhausted(detail) => QueryError::Memory {
            limit: limits.memory_bytes,
            detail: detail.clone(),
        },
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_) => QueryError::Invalid(strip(&e)),
        DataFusionError::ArrowError(..) | DataFusionError::Execution(_) => {
            QueryError::Execution(strip(&e))
        }
        _ => QueryError::Failed(strip(&e)),
    }
}
