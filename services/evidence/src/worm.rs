//! Where the evidence service keeps its files (`--blob-store`), and the store's metrics.

use goose_evidence::blob::{s3, BlobStore, PgBlobStore};
use goose_platform::checkpoints::CheckpointArchive;
use goose_platform::Platform;
use std::sync::Arc;
use std::time::Duration;

/// The WORM store's metrics (defined in the catalog, `goose_metrics`).
pub use goose_metrics::worm::{BYTES, OBJECTS, OLDEST_WRITE, RETENTION_HORIZON, STATS_FAILURES};

/// How long checkpoints kept in the WORM bucket are retained (seed 003: three years).
pub const CHECKPOINT_RETENTION_DAYS: i64 = 3 * 365 + 1;

/// Checkpoints kept in the WORM bucket, `checkpoints/<name>`, each retained in compliance
/// mode for [`CHECKPOINT_RETENTION_DAYS`].
#[derive(Debug)]
pub struct WormCheckpoints(pub s3::S3BlobStore);

#[async_trait::async_trait]
impl CheckpointArchive for WormCheckpoints {
    async fn keep(&self, name: &str, note: &[u8]) -> anyhow::Result<()> {
        let until =
            time::OffsetDateTime::now_utc() + time::Duration::days(CHECKPOINT_RETENTION_DAYS);
        self.0
            .put_named(&format!("checkpoints/{name}"), note, until)
            .await?;
        Ok(())
    }

    fn label(&self) -> &'static str {
        "s3"
    }
}

/// Where files (and, for a WORM bucket, checkpoints too) are kept.
#[derive(Debug)]
pub struct Stores {
    pub blobs: Arc<dyn BlobStore>,
    pub checkpoints: Option<Arc<dyn CheckpointArchive>>,
}

/// `postgres` (the service's database) or `s3://BUCKET[/PREFIX]` (a bucket with Object Lock;
/// endpoint, region and credentials from the standard `AWS_*` variables), where checkpoints
/// are kept as well.
pub async fn open(spec: &str, database_url: &str) -> anyhow::Result<Stores> {
    if spec == "postgres" {
        let pool =
            sqlx::PgPool::connect_with(goose_ledger::postgres::durable(database_url)?).await?;
        return Ok(Stores {
            blobs: Arc::new(PgBlobStore::connect(pool).await?),
            checkpoints: None,
        });
    }
    if spec.starts_with("s3://") {
        let store = s3::S3BlobStore::connect(s3::S3Config::from_url_and_env(spec)?).await?;
        return Ok(Stores {
            blobs: Arc::new(store.clone()),
            checkpoints: Some(Arc::new(WormCheckpoints(store))),
        });
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
                    OBJECTS.gauge(&[backend]).set(s.objects as f64);
                    BYTES.gauge(&[backend]).set(s.bytes as f64);
                    if let Some(t) = s.oldest_write {
                        OLDEST_WRITE
                            .gauge(&[backend])
                            .set(t.unix_timestamp() as f64);
                    }
                    if let Some(t) = s.earliest_retention {
                        RETENTION_HORIZON
                            .gauge(&[backend])
                            .set(t.unix_timestamp() as f64);
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    STATS_FAILURES.counter(&[backend]).increment(1);
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
