//! `goosectl`: parse the command line, run the verb, map the outcome to an exit code.

use clap::Parser as _;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let _traces = goose_runtime::init_tracing("goosectl");
    let cli = goosectl::cli::Cli::parse();
    match goosectl::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
