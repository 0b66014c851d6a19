//! The command line of the service binary: its flags and how they become a running service.

use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "goose-sla", version, about = "Golden Goose sla service")]
pub struct Cli {
    #[command(flatten)]
    service: goose_platform::ServiceArgs,
    /// Seconds between evaluations of every SLO (alerts, violations, incidents).
    #[arg(long, env = "GOOSE_SLA_EVALUATE_EVERY", default_value_t = 30)]
    evaluate_every: u64,
    #[command(flatten)]
    prometheus: crate::remote_write::MappingArgs,
}

/// Runs the service until SIGINT/SIGTERM.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = crate::SlaConfig {
        evaluate_every: std::time::Duration::from_secs(cli.evaluate_every.max(1)),
        prometheus: cli.prometheus.into(),
    };
    goose_platform::run_service("goose-sla", &cli.service, |platform| async move {
        let api = crate::build(&platform, config).await?;
        Ok((api, crate::openapi()))
    })
    .await
}
