//! The command line of the service binary: its flags and how they become a running service.

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "goose-registry",
    version,
    about = "Golden Goose registry service"
)]
pub struct Cli {
    #[command(flatten)]
    service: goose_platform::ServiceArgs,
    /// The model policy (YAML); the shipped policies/model_gates.yaml when left out.
    #[arg(long, env = "GOOSE_MODEL_POLICY")]
    model_policy: Option<std::path::PathBuf>,
    /// rbac's base URL: production model deployments raise their approval requests there
    /// (without it, callers raise them and pass their ids).
    #[arg(long, env = "GOOSE_RBAC_URL")]
    rbac_url: Option<String>,
}

/// Runs the service until SIGINT/SIGTERM.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let approvals = cli.rbac_url.as_deref().map(|url| {
        std::sync::Arc::new(goose_platform::approvals::HttpApprovals::new(url))
            as std::sync::Arc<dyn goose_platform::approvals::ApprovalRequester>
    });
    let mut config = crate::RegistryConfig::new(approvals)?;
    if let Some(path) = &cli.model_policy {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading the model policy {}: {e}", path.display()))?;
        config.model_policy = goose_domain::model::policy::ModelPolicy::parse(&text)?;
    }
    let rbac_url = cli.rbac_url.clone();
    goose_platform::run_service("goose-registry", &cli.service, |platform| async move {
        if let Some(url) = &rbac_url {
            platform.dependencies.add_peer("rbac", url);
        }
        let api = crate::build(&platform, config).await?;
        Ok((api, crate::openapi()))
    })
    .await
}
