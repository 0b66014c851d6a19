//! The command line of the service binary: its flags and how they become a running service.

use anyhow::Context as _;
use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Parser)]
#[command(
    name = "goose-orchestrator",
    version,
    about = "Golden Goose orchestrator service"
)]
pub struct Cli {
    #[command(flatten)]
    service: goose_platform::ServiceArgs,
    /// The promotion policy (policies/promotion_gates.yaml); the shipped default when absent.
    #[arg(long, env = "GOOSE_POLICY_FILE")]
    policy: Option<PathBuf>,
    /// rbac's base URL: promotions raise their approval requests there.
    #[arg(long, env = "GOOSE_RBAC_URL")]
    rbac_url: String,
    #[command(flatten)]
    chain: goose_platform::chain_watch::ChainArgs,
    /// A WORM bucket (S3 Object Lock), `s3://BUCKET`, where package bundles are kept once
    /// built and served from (endpoint, region, credentials from the `AWS_*` variables).
    #[arg(long, env = "GOOSE_BUNDLE_STORE")]
    bundle_store: Option<String>,
}

/// Runs the service until SIGINT/SIGTERM.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let text = match &cli.policy {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        None => goose_domain::policy::DEFAULT_POLICY_YAML.to_owned(),
    };
    let (policy, policy_digest) = crate::load_policy(&text)?;
    let goose_platform::chain_watch::ChainTrust {
        keyring,
        log_key,
        witness_policy,
    } = cli.chain.trust()?;
    if keyring.is_none() || log_key.is_none() {
        tracing::warn!("no --keyring or --log-vkey: signatures_verified / evidence_chain_valid cannot pass unless the policy disables them");
    }
    let bundles = match &cli.bundle_store {
        Some(url) => Some(
            goose_evidence::blob::s3::S3BlobStore::connect(
                goose_evidence::blob::s3::S3Config::from_url_and_env(url)?,
            )
            .await?,
        ),
        None => None,
    };
    let database_url = cli.service.database_url.clone();
    let rbac_url = cli.rbac_url.clone();
    goose_platform::run_service("goose-orchestrator", &cli.service, |platform| async move {
        platform.dependencies.add_peer("rbac", &rbac_url);
        let config = crate::OrchestratorConfig {
            policy,
            policy_digest,
            approvals: Arc::new(crate::approvals::HttpApprovals::new(&rbac_url)),
            leases: Arc::new(crate::lease::PgLeases::new(&database_url)),
            keyring,
            log_key,
            witness_policy,
            bundles,
        };
        let api = crate::build(&platform, config).await?;
        Ok((api, crate::openapi()))
    })
    .await
}
