//! `goose-analytics`: read-only SQL and KPIs over the ledger.

use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    goose_runtime::init_tracing();
    goose_analytics_service::cli::run(goose_analytics_service::cli::Cli::parse()).await
}
