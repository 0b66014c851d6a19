//! The command line of the service binary: its flags and how they become a running service.

use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "goose-sla", version, about = "Golden Goose sla service")]
pub struct Cli {
    #[command(flatten)]
    service: goose_platform::ServiceArgs,
}

/// Runs the service until SIGINT/SIGTERM.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    goose_platform::run_service("goose-sla", &cli.service, |platform| async move {
        let api = crate::build(&platform).await?;
        Ok((api, crate::openapi()))
    })
    .await
}
