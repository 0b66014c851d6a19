//! The evidence service: accepts evidence files in the formats tools already write, stores
//! them write-once by content address, records a summary event per file for the gates, signs
//! the chain's checkpoints (periodically and on request) and serves proofs.
//!
//! Architecture invariant: a file is parsed and validated completely before anything is
//! stored; the event is the fact, the blob its content. The service knows which services exist
//! and the retention rules only from registry events.

//!
//! Layout (docs/adding-a-service.md): [`routes`] the one route list, `handlers`, [`views`] the
//! read model, [`chain_api`] the chain's routes, [`grpc`].

pub mod chain_api;
pub mod cli;
pub mod grpc;
mod handlers;
mod routes;
pub mod views;
pub mod worm;

pub use routes::{openapi, routes};
use views::Views;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use goose_domain::streams;
use goose_evidence::blob::BlobStore;
use goose_evidence::dsse::TrustedKeys;
use goose_ledger::aggregate::Aggregate;
use goose_ledger::NoteKey;
use goose_platform::checkpoints::{CheckpointPublisher, PublishConfig, WitnessClient};
use goose_platform::view::ViewHandle;
use goose_platform::Platform;
use std::sync::Arc;
use std::time::Duration;

/// How the evidence service runs.
#[derive(Debug, Clone)]
pub struct EvidenceConfig {
    pub blobs: Arc<dyn BlobStore>,
    /// Keys whose DSSE signatures make an attestation trusted.
    pub attestation_keys: TrustedKeys,
    /// Signs checkpoints; its vkey is what verifiers check the log against.
    pub log_key: Arc<NoteKey>,
    pub checkpoint_interval: Duration,
    /// A directory where every checkpoint is also written, once (write-once files).
    pub checkpoint_dir: Option<std::path::PathBuf>,
    /// A write-once object store every checkpoint is also kept in (the WORM bucket).
    pub checkpoint_archive: Option<Arc<dyn goose_platform::checkpoints::CheckpointArchive>>,
    /// Witnesses every checkpoint is offered to: `<cosigner vkey>@<URL>`.
    pub witnesses: Vec<String>,
    /// How many of them must cosign for a checkpoint to count as witnessed.
    pub witness_threshold: usize,
}

pub use goose_domain::evidence::{EvidenceEvent, EvidenceRecord};

#[derive(Debug, Clone, Default)]
pub(crate) struct EvidenceAgg(Vec<EvidenceRecord>);

impl Aggregate for EvidenceAgg {
    const TYPE: &'static str = streams::EVIDENCE;
    type Event = EvidenceEvent;
    fn apply(&mut self, e: &EvidenceEvent) {
        if let EvidenceEvent::EvidenceAccepted(r) = e {
            self.0.push(r.clone());
        }
    }
    fn event_type(e: &EvidenceEvent) -> &'static str {
        e.event_type()
    }
}

#[derive(Clone)]
pub(crate) struct AppState {
    platform: Platform,
    checkpoints: CheckpointPublisher,
    config: EvidenceConfig,
    views: ViewHandle<Views>,
}

impl AppState {
    pub(crate) fn views(&self) -> parking_lot::RwLockReadGuard<'_, Views> {
        self.views.read()
    }
}

/// Builds the evidence API and starts periodic checkpoints.
pub async fn build(platform: &Platform, config: EvidenceConfig) -> anyhow::Result<Router> {
    let views = platform.start_view::<Views>("evidence").await?;
    let log_vkey = goose_ledger::Vkey::parse(&config.log_key.vkey())?;
    let checkpoints = CheckpointPublisher::new(
        (*platform.ledger).clone(),
        config.log_key.clone(),
        PublishConfig {
            dir: config.checkpoint_dir.clone(),
            archive: config.checkpoint_archive.clone(),
            witnesses: config
                .witnesses
                .iter()
                .map(|w| WitnessClient::parse(w))
                .collect::<anyhow::Result<_>>()?,
            threshold: config.witness_threshold,
        },
    )?;
    {
        let publisher = checkpoints.clone();
        let every = config.checkpoint_interval;
        let stop = platform.stopped();
        platform.spawn(async move { publisher.run_periodic(every, stop).await });
    }
    sign_on_demand(platform, checkpoints.clone()).await?;
    let v = views.clone();
    platform
        .readiness
        .add("org-config", move || v.read().org_unreadable.clone());
    let state = AppState {
        platform: platform.clone(),
        checkpoints,
        config,
        views,
    };
    let (chain, chain_specs) = chain_api::routes((*platform.ledger).clone(), log_vkey);
    let grpc = Router::new().route_service(
        "/goose.v1.Evidence/{*method}",
        grpc::EvidenceGrpc {
            views: state.views.clone(),
        }
        .server(),
    );
    let (rest, specs) = routes::api().into_parts();
    let router = rest
        .with_state(state)
        .merge(chain)
        .merge(grpc)
        // The org-config limit is checked against the real size below; this is the hard cap.
        .layer(DefaultBodyLimit::max(1 << 30));
    Ok(platform.protect(
        router,
        &[specs.as_slice(), &chain_specs, grpc::GRPC_ROUTES].concat(),
    ))
}

/// Signs a checkpoint as soon as a promotion's gate waits for one (a `GateEvaluated` event
/// with a check `awaiting a checkpoint`), instead of leaving it to the periodic one.
async fn sign_on_demand(platform: &Platform, publisher: CheckpointPublisher) -> anyhow::Result<()> {
    let demand = platform
        .start_view::<views::CheckpointDemand>("evidence-checkpoint-demand")
        .await?;
    let mut changed = demand.subscribe();
    let mut answered = demand.read().asked;
    let stop = platform.stopped();
    platform.spawn(async move {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                r = changed.changed() => if r.is_err() { break },
            }
            let asked = demand.read().asked;
            if asked <= answered {
                continue;
            }
            answered = asked;
            match publisher.publish_if_grown().await {
                Ok(Some(cp)) => tracing::info!(size = cp.checkpoint.size, "checkpoint signed for a gate that waits for one"),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "a gate waits for a checkpoint and signing one failed; the periodic one will follow"),
            }
        }
    });
    Ok(())
}
