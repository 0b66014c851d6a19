//! Read-only SQL over a snapshot of the tables: a DataFusion session per query with the
//! tables and the KPI views registered (what does not change while the snapshot does not is
//! shared: [`crate::session`]), a memory limit, a timeout and a row cap. Statements
//! that would change anything (DDL, DML including `COPY TO`, `SET`) are refused before they
//! run.

use crate::session::{Prepared, SnapshotKey};
use crate::tables::TableData;
pub use datafusion::arrow::datatypes::SchemaRef;
pub use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::prelude::{SQLOptions, SessionContext};
use futures::StreamExt as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

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
    /// Queries an [`Engine`] runs at once; more wait for a slot (within their timeout).
    pub concurrent: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            timeout: Duration::from_secs(30),
            max_rows: 10_000,
            partitions: 2,
            concurrent: 4,
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
    /// Every query slot stayed taken for the whole time limit.
    #[error("the analytics engine is busy: no query slot came free within {0:?}")]
    Busy(Duration),
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
    /// Rows `ledger_events` read from the ledger for this query.
    pub ledger_rows_read: u64,
    pub elapsed: Duration,
}

/// What a session reads besides the in-memory tables: the ledger (`ledger_events`, up to the
/// snapshot's position, counting the rows its scans read) and the Parquet export (`archive`).
#[derive(Debug, Clone)]
pub struct LedgerSource {
    pub reader: Option<goose_ledger::LedgerReader>,
    /// The Parquet export, registered as schema `archive`.
    pub archive: Option<crate::archive::Archive>,
    pub rows_read: Arc<std::sync::atomic::AtomicU64>,
    /// The engine's setup shared by queries over the same snapshot.
    pub(crate) prepared: Option<Cache>,
}

/// A session over `tables` (a snapshot reaching `position`) with our functions and the KPI
/// views (with `only_for`, just the views that statement needs), limited by `limits`; with
/// `ledger`, `ledger_events` too. Built from nothing: [`Engine`] keeps the shared part between
/// queries over the same snapshot.
pub async fn session(
    tables: &[TableData],
    position: u64,
    limits: &Limits,
    ledger: Option<&LedgerSource>,
    only_for: Option<&str>,
) -> Result<SessionContext, QueryError> {
    Prepared::new(tables, limits, ledger)
        .await?
        .session(tables, position, limits, ledger, only_for)
        .await
}

/// The engine's [`Prepared`] for the newest snapshot queried.
pub(crate) type Cache = Arc<parking_lot::Mutex<Option<Arc<Prepared>>>>;

/// The prepared part for `tables`: the cached one when it is theirs, else a new one (cached).
async fn prepared(
    cache: Option<&Cache>,
    tables: &[TableData],
    limits: &Limits,
    ledger: Option<&LedgerSource>,
) -> Result<Arc<Prepared>, QueryError> {
    let key = SnapshotKey::of(tables);
    if let Some(p) = cache
        .and_then(|c| c.lock().clone())
        .filter(|p| p.key == key)
    {
        return Ok(p);
    }
    let p = Arc::new(Prepared::new(tables, limits, ledger).await?);
    if let Some(c) = cache {
        *c.lock() = Some(p.clone());
    }
    Ok(p)
}

/// Runs one read-only query over `tables` (a snapshot reaching `position`), on its own
/// threads: see [`Engine`] for what that guarantees. Not limited in how many run at once.
pub async fn run(
    tables: &[TableData],
    position: u64,
    sql: &str,
    limits: &Limits,
) -> Result<Answer, QueryError> {
    isolated(
        tables.to_vec(),
        position,
        sql,
        limits.clone(),
        None,
        Mode::Run,
        None,
    )
    .await
}

/// Whether to run the statement or only plan it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Run,
    Plan,
}

/// Runs queries with a limit on how many run at once, each isolated from the caller:
///
/// - A query runs on its own threads (a runtime of `partitions` workers), never on the
///   caller's: a query that computes for a long time without yielding (a large join's batch)
///   cannot hold up the service's requests, and the caller gets its
///   [`QueryError::Timeout`] on time whatever the query is doing.
/// - When the caller stops waiting (timeout, or the client went away and its request was
///   dropped), the query is cancelled: its operators stop at their next batch.
/// - A query holds one of `limits.concurrent` slots until its threads have really stopped, so queries
///   that run past their timeout still count; a caller that finds no free slot within its
///   timeout gets [`QueryError::Busy`].
#[derive(Debug, Clone)]
pub struct Engine {
    limits: Limits,
    slots: Arc<Semaphore>,
    ledger: Option<goose_ledger::LedgerReader>,
    archive: Option<crate::archive::Archive>,
    /// What the newest snapshot's queries share.
    prepared: Cache,
}

