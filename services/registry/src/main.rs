//! `goose-registry`: the service catalog, its dependency graph and org-config.

use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _traces = goose_runtime::init_tracing("goose-registry");
    goose_registry::cli::run(goose_registry::cli::Cli::parse()).await
}
