//! The command line of the service binary: its flags and how they become a running service.

use anyhow::Context as _;
use clap::Parser;
use goose_domain::approval::ApprovalPolicy;
use goose_ledger::NoteKey;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(name = "goose-rbac", version, about = "Golden Goose rbac service")]
pub struct Cli {
    #[command(flatten)]
    service: goose_platform::ServiceArgs,
    /// The token signing key (created, mode 0600, if missing). Its vkey is what other
    /// services take as --token-vkey (also served at /v1/auth/keys).
    #[arg(long, env = "GOOSE_TOKEN_KEY_FILE")]
    token_key_file: PathBuf,
    /// Access token lifetime in seconds.
    #[arg(long, env = "GOOSE_TOKEN_TTL", default_value_t = 900)]
    token_ttl: u64,
    /// Approvers required per impact level.
    #[arg(
        long,
        env = "GOOSE_APPROVALS",
        default_value = "low=1,medium=1,high=2,critical=3"
    )]
    approvals: String,
    /// Create this admin user on first start...
    #[arg(long, env = "GOOSE_BOOTSTRAP_ADMIN")]
    bootstrap_admin: Option<String>,
    /// ...and write its API key here (mode 0600).
    #[arg(long, env = "GOOSE_BOOTSTRAP_KEY_FILE", requires = "bootstrap_admin")]
    bootstrap_key_file: Option<PathBuf>,
    /// Trusted OpenID providers, their group → role/team mappings and service accounts
    /// (YAML or JSON; docs/identity.md). Without it only API keys sign in.
    #[arg(long, env = "GOOSE_IDENTITY_CONFIG")]
    identity_config: Option<PathBuf>,
}

/// Runs the service until SIGINT/SIGTERM.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let token_key = Arc::new(NoteKey::load_or_generate(
        &cli.token_key_file,
        "goose-rbac-tokens",
    )?);
    let mut service = cli.service.clone();
    // rbac verifies its own tokens.
    service.token_vkeys.push(token_key.vkey());
    let config = crate::RbacConfig {
        token_key,
        token_ttl: Duration::from_secs(cli.token_ttl.clamp(60, 86_400)),
        approvals: ApprovalPolicy::parse(&cli.approvals).map_err(anyhow::Error::msg)?,
        bootstrap: match (cli.bootstrap_admin, cli.bootstrap_key_file) {
            (Some(admin), Some(key_file)) => Some(crate::Bootstrap { admin, key_file }),
            (Some(_), None) => anyhow::bail!("--bootstrap-admin needs --bootstrap-key-file"),
            _ => None,
        },
        identity: match &cli.identity_config {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                Some(
                    goose_domain::identity::IdentityConfig::parse(&text)
                        .with_context(|| path.display().to_string())?,
                )
            }
        },
    };
    goose_platform::run_service("goose-rbac", &service, |platform| async move {
        let api = crate::build(&platform, config).await?;
        Ok((api, crate::openapi()))
    })
    .await
}
