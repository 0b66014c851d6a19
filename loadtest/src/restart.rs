//! `loadtest restart`: how long a replica of rbac takes to start over a large ledger, replaying
//! it (no snapshot) and from its read models' snapshots (`--snapshot-dir`). Run it after
//! filling the ledger with `loadtest ledger --events N` (the same database and log origin).
//!
//! Each start is `Platform::start` plus `goose_rbac::build` — every read model rbac keeps —
//! timed until both return (the views have caught up with the ledger). The first start finds
//! an empty snapshot directory and replays; its shutdown keeps the snapshots; the second start
//! restores them and follows the ledger from there.

use anyhow::{Context as _, Result};
use clap::Args;
use goose_platform::{BusChoice, Platform, PlatformConfig, Relay, Storage};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct RestartArgs {
    /// PostgreSQL URL of the ledger (filled by `loadtest ledger`).
    #[arg(long, env = "GOOSE_DATABASE_URL")]
    database_url: String,
    /// The ledger's log origin (`loadtest ledger` seals for `goose.loadtest/ledger`).
    #[arg(long, default_value = "goose.loadtest/ledger")]
    log_origin: String,
    /// Where the snapshots are kept (emptied first).
    #[arg(long, default_value = "target/loadtest-snapshots")]
    snapshot_dir: PathBuf,
    /// Starts from the snapshots to time (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

async fn start(args: &RestartArgs, dir: &tempfile::TempDir) -> Result<(Duration, Platform)> {
    let token_key = Arc::new(goose_ledger::NoteKey::load_or_generate(
        &dir.path().join("tokens.key"),
        "bench-tokens",
    )?);
    let began = Instant::now();
    let platform = Platform::start(PlatformConfig {
        storage: Storage::Postgres(args.database_url.clone()),
        // The views catch up from the ledger; the bus only wakes them afterwards.
        bus: BusChoice::Memory(goose_bus::memory::MemoryBus::new()),
        service_key: Arc::new(goose_ledger::NoteKey::load_or_generate(
            &dir.path().join("rbac.key"),
            "goose-rbac",
        )?),
        token_keys: vec![goose_ledger::Vkey::parse(&token_key.vkey())?],
        relay: Relay::Off,
        log_origin: args.log_origin.clone(),
        service_name: None,
        snapshot_dir: Some(args.snapshot_dir.clone()),
    })
    .await?;
    let _router = goose_rbac::build(
        &platform,
        goose_rbac::RbacConfig {
            token_key,
            token_ttl: Duration::from_secs(3600),
            approvals: Default::default(),
            identity: None,
            bootstrap: Some(goose_rbac::Bootstrap {
                admin: "bench-admin".into(),
                key_file: dir.path().join("admin.key"),
            }),
        },
    )
    .await?;
    Ok((began.elapsed(), platform))
}

pub async fn run(args: &RestartArgs) -> Result<()> {
    if args.snapshot_dir.exists() {
        std::fs::remove_dir_all(&args.snapshot_dir)
            .with_context(|| format!("emptying {}", args.snapshot_dir.display()))?;
    }
    let keys = tempfile::tempdir()?;
    let size = {
        let pool = sqlx::PgPool::connect(&args.database_url).await?;
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger_events")
            .fetch_one(&pool)
            .await?;
        n
    };
    println!("ledger: {size} events");
    let (replay, platform) = start(args, &keys).await?;
    println!(
        "start without snapshots (replay): {:.3} s",
        replay.as_secs_f64()
    );
    let stopping = Instant::now();
    platform.shutdown().await;
    println!(
        "shutdown, keeping the snapshots: {:.3} s ({} bytes)",
        stopping.elapsed().as_secs_f64(),
        crate::analytics::dir_bytes(&args.snapshot_dir)
    );
    let mut restores = Vec::new();
    for _ in 0..args.runs.max(1) {
        let (took, platform) = start(args, &keys).await?;
        restores.push(took);
        platform.shutdown().await;
    }
    restores.sort();
    println!(
        "start from the snapshots: median {:.3} s of {} (min {:.3} s, max {:.3} s)",
        restores[restores.len() / 2].as_secs_f64(),
        restores.len(),
        restores[0].as_secs_f64(),
        restores[restores.len() - 1].as_secs_f64()
    );
    Ok(())
}
