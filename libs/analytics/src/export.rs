//! The tables as Hive-partitioned Parquet in a directory or object storage, written
//! incrementally, for data past one machine's memory and for the engines users already run
//! (DuckDB, Spark, Trino, Ballista, DataFusion itself):
//!
//! ```text
//! <root>/<table>/date=YYYY-MM-DD/part-<position>.parquet   append tables: the rows from <position> on
//! <root>/<table>/date=YYYY-MM-DD/part-current.parquet      keyed tables: that day's rows as they are now
//! <root>/_goose/export.json                                what has been exported (written last)
//! ```
//!
//! The partition column `date` (UTC) is the table's [`Partitioning::column`]'s day; it is in
//! the path, not in the files (Hive convention). Append tables (`events`, `gate_evaluations`,
//! ...) only grow: each export writes the rows at or after the position the manifest reached,
//! one new file per day they fall on. Keyed tables (`promotions`, `approvals`, ...) change in
//! place: a day's file is rewritten when that day's rows changed (a content digest per day in
//! the manifest says which did).
//!
//! Crash safety: objects are written whole (object stores put atomically) and the manifest
//! last. An export interrupted before its manifest is redone from the same position, so it
//! overwrites the same `part-<position>` names with a superset of the rows: no duplicates,
//! nothing lost. One exporter per location (two would race on the manifest).

use crate::tables::TableData;
use datafusion::arrow::array::{Array, Int64Array, TimestampMicrosecondArray, UInt32Array};
use datafusion::arrow::compute::{concat_batches, take_record_batch};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::async_writer::AsyncArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::properties::WriterProperties;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use sha3::{Digest, Sha3_256};
use std::collections::BTreeMap;
use std::sync::Arc;
use time::{Date, Duration as TimeDuration};

/// How a table is laid out in the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partitioning {
    pub table: &'static str,
    /// The timestamp column whose UTC day is the `date` partition.
    pub column: &'static str,
    /// Rows only ever added (written incrementally by position) rather than changed in place.
    pub append: bool,
}

/// Every exported table.
pub const PARTITIONING: &[Partitioning] = &[
    p("events", "recorded_at", true),
    p("promotions", "requested_at", false),
    p("promotion_targets", "requested_at", false),
    p("gate_evaluations", "evaluated_at", true),
    p("evidence", "submitted_at", true),
    p("approvals", "requested_at", false),
    p("compliance_transitions", "at", true),
    p("incidents", "opened_at", false),
    p("sla_windows", "minute", true),
    p("slo_objectives", "applied_at", false),
];

const fn p(table: &'static str, column: &'static str, append: bool) -> Partitioning {
    Partitioning {
        table,
        column,
        append,
    }
}

/// Where the manifest lives under the root.
pub const MANIFEST: &str = "_goose/export.json";

/// Why an export did not complete (what was written stays valid; the next export redoes the rest).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("object storage: {0}")]
    Store(#[from] object_store::Error),
    #[error("writing Parquet: {0}")]
    Parquet(#[from] ParquetError),
    #[error("arranging rows: {0}")]
    Arrow(#[from] ArrowError),
    #[error("the export manifest {MANIFEST} is unreadable: {0}")]
    Manifest(#[from] serde_json::Error),
    #[error("table {table}: {detail}")]
    Table { table: String, detail: String },
}

/// What has been exported, as the manifest records it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// Every event below this ledger position is in the export.
    pub position: u64,
    pub tables: BTreeMap<String, TableManifest>,
}

/// One table's part of the manifest.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TableManifest {
    /// Append tables: rows at or after this position are not exported yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_position: Option<i64>,
    /// Keyed tables: the SHA3-256 of each day's rows as last written.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub days: BTreeMap<String, String>,
    /// Files written so far and rows in them (keyed tables: rows as now).
    pub files: u64,
    pub rows: u64,
}

/// What one export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportReport {
    pub files: u64,
    pub rows: u64,
    pub position: u64,
}

/// Writes the tables under a root of an object store.
pub struct Exporter {
    store: Arc<dyn ObjectStore>,
    root: Path,
    manifest: Manifest,
    props: WriterProperties,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("root", &self.root)
            .field("manifest", &self.manifest)
            .finish_non_exhaustive()
    }
}

impl Exporter {
    /// An exporter continuing from the manifest under `root` (a fresh one if there is none).
    pub async fn open(store: Arc<dyn ObjectStore>, root: Path) -> Result<Self, ExportError> {
        let manifest = match store.get(&manifest_path(&root)).await {
            Ok(got) => serde_json::from_slice(&got.bytes().await?)?,
            Err(object_store::Error::NotFound { .. }) => Manifest::default(),
            Err(e) => return Err(e.into()),
        };
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build();
        Ok(Self {
            store,
            root,
            manifest,
            props,
        })
    }

