//! `goose-orchestrator`: promotions through the compliance gates, and packages.

use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _traces = goose_runtime::init_tracing("goose-orchestrator");
    goose_orchestrator::cli::run(goose_orchestrator::cli::Cli::parse()).await
}
