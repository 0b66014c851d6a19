//! `goose-analytics`: read-only SQL and KPIs over the ledger.

use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _traces = goose_runtime::init_tracing("goose-analytics");
    goose_analytics_service::cli::run(goose_analytics_service::cli::Cli::parse()).await
}
