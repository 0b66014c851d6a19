//! `goose-sla`: service level objectives, measurements, error budgets and burn-rate alerts.

use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _traces = goose_runtime::init_tracing("goose-sla");
    goose_sla::cli::run(goose_sla::cli::Cli::parse()).await
}
