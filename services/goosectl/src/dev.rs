//! `goosectl dev`: the rbac, registry, evidence, orchestrator and sla services in one process on the embedded
//! ledger (SQLite in the data dir) and the in-process bus — no external servers. Bootstraps
//! an `admin` user on first start, its API key in `<data dir>/admin.api-key`.

use crate::cli::{DevArgs, Target};
use crate::keyfiles;
use anyhow::{Context as _, Result};
use goose_bus::memory::MemoryBus;
use goose_ledger::{Ledger, Metadata, NewEvent, NoteKey, StreamId};
use goose_platform::checkpoints::{CheckpointPublisher, PublishConfig, WitnessClient};
use goose_platform::{BusChoice, Platform, PlatformConfig, Storage};
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
    /// The promotion policy file (the shipped default when `None`).
    pub policy: Option<PathBuf>,
    /// Witnesses every checkpoint is offered to (`<cosigner vkey>@<URL>`).
    pub witnesses: Vec<String>,
    /// Cosignatures a checkpoint needs to count as witnessed (0: no policy).
    pub witness_threshold: usize,
    /// `s3://BUCKET[/PREFIX]` to keep evidence files in a bucket with Object Lock; the data
    /// dir's `blobs/` when `None`.
    pub blob_store: Option<String>,
    /// The identity configuration file (trusted OpenID providers); API keys only when `None`.
    pub identity_config: Option<PathBuf>,
}