    /// What has been exported.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Writes what changed in `tables` (a snapshot reaching `position`) since the last export.
    pub async fn export(
        &mut self,
        tables: &[TableData],
        position: u64,
    ) -> Result<ExportReport, ExportError> {
        let mut next = self.manifest.clone();
        let mut report = ExportReport {
            position,
            ..ExportReport::default()
        };
        for part in PARTITIONING {
            let t = tables
                .iter()
                .find(|t| t.def.name == part.table)
                .ok_or_else(|| table_error(part.table, "not in the snapshot"))?;
            let state = next.tables.entry(part.table.to_owned()).or_default();
            let (files, rows) = if part.append {
                self.export_append(part, t, state).await?
            } else {
                self.export_keyed(part, t, state).await?
            };
            report.files += files;
            report.rows += rows;
        }
        next.position = position;
        let body = serde_json::to_vec_pretty(&next)?;
        self.store
            .put(&manifest_path(&self.root), PutPayload::from(body))
            .await?;
        self.manifest = next;
        Ok(report)
    }

    async fn export_append(
        &self,
        part: &Partitioning,
        t: &TableData,
        state: &mut TableManifest,
    ) -> Result<(u64, u64), ExportError> {
        let from = state.next_position.unwrap_or(0);
        let mut fresh = Vec::new();
        let mut last = None;
        for b in t.batches.iter() {
            let positions = int64_column(b, "position", part.table)?;
            if positions.is_empty() || positions.value(positions.len() - 1) < from {
                continue;
            }
            let keep: Vec<u32> = (0..positions.len())
                .filter(|&i| positions.value(i) >= from)
                .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
                .collect();
            last = Some(positions.value(positions.len() - 1));
            fresh.push(take_record_batch(b, &UInt32Array::from(keep))?);
        }
        let Some(last) = last else {
            return Ok((0, 0));
        };
        let mut files = 0;
        let mut rows = 0;
        for (day, batch) in by_day(&t.def.schema(), &fresh, part)? {
            let path = self.file(part.table, day, &format!("part-{from:020}.parquet"));
            rows += batch.num_rows() as u64;
            self.write(&path, &batch).await?;
            files += 1;
        }
        state.next_position = Some(last + 1);
        state.files += files;
        state.rows += rows;
        Ok((files, rows))
    }

    async fn export_keyed(
        &self,
        part: &Partitioning,
        t: &TableData,
        state: &mut TableManifest,
    ) -> Result<(u64, u64), ExportError> {
        let mut files = 0;
        let mut written = 0;
        let mut total = 0;
        for (day, batch) in by_day(&t.def.schema(), &t.batches, part)? {
            total += batch.num_rows() as u64;
            let digest = content_digest(&batch)?;
            let key = day_name(day);
            if state.days.get(&key) == Some(&digest) {
                continue;
            }
            self.write(&self.file(part.table, day, "part-current.parquet"), &batch)
                .await?;
            state.days.insert(key, digest);
            files += 1;
            written += batch.num_rows() as u64;
        }
        state.files += files;
        state.rows = total;
        Ok((files, written))
    }

    fn file(&self, table: &str, day: Date, name: &str) -> Path {
        self.root
            .clone()
            .join(table)
            .join(format!("date={}", day_name(day)))
            .join(name)
    }

    async fn write(&self, path: &Path, batch: &RecordBatch) -> Result<(), ExportError> {
        let out = object_store::buffered::BufWriter::new(self.store.clone(), path.clone());
        let mut w = AsyncArrowWriter::try_new(out, batch.schema(), Some(self.props.clone()))?;
        w.write(batch).await?;
        w.close().await?;
        Ok(())
    }
}

fn manifest_path(root: &Path) -> Path {
    MANIFEST
        .split('/')
        .fold(root.clone(), |p, part| p.join(part))
}

fn table_error(table: &str, detail: &str) -> ExportError {
    ExportError::Table {
        table: table.to_owned(),
        detail: detail.to_owned(),
    }
}

fn int64_column<'a>(
    b: &'a RecordBatch,
    name: &str,
    table: &str,
) -> Result<&'a Int64Array, ExportError> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
        .ok_or_else(|| table_error(table, &format!("no Int64 column {name}")))
}

