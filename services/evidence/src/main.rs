//! `goose-evidence`: evidence ingestion, write-once blobs, chain checkpoints and proofs.

use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _traces = goose_runtime::init_tracing("goose-evidence");
    goose_evidence_service::cli::run(goose_evidence_service::cli::Cli::parse()).await
}