impl DevConfig {
    pub fn from_args(target: &Target, args: &DevArgs) -> Self {
        Self {
            data_dir: target.data_dir.clone(),
            listen: args.listen,
            checkpoint_interval: Duration::from_secs(args.checkpoint_interval.max(1)),
            policy: args.policy.clone(),
            witnesses: args.witnesses.clone(),
            witness_threshold: args.witness_threshold,
            blob_store: args.blob_store.clone(),
            identity_config: args.identity_config.clone(),
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
/// port 0): the rbac, registry, evidence, orchestrator and sla services on one platform (SQLite ledger,
/// in-process bus, outbox relay), one HTTP listener, one OpenAPI document.
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
    // Not in keys/: that folder is the keyring of event signers `verify` trusts.
    let token_key = Arc::new(NoteKey::load_or_generate(
        &data_dir.join("tokens.key"),
        "goose-dev-tokens",
    )?);
    let token_vkey = goose_ledger::Vkey::parse(&token_key.vkey())?;
    let platform = Platform::start(PlatformConfig {
        storage: Storage::Sqlite(data_dir.join("ledger.db")),
        bus: BusChoice::Memory(MemoryBus::new()),
        service_key: service_key.clone(),
        token_keys: vec![token_vkey],
        relay: goose_platform::Relay::All,
        log_origin: log_key.name().to_owned(),
        service_name: None,
        snapshot_dir: None,
    })
    .await?;
    record_start(&platform.ledger, &log_key, &service_key).await?;

    let admin_key_file = keyfiles::admin_api_key_path(data_dir);
    let identity = match &config.identity_config {
        None => None,
        Some(path) => Some(
            goose_domain::identity::IdentityConfig::parse(
                &std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
            )
            .with_context(|| path.display().to_string())?,
        ),
    };
    let rbac = goose_rbac::build(
        &platform,
        goose_rbac::RbacConfig {
            token_key,
            token_ttl: Duration::from_secs(3600),
            approvals: goose_domain::approval::ApprovalPolicy::default(),
            identity: identity.clone(),
            bootstrap: Some(goose_rbac::Bootstrap {
                admin: "admin".into(),
                key_file: admin_key_file.clone(),
            }),
        },
    )
    .await?;
    // What the chain watches of sla and analytics trust.
    let trust = goose_platform::chain_watch::ChainTrust {
        keyring: Some(keyfiles::data_dir_keyring(data_dir)?),
        log_key: Some(goose_ledger::Vkey::parse(&log_key.vkey())?),
        witness_policy: witness_policy(&config)?,
    };
    let sla = goose_sla::build(
        &platform,
        goose_sla::SlaConfig {
            chain: trust.clone(),
            ..Default::default()
        },
    )
    .await?;
    // The tables as Parquet in the data dir, for DuckDB and friends (docs/analytics.md).
    let analytics = goose_analytics_service::build(
        &platform,
        goose_analytics_service::AnalyticsConfig {
            export: Some(goose_analytics_service::ExportConfig {
                location: data_dir.join("analytics").display().to_string(),
                every: Duration::from_secs(60),
            }),
            chain: trust,
            ..Default::default()
        },
    )
    .await?;
    let mut attestation_keys = goose_evidence::dsse::TrustedKeys::new();
    for k in keyfiles::attestation_vkeys(data_dir)? {
        attestation_keys.add(k.name.clone(), k.key);
    }
    // Evidence files in the data dir, or in a WORM bucket that keeps the checkpoints too.
    let worm = match &config.blob_store {
        Some(url) => Some(
            goose_evidence::blob::s3::S3BlobStore::connect(
                goose_evidence::blob::s3::S3Config::from_url_and_env(url)?,
            )
            .await?,
        ),
        None => None,
    };
    let (blobs, checkpoint_archive): (
        Arc<dyn goose_evidence::blob::BlobStore>,
        Option<Arc<dyn goose_platform::checkpoints::CheckpointArchive>>,
    ) = match &worm {
        Some(store) => (
            Arc::new(store.clone()),
            Some(Arc::new(goose_evidence_service::worm::WormCheckpoints(
                store.clone(),
            ))),
        ),
        None => (
            Arc::new(goose_evidence::blob::FsBlobStore::open(
                &data_dir.join("blobs"),
            )?),
            None,
        ),
    };
    // The store's size and retention as metrics (the WORM dashboard).
    goose_evidence_service::worm::spawn_stats(&platform, blobs.clone(), Duration::from_secs(5));
    let evidence = goose_evidence_service::build(
        &platform,
        goose_evidence_service::EvidenceConfig {
            blobs,
            checkpoint_archive,
            attestation_keys,
            log_key: log_key.clone(),
            checkpoint_interval: config.checkpoint_interval,
            checkpoint_dir: Some(keyfiles::checkpoints_dir(data_dir)),
            witnesses: config.witnesses.clone(),
            witness_threshold: config.witness_threshold,
        },
    )
    .await?;
    let addr = listener.local_addr()?;
    let policy_text = match &config.policy {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        None => goose_domain::policy::DEFAULT_POLICY_YAML.to_owned(),
    };
    let (policy, policy_digest) = goose_orchestrator::load_policy(&policy_text)?;
    let policy_label = format!(
        "{} (sha3 {})",
        config.policy.as_ref().map_or_else(
            || "the shipped policies/promotion_gates.yaml".to_owned(),
            |p| p.display().to_string()
        ),
        &policy_digest[..16]
    );
    // Approval requests go to rbac on this same listener, with the requester's token.
    let self_url = format!("http://127.0.0.1:{}", addr.port());
    platform.dependencies.add_peer("rbac", &self_url);
    let registry = goose_registry::build(
        &platform,
        goose_registry::RegistryConfig::new(Some(Arc::new(
            goose_orchestrator::approvals::HttpApprovals::new(&self_url),
        )))?,
    )
    .await?;
    let orchestrator = goose_orchestrator::build(
        &platform,
        goose_orchestrator::OrchestratorConfig {
            policy,
            policy_digest,
            approvals: Arc::new(goose_orchestrator::approvals::HttpApprovals::new(&self_url)),
            leases: Arc::new(goose_orchestrator::lease::MemoryLeases::default()),
            keyring: Some(keyfiles::data_dir_keyring(data_dir)?),
            log_key: Some(goose_ledger::Vkey::parse(&log_key.vkey())?),
            witness_policy: witness_policy(&config)?,
            bundles: worm,
        },
    )
    .await?;
    let mut doc = goose_rbac::openapi();
    doc.merge(goose_registry::openapi());
    doc.merge(goose_evidence_service::openapi());
    doc.merge(goose_orchestrator::openapi());
    doc.merge(goose_sla::openapi());
    doc.merge(goose_analytics_service::openapi());
    doc.info.title = "Golden Goose (goosectl dev)".into();
    let app = goose_platform::service_router(
        &platform,
        rbac.merge(registry)
            .merge(evidence)
            .merge(orchestrator)
            .merge(sla)
            .merge(analytics)
            .merge(goose_console::router(&console_config(identity.as_ref()))),
        doc,
    );

    tracing::info!(%addr, data_dir = %data_dir.display(), "goosectl dev is serving");
    println!(
        "Golden Goose dev server on http://{addr}  (data in {})",
        data_dir.display()
    );
    println!("  log verifier key: {}", log_key.vkey());
    println!(
        "  admin token:      export GOOSE_TOKEN=$(goosectl token --user admin --api-key-file {})",
        admin_key_file.display()
    );
    println!("  promotion policy: {policy_label}");
    println!("  web console:      http://{addr}/");
    println!(
        "  try: curl http://{addr}/healthz ; goosectl --data-dir {} verify",
        data_dir.display()
    );

    goose_platform::serve(&platform, app, listener, shutdown).await?;
    // A final checkpoint, so everything written is covered when we stop.
    publisher(&platform, &log_key, &config)?
        .publish_if_grown()
        .await?;
    tracing::info!("goosectl dev stopped");
    Ok(())
}

/// The console may fetch from the configured providers (discovery and token endpoints).
fn console_config(
    identity: Option<&goose_domain::identity::IdentityConfig>,
) -> goose_console::ConsoleConfig {
    goose_console::ConsoleConfig {
        sso_origins: identity
            .map(|i| {
                i.issuers
                    .iter()
                    .filter_map(|i| reqwest::Url::parse(&i.issuer).ok())
                    .map(|u| u.origin().ascii_serialization())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn witness_clients(config: &DevConfig) -> Result<Vec<WitnessClient>> {
    config
        .witnesses
        .iter()
        .map(|w| WitnessClient::parse(w))
        .collect()
}

fn witness_policy(config: &DevConfig) -> Result<goose_ledger::witness::WitnessPolicy> {
    Ok(goose_ledger::witness::WitnessPolicy {
        witnesses: witness_clients(config)?
            .into_iter()
            .map(|w| w.key)
            .collect(),
        threshold: config.witness_threshold,
    })
}

fn publisher(
    platform: &Platform,
    log_key: &Arc<NoteKey>,
    config: &DevConfig,
) -> Result<CheckpointPublisher> {
    CheckpointPublisher::new(
        (*platform.ledger).clone(),
        log_key.clone(),
        PublishConfig {
            dir: Some(keyfiles::checkpoints_dir(&config.data_dir)),
            archive: None,
            witnesses: witness_clients(config)?,
            threshold: config.witness_threshold,
        },
    )
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
