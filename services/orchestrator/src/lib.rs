//! The orchestrator: promotions of service versions through the compliance gates, in
//! dependency order and in parallel where the graph allows, and Golden Goose packages.
//!
//! Architecture invariant: every decision is `goose_domain::promotion::Promotion::step`, a
//! pure function of the recorded events and the facts gathered from other services' events;
//! the orchestrator only gathers, appends and waits. It owns the `promotion`, `package` and
//! `promotion_lock` streams and reads nobody's tables.

pub mod api;
/// Raising approval requests in rbac (shared with the registry).
pub use goose_platform::approvals;
pub mod audit;
pub mod cli;
pub mod engine;
pub mod facts;
pub mod grpc;
mod handlers;
mod incidents;
pub mod lease;
pub mod manifest;
pub mod metrics;
mod routes;
pub mod views;
pub mod vsa;

pub use routes::{openapi, routes};

use crate::approvals::ApprovalRequester;
use crate::engine::Engine;
use crate::lease::Leases;
use axum::Router;
use goose_domain::policy::Policy;
use goose_ledger::{Keyring, Vkey};
use goose_platform::Platform;
use sha3::{Digest as _, Sha3_256};
use std::sync::Arc;

/// How the orchestrator runs.
#[derive(Debug, Clone)]
pub struct OrchestratorConfig {
    pub policy: Policy,
    /// SHA3-256 of the policy file (hex).
    pub policy_digest: String,
    /// Raises approval requests in rbac.
    pub approvals: Arc<dyn ApprovalRequester>,
    pub leases: Arc<dyn Leases>,
    /// Trusted service keys: the `signatures_verified` rule checks cited events against them.
    pub keyring: Option<Keyring>,
    /// The log's checkpoint key: the `evidence_chain_valid` rule checks checkpoints with it.
    pub log_key: Option<Vkey>,
    /// When set (threshold > 0), the rule relies only on checkpoints cosigned by that many of
    /// these witnesses.
    pub witness_policy: goose_ledger::witness::WitnessPolicy,
    /// A WORM bucket (S3 Object Lock) where package bundles are kept once built and served
    /// from (`GET /v1/packages/{id}/bundle`).
    pub bundles: Option<goose_evidence::blob::s3::S3BlobStore>,
}

/// Reads a policy file's text: the policy and its digest.
pub fn load_policy(text: &str) -> Result<(Policy, String), goose_domain::policy::Invalid> {
    let policy = Policy::parse(text)?;
    Ok((policy, hex::encode(Sha3_256::digest(text.as_bytes()))))
}

#[derive(Clone)]
pub(crate) struct AppState {
    engine: Arc<Engine>,
    approvals: Arc<dyn ApprovalRequester>,
    log_key: Option<Vkey>,
    bundles: Option<goose_evidence::blob::s3::S3BlobStore>,
}

/// Builds the orchestrator API and starts its engine (which resumes unfinished promotions).
pub async fn build(platform: &Platform, config: OrchestratorConfig) -> anyhow::Result<Router> {
    let views = views::Views::start(platform, config.keyring.clone()).await?;
    let v = views.clone();
    platform
        .readiness
        .add("org-config", move || v.read().org_unreadable.clone());
    let log_key = config.log_key.clone();
    let chain = goose_platform::chain_watch::ChainWatch::start(
        (*platform.ledger).clone(),
        config.keyring.clone().unwrap_or_default(),
        config.log_key.clone(),
        config.witness_policy.clone(),
        platform.stopped(),
    );
    let engine = Engine::new(
        platform.clone(),
        views,
        chain,
        config.policy,
        config.policy_digest,
        config.leases,
    );
    engine.run_scanner();
    incidents::start(engine.clone());
    let v = engine.views.clone();
    platform.on_scrape(move || metrics::export(&v));
    let grpc = Router::new().route_service(
        "/goose.v1.Orchestrator/{*method}",
        grpc::OrchestratorGrpc {
            views: engine.views.clone(),
        }
        .server(),
    );
    let state = AppState {
        engine,
        approvals: config.approvals,
        log_key,
        bundles: config.bundles,
    };
    let (rest, specs) = routes::api().into_parts();
    let router = rest.with_state(state).merge(grpc);
    let router = goose_platform::refuse_declared_lengths_over(router, goose_platform::BODY_LIMIT);
    Ok(platform.protect(router, &[specs.as_slice(), grpc::GRPC_ROUTES].concat()))
}
