//! `goosectl mesh render`: Istio AuthorizationPolicies from the dependency graph (seed 001
//! §3.3) — from the live catalog (the registry), or offline from service definition files;
//! `--watch` re-renders when the catalog changes.

use crate::api::{self, Svc};
use crate::cli::Api;
use anyhow::{bail, Context as _, Result};
use goose_domain::catalog::{parse_definitions, ServiceDefinition};
use goose_domain::mesh::{self, MeshOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Subcommand)]
pub enum MeshCommand {
    /// Print (or write) one AuthorizationPolicy per onboarded service: the services that
    /// depend on it may call it, Prometheus may scrape it, nothing else (with istio/'s
    /// default deny).
    Render(RenderArgs),
}

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// The namespace the services and their service accounts run in.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// Prometheus's mesh identity (`cluster.local/ns/<ns>/sa/<account>`), allowed
    /// `GET /metrics`; `none` for no scrape rule.
    #[arg(long, default_value = "cluster.local/ns/monitoring/sa/prometheus")]
    prometheus: String,
    /// Methods dependants may call (the seed's template: GET, POST).
    #[arg(long = "method", default_values_t = ["GET".to_owned(), "POST".to_owned()])]
    methods: Vec<String>,
    /// Paths dependants may call (the seed's template: /api/*).
    #[arg(long = "path", default_values_t = ["/api/*".to_owned()])]
    paths: Vec<String>,
    /// Service definition files or directories (seed template or Backstage) to render
    /// offline; without any, the registry's catalog.
    #[arg(short = 'f', long = "file")]
    files: Vec<PathBuf>,
    /// Write to this file (replaced atomically) instead of printing.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep running: look at the catalog every SECONDS and rewrite --out when the policies
    /// change (for a GitOps directory or `kubectl apply` in a loop).
    #[arg(long, value_name = "SECONDS", requires = "out")]
    watch: Option<u64>,
}

pub async fn run(api: &Api, command: MeshCommand) -> Result<ExitCode> {
    let MeshCommand::Render(args) = command;
    let opts = options(&args)?;
    if let Some(every) = args.watch {
        if !args.files.is_empty() {
            bail!("--watch follows the registry's catalog; it does not take -f");
        }
        return watch(api, &args, &opts, Duration::from_secs(every.max(1))).await;
    }
    let yaml = render(api, &args, &opts).await?;
    match &args.out {
        Some(out) => write(out, &yaml)?,
        None => print!("{yaml}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn options(args: &RenderArgs) -> Result<MeshOptions> {
    if !goose_runtime::routes::is_dns_label(&args.namespace) {
        bail!(
            "--namespace {:?} is not a Kubernetes name (lowercase letters, digits and '-')",
            args.namespace
        );
    }
    let prometheus = match args.prometheus.as_str() {
        "none" => None,
        p if p.starts_with("cluster.local/ns/") && p.contains("/sa/") => Some(p.to_owned()),
        p => {
            bail!("--prometheus {p:?}: expected cluster.local/ns/<namespace>/sa/<account> or none")
        }
    };
    if args.methods.is_empty() || args.paths.is_empty() {
        bail!("at least one --method and one --path");
    }
    Ok(MeshOptions {
        namespace: args.namespace.clone(),
        methods: args.methods.clone(),
        paths: args.paths.clone(),
        prometheus,
    })
}

async fn render(api: &Api, args: &RenderArgs, opts: &MeshOptions) -> Result<String> {
    let services = if args.files.is_empty() {
        catalog(api).await?
    } else {
        let mut all = Vec::new();
        for f in &args.files {
            all.extend(from_files(f)?);
        }
        all
    };
    mesh::to_yaml(&mesh::authorization_policies(&services, opts)).map_err(anyhow::Error::msg)
}

/// The registry's catalog.
async fn catalog(api: &Api) -> Result<Vec<ServiceDefinition>> {
    let entries = api::get(api, Svc::Registry, "/v1/services").await?;
    let entries = entries
        .as_array()
        .context("the registry's /v1/services is not a list")?;
    entries
        .iter()
        .map(|e| {
            serde_json::from_value(e["definition"].clone())
                .context("a catalog entry without a service definition")
        })
        .collect()
}

fn from_files(path: &Path) -> Result<Vec<ServiceDefinition>> {
    let files = api::definition_files(path)?;
    let mut out = Vec::new();
    for f in files {
        let text =
            std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
        out.extend(parse_definitions(&text).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?);
    }
    Ok(out)
}

/// Replaces `out` atomically (a reader never sees half a file).
fn write(out: &Path, yaml: &str) -> Result<()> {
    let tmp = out.with_extension("tmp");
    std::fs::write(&tmp, yaml).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("replacing {}", out.display()))?;
    Ok(())
}

async fn watch(
    api: &Api,
    args: &RenderArgs,
    opts: &MeshOptions,
    every: Duration,
) -> Result<ExitCode> {
    let out = args.out.as_deref().context("--watch needs --out")?;
    let mut last: Option<String> = None;
    loop {
        match render(api, args, opts).await {
            Ok(yaml) if last.as_deref() != Some(yaml.as_str()) => {
                write(out, &yaml)?;
                let n = yaml.matches("\nkind: AuthorizationPolicy").count();
                println!(
                    "{}: {n} policies written to {}",
                    time::OffsetDateTime::now_utc(),
                    out.display()
                );
                last = Some(yaml);
            }
            Ok(_) => {}
            // The registry restarting is no reason to stop; the file keeps the last good set.
            Err(e) => eprintln!("reading the catalog failed (kept {}): {e:#}", out.display()),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
    }
}
