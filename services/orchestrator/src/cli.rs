//! The command line of the service binary: its flags and how they become a running service.

use anyhow::Context as _;
use clap::Parser;
use goose_ledger::Keyring;
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
    /// Trusted service verifier keys (C2SP vkeys, or @FILE with one per line) for the
    /// signatures_verified rule.
    #[arg(long = "keyring", env = "GOOSE_KEYRING", value_delimiter = ',')]
    keyring: Vec<String>,
    /// The log's checkpoint verifier key (vkey or @FILE) for the evidence_chain_valid rule.
    #[arg(long, env = "GOOSE_LOG_VKEY")]
    log_vkey: Option<String>,
    /// A witness's cosigner verifier key; with --witness-threshold, the evidence_chain_valid
    /// rule relies only on checkpoints cosigned by enough of them. Repeatable.
    #[arg(
        long = "witness-key",
        env = "GOOSE_WITNESS_KEYS",
        value_delimiter = ','
    )]
    witness_keys: Vec<String>,
    /// How many of the witnesses must have cosigned a checkpoint (0: no witness policy).
    #[arg(long, env = "GOOSE_WITNESS_THRESHOLD", default_value_t = 0)]
    witness_threshold: usize,
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
    let vkeys = goose_platform::parse_vkeys(&cli.keyring)?;
    let keyring = (!vkeys.is_empty()).then(|| {
        let mut k = Keyring::new();
        for v in &vkeys {
            k.add(v);
        }
        k
    });
    let log_key = match &cli.log_vkey {
        Some(v) => goose_platform::parse_vkeys(std::slice::from_ref(v))?
            .into_iter()
            .next(),
        None => None,
    };
    if keyring.is_none() || log_key.is_none() {
        tracing::warn!("no --keyring or --log-vkey: signatures_verified / evidence_chain_valid cannot pass unless the policy disables them");
    }
    let witness_policy = goose_ledger::witness::WitnessPolicy {
        witnesses: cli
            .witness_keys
            .iter()
            .map(|k| goose_ledger::witness::WitnessKey::parse(k))
            .collect::<Result<_, _>>()?,
        threshold: cli.witness_threshold,
    };
    anyhow::ensure!(
        witness_policy.threshold <= witness_policy.witnesses.len(),
        "--witness-threshold {} is more than the {} --witness-key given",
        witness_policy.threshold,
        witness_policy.witnesses.len()
    );
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
