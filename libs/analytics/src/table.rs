//! Two shapes of in-memory Arrow table that follow the ledger:
//!
//! - [`AppendTable`]: one row per fact (events, gate checks, evidence, transitions). Rows are
//!   frozen into record batches of [`CHUNK`] rows as they arrive, so a query clones `Arc`s of
//!   the frozen batches and converts only the last, partial chunk.
//! - [`KeyedTable`]: one row per thing that changes (a promotion, an approval, an incident).
//!   Few rows; the batch is rebuilt on the first query after a change and cached until the
//!   next one.
//!
//! Rows are serde structs converted by `serde_arrow` against a declared schema (the schema is
//! the contract documented in docs/analytics.md, not whatever the rows happen to hold).

use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// Rows per frozen batch of an append table.
pub const CHUNK: usize = 8192;

/// Why rows did not become a record batch (a row type that does not match its schema: a bug).
#[derive(Debug, thiserror::Error)]
#[error("table {table}: rows do not match the schema: {source}")]
pub struct ConvertError {
    pub table: &'static str,
    #[source]
    pub source: serde_arrow::Error,
}

/// A column: name, type, nullable.
pub(crate) fn col(name: &str, ty: DataType, nullable: bool) -> FieldRef {
    Arc::new(Field::new(name, ty, nullable))
}

/// Timestamps: microseconds since the Unix epoch, UTC.
pub(crate) fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Strings with few distinct values (an event's type, the service that sealed it): each
/// batch holds its distinct values once and a 32-bit key per row. Queries see strings
/// (comparisons, functions, JSON and CSV answers); grouping by one of them is a lookup, not
/// a hash per row (`dict_group`); Parquet stores them dictionary-encoded either way.
pub(crate) fn few() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// A table's name, documentation and columns.
#[derive(Debug, Clone)]
pub struct TableDef {
    pub name: &'static str,
    pub description: &'static str,
    pub fields: Vec<FieldRef>,
}

impl TableDef {
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(self.fields.clone()))
    }

    pub(crate) fn batch<R: Serialize>(&self, rows: &[R]) -> Result<RecordBatch, ConvertError> {
        serde_arrow::to_record_batch(&self.fields, &rows).map_err(|source| ConvertError {
            table: self.name,
            source,
        })
    }
}

/// Rows that are only ever added.
#[derive(Debug)]
pub struct AppendTable<R> {
    def: TableDef,
    frozen: Vec<RecordBatch>,
    pending: Vec<R>,
    /// The pending rows' batch as the last snapshot built it (the same batch for every query
    /// until a row is added: queries over an unchanged table share their sessions' setup).
    cached: parking_cache::Cache,
    rows: usize,
}

impl<R: Serialize> AppendTable<R> {
    pub fn new(def: TableDef) -> Self {
        Self {
            def,
            frozen: Vec::new(),
            pending: Vec::new(),
            cached: Default::default(),
            rows: 0,
        }
    }

    pub fn push(&mut self, row: R) {
        self.pending.push(row);
        self.cached.clear();
        self.rows += 1;
        if self.pending.len() >= CHUNK {
            match self.def.batch(&self.pending) {
                Ok(b) => {
                    self.frozen.push(b);
                    self.pending.clear();
                }
                // Kept pending: the query that reads it reports the same error.
                Err(e) => tracing::error!(error = %e, "analytics table not frozen"),
            }
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn def(&self) -> &TableDef {
        &self.def
    }

    /// Every row as record batches.
    pub fn batches(&self) -> Result<Vec<RecordBatch>, ConvertError> {
        let mut out = self.frozen.clone();
        if !self.pending.is_empty() {
            out.extend(
                self.cached
                    .get_or(|| Ok(vec![self.def.batch(&self.pending)?]))?,
            );
        }
        Ok(out)
    }
}

/// Rows that change, one per key, in the order their keys first appeared.
#[derive(Debug)]
pub struct KeyedTable<R> {
    def: TableDef,
    rows: Vec<R>,
    index: HashMap<String, usize>,
    cached: parking_cache::Cache,
}

mod parking_cache {
    use datafusion::arrow::record_batch::RecordBatch;
    use std::sync::Mutex;

    /// The batches built by the last query, dropped by the next change. A query holds the
    /// view's read lock, so the cache has its own (uncontended) lock.
    #[derive(Debug, Default)]
    pub struct Cache(Mutex<Option<Vec<RecordBatch>>>);

    impl Cache {
        pub fn clear(&mut self) {
            *self.0.get_mut().unwrap_or_else(|p| p.into_inner()) = None;
        }

        pub fn get_or(
            &self,
            build: impl FnOnce() -> Result<Vec<RecordBatch>, super::ConvertError>,
        ) -> Result<Vec<RecordBatch>, super::ConvertError> {
            let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(b) = slot.as_ref() {
                return Ok(b.clone());
            }
            let b = build()?;
            *slot = Some(b.clone());
            Ok(b)
        }
    }
}

impl<R: Serialize> KeyedTable<R> {
    pub fn new(def: TableDef) -> Self {
        Self {
            def,
            rows: Vec::new(),
            index: HashMap::new(),
            cached: Default::default(),
        }
    }

    /// Adds a row under `key` (a key seen before: nothing changes, and false).
    pub fn insert(&mut self, key: String, row: R) -> bool {
        if self.index.contains_key(&key) {
            return false;
        }
        self.index.insert(key, self.rows.len());
        self.rows.push(row);
        self.cached.clear();
        true
    }

    /// Changes the row of `key`, if there is one.
    pub fn update(&mut self, key: &str, f: impl FnOnce(&mut R)) -> bool {
        match self.index.get(key) {
            Some(&i) => {
                f(&mut self.rows[i]);
                self.cached.clear();
                true
            }
            None => false,
        }
    }

    pub fn get(&self, key: &str) -> Option<&R> {
        self.index.get(key).map(|&i| &self.rows[i])
    }

    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    pub fn def(&self) -> &TableDef {
        &self.def
    }

    /// Every row, in batches of [`CHUNK`] rows (slices of one, no copy) so that a query's
    /// threads share the work; the same batches until the next change.
    pub fn batches(&self) -> Result<Vec<RecordBatch>, ConvertError> {
        if self.rows.is_empty() {
            return Ok(Vec::new());
        }
        self.cached.get_or(|| {
            let all = self.def.batch(&self.rows)?;
            Ok((0..all.num_rows())
                .step_by(CHUNK)
                .map(|at| all.slice(at, CHUNK.min(all.num_rows() - at)))
                .collect())
        })
    }
}
