//! Where the evidence service keeps its files (`--blob-store`), and the store's metrics.

use goose_evidence::blob::{s3, BlobStore, PgBlobStore};
use goose_platform::Platform;
use std::sync::Arc;
use std::time::Duration;

/// Objects in the blob store.
pub const OBJECTS: &str = "goose_worm_objects";
/// Bytes in the blob store.
pub const BYTES: &str = "goose_worm_bytes";
/// Unix time of the oldest object's write.
pub const OLDEST_WRITE: &str = "goose_worm_oldest_object_timestamp_seconds";
/// Unix time before which no object may be deleted (the earliest retention date).
pub const RETENTION_HORIZON: &str = "goose_worm_retention_horizon_timestamp_seconds";
/// Failed attempts to count the store.
pub const STATS_FAILURES: &str = "goose_worm_stats_failures_total";

/// `postgres` (the service's database) or `s3://BUCKET[/PREFIX]` (a bucket with Object Lock;
/// endpoint, region and credentials from the standard `AWS_*` variables).
pub async fn open(spec: &str, database_url: &str) -> anyhow::Result<Arc<dyn BlobStore>> {
    if spec == "postgres" {
        let pool = sqlx::PgPool::connect(database_url).await?;
        return Ok(Arc::new(PgBlobStore::connect(pool).await?));
    }
    if spec.starts_with("s3://") {
        let config = s3::S3Config::from_url_and_env(spec)?;
        return Ok(Arc::new(s3::S3BlobStore::connect(config).await?));
    }
    anyhow::bail!("--blob-store {spec:?}: expected postgres or s3://BUCKET[/PREFIX]")
}

/// Publishes the store's counts every `every` (and at start), where the backend can count.
pub fn spawn_stats(platform: &Platform, blobs: Arc<dyn BlobStore>, every: Duration) {
    let stop = platform.stopped();
    platform.spawn(async move {
        tokio::pin!(stop);
        let backend = blobs.backend();
        loop {
            match blobs.stats().await {
                Ok(Some(s)) => {
                    metrics::gauge!(OBJECTS, "backend" => backend).set(s.objects as f64);
                    metrics::gauge!(BYTES, "backend" => backend).set(s.bytes as f64);
                    if let Some(t) = s.oldest_write {
                        metrics::gauge!(OLDEST_WRITE, "backend" => backend)
                            .set(t.unix_timestamp() as f64);
                    }
                    if let Some(t) = s.earliest_retention {
                        metrics::gauge!(RETENTION_HORIZON, "backend" => backend)
                            .set(t.unix_timestamp() as f64);
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    metrics::counter!(STATS_FAILURES, "backend" => backend).increment(1);
                    tracing::warn!(error = %e, "counting the blob store failed");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = &mut stop => return,
            }
        }
    });
}
