//! `goosectl`: the CLI verbs and `goosectl dev`, the whole system in one process.

pub mod chain_api;
pub mod cli;
mod commands;
pub mod dev;
pub mod keyfiles;

use cli::{Cli, Command, KeysCommand};
use std::process::ExitCode;

/// Runs one command. `Ok(code)` carries verdicts (a failed verification is exit code 1);
/// `Err` is a usage or I/O problem (exit code 2).
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Dev(args) => {
            dev::run(
                dev::DevConfig::from_args(&cli.target, &args),
                goose_runtime::shutdown_signal(),
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify(args) => commands::verify(&cli.target, &args).await,
        Command::Checkpoint(args) => commands::checkpoint(&cli.target, &args).await,
        Command::Keys {
            command: KeysCommand::Show(args),
        } => commands::keys_show(&cli.target, &args),
        Command::Proof(args) => commands::proof(&cli.target, &args).await,
        Command::VerifyProof(args) => commands::verify_proof(&args),
    }
}
