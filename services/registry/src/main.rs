//! `goose-registry`: the service catalog, its dependency graph and org-config.

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "goose-registry",
    version,
    about = "Golden Goose registry service"
)]
struct Cli {
    #[command(flatten)]
    service: goose_platform::ServiceArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    goose_runtime::init_tracing();
    let cli = Cli::parse();
    goose_platform::run_service("goose-registry", &cli.service, |platform| async move {
        let api = goose_registry::build(&platform).await?;
        Ok((api, goose_registry::openapi()))
    })
    .await
}
