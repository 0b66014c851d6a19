//! `goose-rbac`: users, roles, tokens and approvals as a service of its own.

use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    goose_runtime::init_tracing();
    goose_rbac::cli::run(goose_rbac::cli::Cli::parse()).await
}
