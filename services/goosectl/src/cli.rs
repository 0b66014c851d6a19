//! The command line.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "goosectl",
    version,
    about = "Golden Goose: promotions you can prove"
)]
pub struct Cli {
    #[command(flatten)]
    pub target: Target,
    #[command(subcommand)]
    pub command: Command,
}

/// Which ledger a command works on: a PostgreSQL database, or the embedded one in a data dir.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// PostgreSQL URL of the ledger (instead of the embedded one in --data-dir).
    #[arg(long, global = true, env = "GOOSE_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Data directory of `goosectl dev` (embedded ledger and keys).
    #[arg(long, global = true, env = "GOOSE_DATA_DIR", default_value = ".goose")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run Golden Goose in one process on the embedded ledger (no external servers needed).
    Dev(DevArgs),
    /// Verify the whole log: digests, chain links, signatures, Merkle nodes, checkpoints.
    Verify(VerifyArgs),
    /// Sign a checkpoint of the log now and print it.
    Checkpoint(LogKeyArgs),
    /// Key management.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Write an offline proof (C2SP tlog-proof) that an event is in the log.
    Proof(ProofArgs),
    /// Check an offline proof file with only the log's public key; no database needed.
    VerifyProof(VerifyProofArgs),
}

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Address to serve HTTP on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Seconds between periodic checkpoints (signed only when the log grew).
    #[arg(long, default_value_t = 60)]
    pub checkpoint_interval: u64,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The log's verifier key (vkey), or @FILE holding it. Default: derived from the data dir's log key.
    #[arg(long)]
    pub log_key: Option<String>,
    /// File of service verifier keys, one vkey per line. Default: the data dir's keys.
    #[arg(long)]
    pub keyring: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LogKeyArgs {
    /// The log's private key file. Default: <data dir>/keys/log.key.
    #[arg(long)]
    pub log_key_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print the log's public key as a C2SP verifier key (vkey).
    Show(LogKeyArgs),
}

#[derive(Debug, Args)]
pub struct ProofArgs {
    /// The event's id.
    pub event_id: uuid::Uuid,
    /// Write here instead of standard output.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyProofArgs {
    /// The proof file.
    pub file: PathBuf,
    /// The log's verifier key (vkey), or @FILE holding it.
    #[arg(long)]
    pub key: String,
    /// Also check the event's own signature against these service keys (one vkey per line).
    #[arg(long)]
    pub keyring: Option<PathBuf>,
}
