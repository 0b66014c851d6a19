//! `goose-rbac`: users, roles, tokens and approvals as a service of its own.

use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _traces = goose_runtime::init_tracing("goose-rbac");
    goose_rbac::cli::run(goose_rbac::cli::Cli::parse()).await
}