impl Engine {
    /// An engine running at most `limits.concurrent` queries at once (at least one), each
    /// within `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(limits.concurrent.max(1))),
            limits,
            ledger: None,
            archive: None,
            prepared: Cache::default(),
        }
    }

    /// Queries may also read the Parquet export as schema `archive`.
    pub fn with_archive(mut self, archive: crate::archive::Archive) -> Self {
        self.archive = Some(archive);
        self.prepared = Cache::default();
        self
    }

    /// Queries may also read `ledger_events` from this ledger.
    pub fn with_ledger(mut self, reader: goose_ledger::LedgerReader) -> Self {
        self.ledger = Some(reader);
        self.prepared = Cache::default();
        self
    }

    fn source(&self) -> Option<LedgerSource> {
        Some(LedgerSource {
            reader: self.ledger.clone(),
            archive: self.archive.clone(),
            rows_read: Arc::default(),
            prepared: Some(self.prepared.clone()),
        })
    }

    /// The schema `sql`'s answer would have, after the same checks as [`Engine::run`]
    /// (read-only, plans over these tables), without running it.
    pub async fn plan(&self, tables: &[TableData], sql: &str) -> Result<SchemaRef, QueryError> {
        let permit = self.slot().await?;
        let a = isolated(
            tables.to_vec(),
            0,
            sql,
            self.limits.clone(),
            Some(permit),
            Mode::Plan,
            self.source(),
        )
        .await?;
        Ok(a.schema)
    }

    async fn slot(&self) -> Result<OwnedSemaphorePermit, QueryError> {
        tokio::time::timeout(self.limits.timeout, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| QueryError::Busy(self.limits.timeout))?
            .map_err(|_| QueryError::Failed("the query engine is shutting down".into()))
    }

    /// Runs `sql` over `tables` (reaching `position`); `max_rows` lowers the row cap.
    pub async fn run(
        &self,
        tables: &[TableData],
        position: u64,
        sql: &str,
        max_rows: Option<usize>,
    ) -> Result<Answer, QueryError> {
        let mut limits = self.limits.clone();
        if let Some(m) = max_rows {
            limits.max_rows = m.clamp(1, limits.max_rows);
        }
        let permit = self.slot().await?;
        isolated(
            tables.to_vec(),
            position,
            sql,
            limits,
            Some(permit),
            Mode::Run,
            self.source(),
        )
        .await
    }
}

async fn isolated(
    tables: Vec<TableData>,
    position: u64,
    sql: &str,
    limits: Limits,
    slot: Option<OwnedSemaphorePermit>,
    mode: Mode,
    ledger: Option<LedgerSource>,
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
    let timeout = limits.timeout;
    let (answer_tx, answer_rx) = oneshot::channel();
    // Dropping `stop` (this future ends or is dropped) cancels the query.
    let (stop, stopped) = oneshot::channel::<()>();
    let sql = sql.to_owned();
    let rows_read = ledger.as_ref().map(|l| l.rows_read.clone());
    std::thread::Builder::new()
        .name("goose-query".into())
        .spawn(move || {
            // Freed when the query's threads are done, not when the caller stops waiting.
            let _slot = slot;
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(limits.partitions.max(1))
                .thread_name("goose-query-worker")
                .enable_time()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    // Nobody may be waiting any more; then there is no one to tell.
                    let _ = answer_tx.send(Err(QueryError::Failed(format!(
                        "cannot start the query's threads: {e}"
                    ))));
                    return;
                }
            };
            let outcome = rt.block_on(async {
                tokio::select! {
                    r = execute(&tables, position, &sql, &limits, mode, ledger.as_ref()) => Some(r),
                    _ = stopped => None,
                }
            });
            if let Some(r) = outcome {
                // An error here means the caller stopped waiting (and said so itself).
                let _ = answer_tx.send(r);
            }
            // Workers still inside a long computation finish it on their own; nobody waits.
            rt.shutdown_background();
        })
        .map_err(|e| QueryError::Failed(format!("cannot start a query thread: {e}")))?;
    let result = tokio::time::timeout(timeout, answer_rx).await;
    drop(stop);
    let (schema, batches, rows, truncated) = match result {
        Err(_) => return Err(QueryError::Timeout(timeout)),
        Ok(Err(_)) => {
            return Err(QueryError::Failed(
                "the query's thread ended without an answer".into(),
            ))
        }
        Ok(Ok(r)) => r?,
    };
    Ok(Answer {
        schema,
        batches,
        rows,
        truncated,
        position,
        ledger_rows_read: rows_read.map_or(0, |r| r.load(std::sync::atomic::Ordering::Relaxed)),
        elapsed: started.elapsed(),
    })
}

type Rows = (SchemaRef, Vec<RecordBatch>, usize, bool);

/// Plans, checks and runs `sql`, collecting at most `max_rows` rows.
async fn execute(
    tables: &[TableData],
    position: u64,
    sql: &str,
    limits: &Limits,
    mode: Mode,
    ledger: Option<&LedgerSource>,
) -> Result<Rows, QueryError> {
    let cache = ledger.and_then(|l| l.prepared.as_ref());
    let ctx = prepared(cache, tables, limits, ledger)
        .await?
        .session(tables, position, limits, ledger, Some(sql))
        .await?;
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
    if mode == Mode::Plan {
        return Ok((schema, Vec::new(), 0, false));
    }
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
    Ok((schema, batches, rows, truncated))
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
