//! The command line of the service binary: its flags and how they become a running service.

use anyhow::Context as _;
use clap::Parser;
use goose_evidence::dsse::TrustedKeys;
use goose_ledger::NoteKey;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "goose-evidence",
    version,
    about = "Golden Goose evidence service"
)]
pub struct Cli {
    #[command(flatten)]
    service: goose_platform::ServiceArgs,
    /// The log (checkpoint) signing key; created, mode 0600, if missing.
    #[arg(long, env = "GOOSE_LOG_KEY_FILE")]
    log_key_file: PathBuf,
    /// Seconds between periodic checkpoints (signed only when the log grew).
    #[arg(long, env = "GOOSE_CHECKPOINT_INTERVAL", default_value_t = 60)]
    checkpoint_interval: u64,
    /// Also write every checkpoint to this directory (write-once files), e.g. a volume another
    /// team or machine keeps.
    #[arg(long, env = "GOOSE_CHECKPOINT_DIR")]
    checkpoint_dir: Option<PathBuf>,
    /// A witness to offer every checkpoint to: `<cosigner vkey>@<URL>` (c2sp.org/tlog-witness).
    /// Repeatable.
    #[arg(long = "witness", env = "GOOSE_WITNESSES", value_delimiter = ',')]
    witnesses: Vec<String>,
    /// How many witnesses must cosign for a checkpoint to count as witnessed.
    #[arg(long, env = "GOOSE_WITNESS_THRESHOLD", default_value_t = 0)]
    witness_threshold: usize,
    /// Trusted in-toto attestation signers: C2SP vkeys (the envelope key id is the key's
    /// name), or @FILE with one per line.
    #[arg(
        long = "attestation-vkey",
        env = "GOOSE_ATTESTATION_VKEYS",
        value_delimiter = ','
    )]
    attestation_vkeys: Vec<String>,
    /// Where evidence files are kept: `postgres` (this service's database, write-once by
    /// trigger) or `s3://BUCKET[/PREFIX]`, a bucket with S3 Object Lock: retention set on
    /// each write in compliance mode (endpoint, region and credentials from `AWS_ENDPOINT_URL`,
    /// `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`).
    #[arg(long, env = "GOOSE_BLOB_STORE", default_value = "postgres")]
    blob_store: String,
    /// Seconds between counts of the blob store for its metrics (S3).
    #[arg(long, env = "GOOSE_BLOB_STATS_INTERVAL", default_value_t = 60)]
    blob_stats_interval: u64,
}

/// Runs the service until SIGINT/SIGTERM.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // The log key's name is the log's origin, which every service seals its commits for.
    let log_key = Arc::new(NoteKey::load_or_generate(
        &cli.log_key_file,
        &cli.service.log_origin,
    )?);
    anyhow::ensure!(
        log_key.name() == cli.service.log_origin,
        "the log key {} is named {:?} but --log-origin is {:?}: they must be the same",
        cli.log_key_file.display(),
        log_key.name(),
        cli.service.log_origin
    );
    let mut attestation_keys = TrustedKeys::new();
    for k in goose_platform::parse_vkeys(&cli.attestation_vkeys)? {
        attestation_keys.add(k.name.clone(), k.key);
    }
    let database_url = cli.service.database_url.clone();
    let interval = Duration::from_secs(cli.checkpoint_interval.max(1));
    goose_platform::run_service("goose-evidence", &cli.service, |platform| async move {
        let stores = crate::worm::open(&cli.blob_store, &database_url)
            .await
            .with_context(|| format!("opening the blob store {}", cli.blob_store))?;
        let blobs = stores.blobs;
        crate::worm::spawn_stats(
            &platform,
            blobs.clone(),
            Duration::from_secs(cli.blob_stats_interval.max(1)),
        );
        let config = crate::EvidenceConfig {
            blobs,
            attestation_keys,
            log_key,
            checkpoint_interval: interval,
            checkpoint_dir: cli.checkpoint_dir,
            checkpoint_archive: stores.checkpoints,
            witnesses: cli.witnesses,
            witness_threshold: cli.witness_threshold,
        };
        let api = crate::build(&platform, config).await?;
        Ok((api, crate::openapi()))
    })
    .await
}
