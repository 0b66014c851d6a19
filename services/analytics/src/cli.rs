//! The command line of the service binary: its flags and how they become a running service.

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "goose-analytics",
    version,
    about = "Golden Goose analytics service"
)]
pub struct Cli {
    #[command(flatten)]
    service: goose_platform::ServiceArgs,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    chain: goose_platform::chain_watch::ChainArgs,
    /// Export the tables as Hive-partitioned Parquet to this directory or s3://bucket/prefix
    /// (AWS_* variables for credentials, region and endpoint). One exporter per location.
    #[arg(long, env = "GOOSE_ANALYTICS_EXPORT_TO")]
    export_to: Option<String>,
    /// Offload large aggregates (percentile_exact) to a GPU when one is found.
    #[arg(long, env = "GOOSE_ANALYTICS_GPU", default_value = "on", value_parser = ["on", "off"])]
    gpu: String,
    /// Let a software adapter (Mesa's lavapipe) stand in for a GPU: for tests and CI.
    #[arg(long, env = "GOOSE_ANALYTICS_GPU_ALLOW_SOFTWARE")]
    gpu_allow_software: bool,
    /// Aggregates over fewer inputs stay on the CPU.
    #[arg(
        long,
        env = "GOOSE_ANALYTICS_GPU_MIN_ROWS",
        default_value_t = 1_000_000
    )]
    gpu_min_rows: usize,
    /// Aggregates on the GPU at once; more run on the CPU.
    #[arg(long, env = "GOOSE_ANALYTICS_GPU_CONCURRENCY", default_value_t = 1)]
    gpu_concurrency: usize,
    /// Seconds between exports.
    #[arg(long, env = "GOOSE_ANALYTICS_EXPORT_EVERY", default_value_t = 60)]
    export_every: u64,
}

/// What one query may use.
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// Memory (MiB) one query's operators may use (sorts, joins, aggregates).
    #[arg(long, env = "GOOSE_ANALYTICS_QUERY_MEMORY_MB", default_value_t = 256)]
    pub query_memory_mb: usize,
    /// Seconds one query may run.
    #[arg(long, env = "GOOSE_ANALYTICS_QUERY_TIMEOUT", default_value_t = 30)]
    pub query_timeout: u64,
    /// Rows one answer holds at most.
    #[arg(long, env = "GOOSE_ANALYTICS_QUERY_MAX_ROWS", default_value_t = 10_000)]
    pub query_max_rows: usize,
    /// Threads one query's plan may use.
    #[arg(long, env = "GOOSE_ANALYTICS_QUERY_THREADS", default_value_t = 2)]
    pub query_threads: usize,
    /// Queries run at once; more wait for a slot within their timeout, then get 503.
    #[arg(long, env = "GOOSE_ANALYTICS_QUERY_CONCURRENCY", default_value_t = 4)]
    pub query_concurrency: usize,
}

impl From<LimitArgs> for goose_analytics::Limits {
    fn from(a: LimitArgs) -> Self {
        Self {
            memory_bytes: a.query_memory_mb.max(1) << 20,
            timeout: std::time::Duration::from_secs(a.query_timeout.max(1)),
            max_rows: a.query_max_rows.max(1),
            partitions: a.query_threads.max(1),
            concurrent: a.query_concurrency.max(1),
        }
    }
}

/// Runs the service until SIGINT/SIGTERM.
pub async fn run(mut cli: Cli) -> anyhow::Result<()> {
    // It records nothing, so it has no outbox to relay.
    cli.service.relay = false;
    let config = crate::AnalyticsConfig {
        limits: goose_analytics::Limits::from(cli.limits.clone()),
        chain: cli.chain.trust()?,
        accel: goose_analytics::accel::AccelConfig {
            enabled: cli.gpu == "on",
            allow_software: cli.gpu_allow_software,
            min_rows: cli.gpu_min_rows,
            concurrency: cli.gpu_concurrency.max(1),
        },
        export: cli.export_to.clone().map(|location| crate::ExportConfig {
            location,
            every: std::time::Duration::from_secs(cli.export_every.max(1)),
        }),
    };
    goose_platform::run_service("goose-analytics", &cli.service, |platform| async move {
        let api = crate::build(&platform, config).await?;
        Ok((api, crate::openapi()))
    })
    .await
}
