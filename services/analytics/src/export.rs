//! The Parquet export task: every `every`, the tables' changes since the last export go to a
//! directory or an S3-compatible bucket as Hive-partitioned Parquet
//! ([`goose_analytics::export`] has the layout and its guarantees). `GET
//! /v1/analytics/export` says how far it got; failures are logged, counted and shown there,
//! and the next round retries what did not finish.

use crate::handlers::snapshot;
use crate::AppState;
use goose_analytics::export::{Exporter, Manifest};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::ObjectStore;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// The export metrics (defined in the catalog, `goose_metrics`).
pub use goose_metrics::analytics::{EXPORTS, EXPORT_FAILURES, EXPORT_POSITION};

/// Where and how often to export.
#[derive(Debug, Clone)]
pub struct ExportConfig {
    /// A directory (`/var/lib/goose/analytics`, `file:///...`) or `s3://bucket/prefix`
    /// (credentials, region and endpoint from the usual `AWS_*` variables).
    pub location: String,
    pub every: Duration,
}

/// What the export has done, for `GET /v1/analytics/export`.
#[derive(Debug, Default)]
pub(crate) struct ExportState {
    pub location: String,
    pub manifest: Manifest,
    pub last_export_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    pub failures: u64,
}

pub(crate) type SharedExport = Arc<Mutex<ExportState>>;

/// The object store and root a location names.
pub fn open_location(location: &str) -> anyhow::Result<(Arc<dyn ObjectStore>, Path)> {
    use anyhow::Context as _;
    if location.starts_with("s3://") {
        let store = object_store::aws::AmazonS3Builder::from_env()
            .with_url(location)
            .build()
            .with_context(|| format!("the export location {location}"))?;
        let url = url_path(location);
        return Ok((Arc::new(store), Path::from(url)));
    }
    let dir = location.strip_prefix("file://").unwrap_or(location);
    if dir.contains("://") {
        anyhow::bail!(
            "the export location {location} is neither a directory nor s3://bucket/prefix"
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating the export directory {dir}"))?;
    let store = LocalFileSystem::new_with_prefix(dir)
        .with_context(|| format!("the export directory {dir}"))?;
    Ok((Arc::new(store), Path::from("")))
}

/// The prefix inside the bucket of `s3://bucket/prefix`.
fn url_path(location: &str) -> String {
    location
        .trim_start_matches("s3://")
        .split_once('/')
        .map(|(_, p)| p.trim_matches('/').to_owned())
        .unwrap_or_default()
}

/// Starts the export task; its state is shared with the API.
pub(crate) async fn start(state: AppState, config: ExportConfig) -> anyhow::Result<SharedExport> {
    let (store, root) = open_location(&config.location)?;
    let exporter = Exporter::open(store, root).await?;
    let shared: SharedExport = Arc::new(Mutex::new(ExportState {
        location: config.location.clone(),
        manifest: exporter.manifest().clone(),
        ..ExportState::default()
    }));
    let task = shared.clone();
    tokio::spawn(run(state, exporter, config.every, task));
    Ok(shared)
}

async fn run(state: AppState, mut exporter: Exporter, every: Duration, shared: SharedExport) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let outcome = match snapshot(&state).await {
            Ok((_, position)) if position == exporter.manifest().position => continue,
            Ok((tables, position)) => exporter
                .export(&tables, position)
                .await
                .map_err(|e| e.to_string()),
            Err(p) => Err(p.detail),
        };
        let mut s = shared.lock();
        match outcome {
            Ok(report) => {
                EXPORTS.counter(&[]).increment(1);
                EXPORT_POSITION.gauge(&[]).set(report.position as f64);
                tracing::debug!(
                    files = report.files,
                    rows = report.rows,
                    position = report.position,
                    "analytics export"
                );
                s.manifest = exporter.manifest().clone();
                s.last_export_at = Some(OffsetDateTime::now_utc());
                s.last_error = None;
            }
            Err(e) => {
                EXPORT_FAILURES.counter(&[]).increment(1);
                tracing::warn!(error = %e, location = %s.location, "analytics export failed; retrying at the next round");
                s.failures += 1;
                s.last_error = Some(e);
            }
        }
    }
}