/// `YYYY-MM-DD`.
pub fn day_name(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The UTC day of a timestamp in microseconds.
fn day_of(micros: i64) -> Date {
    let days = micros.div_euclid(86_400_000_000);
    Date::from_calendar_date(1970, time::Month::January, 1)
        .ok()
        .and_then(|epoch| epoch.checked_add(TimeDuration::days(days)))
        .unwrap_or(Date::MIN)
}

/// The rows of `batches` grouped by the UTC day of `part.column`, one batch per day.
fn by_day(
    schema: &datafusion::arrow::datatypes::SchemaRef,
    batches: &[RecordBatch],
    part: &Partitioning,
) -> Result<BTreeMap<Date, RecordBatch>, ExportError> {
    let mut days: BTreeMap<Date, Vec<RecordBatch>> = BTreeMap::new();
    for b in batches {
        let times = b
            .column_by_name(part.column)
            .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
            .ok_or_else(|| {
                table_error(part.table, &format!("no timestamp column {}", part.column))
            })?;
        let mut rows: BTreeMap<Date, Vec<u32>> = BTreeMap::new();
        for i in 0..times.len() {
            // The partition columns are declared not null; a null would be a bug upstream.
            let day = if times.is_null(i) {
                Date::MIN
            } else {
                day_of(times.value(i))
            };
            rows.entry(day)
                .or_default()
                .push(u32::try_from(i).unwrap_or(u32::MAX));
        }
        for (day, idx) in rows {
            days.entry(day)
                .or_default()
                .push(take_record_batch(b, &UInt32Array::from(idx))?);
        }
    }
    days.into_iter()
        .map(|(d, bs)| Ok((d, concat_batches(schema, &bs)?)))
        .collect()
}

/// SHA3-256 of a batch's Arrow IPC encoding: equal rows in equal order, equal digest.
fn content_digest(batch: &RecordBatch) -> Result<String, ExportError> {
    let mut buf = Vec::new();
    {
        let mut w = StreamWriter::try_new(&mut buf, &batch.schema())?;
        w.write(batch)?;
        w.finish()?;
    }
    Ok(hex::encode(Sha3_256::digest(&buf)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::Archive;
    use crate::rows::EventRow;
    use crate::Tables;

    const DAY: i64 = 86_400_000_000;

    fn push(t: &mut Tables, from: i64, to: i64) {
        for p in from..to {
            t.events.push(EventRow {
                position: p,
                // Two events a day: the rows spread over days.
                recorded_at: 20_000 * DAY + p * DAY / 2,
                stream: "s".into(),
                aggregate_type: "a".into(),
                aggregate_id: "i".into(),
                stream_version: p + 1,
                event_id: format!("e{p}"),
                event_type: "T".into(),
                service: "svc".into(),
                actor: "x".into(),
                digest: String::new(),
                payload: "{}".into(),
            });
        }
        t.next_position = to as u64;
    }

    async fn count(dir: &std::path::Path) -> serde_json::Value {
        let mut archive = Archive::new(&dir.display().to_string(), None).unwrap();
        archive.replace_tables = true;
        let engine = crate::Engine::new(crate::Limits::default()).with_archive(archive);
        let tables = Tables::default().snapshot().unwrap();
        let a = engine
            .run(
                &tables,
                0,
                "SELECT count(*) AS n, count(DISTINCT position) AS distinct_positions, \
                 min(position) AS lo, max(position) AS hi, \
                 count(*) FILTER (WHERE date <> to_char(recorded_at, '%Y-%m-%d')) AS misfiled FROM events",
                None,
            )
            .await
            .unwrap();
        crate::encode::json_rows(&a).unwrap()[0].clone()
    }

    /// An export that wrote its files but died before its manifest is redone from the same
    /// position over the same names: nothing doubled, nothing lost.
    #[tokio::test]
    async fn an_export_interrupted_before_its_manifest_is_redone_without_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> =
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let mut t = Tables::default();
        push(&mut t, 0, 10);
        let mut e = Exporter::open(store.clone(), Path::from("")).await.unwrap();
        e.export(&t.snapshot().unwrap(), 10).await.unwrap();
        let manifest = std::fs::read(dir.path().join(MANIFEST)).unwrap();
        // The second export writes its files; then its manifest is lost (a crash before it).
        push(&mut t, 10, 20);
        e.export(&t.snapshot().unwrap(), 20).await.unwrap();
        std::fs::write(dir.path().join(MANIFEST), &manifest).unwrap();
        // A restarted exporter continues from the manifest on disk, with more events by then.
        push(&mut t, 20, 30);
        let mut e = Exporter::open(store, Path::from("")).await.unwrap();
        assert_eq!(e.manifest().position, 10);
        let r = e.export(&t.snapshot().unwrap(), 30).await.unwrap();
        assert_eq!(r.position, 30);
        assert_eq!(
            count(dir.path()).await,
            serde_json::json!({"n": 30, "distinct_positions": 30, "lo": 0, "hi": 29, "misfiled": 0})
        );
        // Nothing new: no files written.
        let r = e.export(&t.snapshot().unwrap(), 30).await.unwrap();
        assert_eq!((r.files, r.rows), (0, 0));
    }
}
