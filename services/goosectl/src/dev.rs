//! `goosectl dev`: the embedded ledger (SQLite in the data dir), the in-process bus with its
//! outbox relay, periodic checkpoints, and the HTTP API — one process, no external servers.

use crate::cli::{DevArgs, Target};
use crate::{chain_api, keyfiles};
use anyhow::{Context as _, Result};
use goose_bus::memory::MemoryBus;
use goose_bus::relay::OutboxRelay;
use goose_bus::Bus;
use goose_ledger::sqlite::SqliteBackend;
use goose_ledger::{Backend, Ledger, LedgerConfig, Metadata, NewEvent, NoteKey, StreamId};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What `goosectl dev` needs.
#[derive(Debug, Clone)]
pub struct DevConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub checkpoint_interval: Duration,
}

impl DevConfig {
    pub fn from_args(target: &Target, args: &DevArgs) -> Self {
        Self {
            data_dir: target.data_dir.clone(),
            listen: args.listen,
            checkpoint_interval: Duration::from_secs(args.checkpoint_interval.max(1)),
        }
    }
}

/// Binds the listener and serves until `shutdown` resolves.
pub async fn run(
    config: DevConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    serve(config, listener, shutdown).await
}

/// The composition root: everything `goosectl dev` runs, on a given listener (tests bind
/// port 0).
pub async fn serve(
    config: DevConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    // Install the metrics recorder before anything records.
    let _ = goose_runtime::prometheus();
    let data_dir = &config.data_dir;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let log_key = Arc::new(NoteKey::load_or_generate(
        &keyfiles::log_key_path(data_dir),
        keyfiles::DEV_LOG_KEY_NAME,
    )?);
    let service_key = Arc::new(NoteKey::load_or_generate(
        &keyfiles::service_key_path(data_dir, keyfiles::DEV_SERVICE_KEY_NAME),
        keyfiles::DEV_SERVICE_KEY_NAME,
    )?);
    let backend: Arc<dyn Backend> =
        Arc::new(SqliteBackend::open(&data_dir.join("ledger.db")).await?);
    let ledger = Ledger::open(backend, service_key.clone(), LedgerConfig::default()).await?;
    record_start(&ledger, &log_key, &service_key).await?;

    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let relay = tokio::spawn(OutboxRelay::new(ledger.clone(), bus, "dev-relay").run(stopped()));
    let checkpoints = tokio::spawn({
        let reader = (*ledger).clone();
        let log_key = log_key.clone();
        let every = config.checkpoint_interval;
        let stop = stopped();
        async move { reader.run_periodic_checkpoints(&log_key, every, stop).await }
    });

    let ready_ledger = ledger.clone();
    let app = goose_runtime::health_routes(Arc::new(move || {
        let l = ready_ledger.clone();
        Box::pin(async move { l.size().await.map(|_| ()).map_err(|e| e.to_string()) })
    }))
    .merge(chain_api::routes((*ledger).clone()));

    let addr = listener.local_addr()?;
    tracing::info!(%addr, data_dir = %data_dir.display(), "goosectl dev is serving");
    println!(
        "Golden Goose dev server on http://{addr}  (data in {})",
        data_dir.display()
    );
    println!("  log verifier key: {}", log_key.vkey());
    println!(
        "  try: curl http://{addr}/healthz ; goosectl --data-dir {} verify",
        data_dir.display()
    );

    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("HTTP server failed")?;
    let _ = stop_tx.send(true);
    let _ = relay.await;
    let _ = checkpoints.await;
    // A final checkpoint, so everything written is covered when we stop.
    ledger.sign_checkpoint_if_grown(&log_key).await?;
    tracing::info!("goosectl dev stopped");
    Ok(())
}

/// Records that this node started, with its public keys, on the chain itself.
async fn record_start(ledger: &Ledger, log_key: &NoteKey, service_key: &NoteKey) -> Result<()> {
    let stream = StreamId::new("ledger_node", "dev")?;
    let version = ledger
        .read_stream(&stream, 1, u32::MAX)
        .await?
        .last()
        .map_or(0, |e| e.version);
    let event = NewEvent::json(
        "NodeStarted",
        &serde_json::json!({
            "log_vkey": log_key.vkey(),
            "service_vkey": service_key.vkey(),
            "version": env!("CARGO_PKG_VERSION"),
        }),
        Metadata::now(service_key.name()),
    )?;
    ledger.append(&stream, version, vec![event]).await?;
    Ok(())
}
