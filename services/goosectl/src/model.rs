//! `goosectl model`: the registry's ML models from the terminal — register versions, deploy
//! them through the model policy and approvals, roll back, read the history.

use crate::api::{get, get_print, print_json, send, Svc};
use crate::cli::Api;
use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum ModelCommand {
    /// Register a version of a model (the model is created first when new).
    Register {
        name: String,
        /// Where the artifact is (`s3://...`, `runs:/...`, a path).
        #[arg(long)]
        artifact_uri: String,
        /// The artifact's SHA-256 (64 hex digits); or give --artifact to compute it.
        #[arg(long)]
        digest: Option<String>,
        /// A local copy of the artifact: its SHA-256 becomes the digest.
        #[arg(long, conflicts_with = "digest")]
        artifact: Option<PathBuf>,
        #[arg(long)]
        framework: Option<String>,
        /// A training data reference (repeatable).
        #[arg(long = "training-data")]
        training_data: Vec<String>,
        /// An evaluation metric, `name=value` or `name@dataset=value` (repeatable).
        #[arg(long = "metric")]
        metrics: Vec<String>,
        /// The model card (markdown file).
        #[arg(long)]
        model_card: Option<PathBuf>,
        #[arg(long, default_value = "")]
        description: String,
        /// For a new model: its risk (low, medium, high, critical).
        #[arg(long, default_value = "medium")]
        risk: String,
        /// For a new model: the owning team.
        #[arg(long)]
        owner: Option<String>,
    },
    /// Every model.
    List,
    /// One model: versions, aliases, deployments.
    Show { name: String },
    /// Deploy a version (number or alias) to staging or production. Production without
    /// --approval raises the approval request and prints its id; run again with it once
    /// granted.
    Deploy {
        name: String,
        version: String,
        /// staging or production.
        #[arg(long)]
        to: String,
        #[arg(long)]
        approval: Option<String>,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Put the previous production version back.
    Rollback {
        name: String,
        #[arg(long)]
        reason: String,
    },
    /// The deployment history; with --at, the version in production at that time.
    History {
        name: String,
        /// RFC 3339.
        #[arg(long)]
        at: Option<String>,
    },
    /// Point a free alias at a version.
    Alias {
        name: String,
        alias: String,
        version: u32,
    },
    /// Deprecate a version (refused while in production).
    Deprecate {
        name: String,
        version: u32,
        #[arg(long)]
        reason: String,
    },
}

/// `name=value` or `name@dataset=value`.
fn metric(s: &str) -> Result<Value> {
    let (key, value) = s
        .split_once('=')
        .with_context(|| format!("metric {s:?}: write name=value or name@dataset=value"))?;
    let value: f64 = value
        .trim()
        .parse()
        .with_context(|| format!("metric {s:?}: {value:?} is not a number"))?;
    Ok(match key.split_once('@') {
        Some((name, dataset)) => json!({"name": name, "dataset": dataset, "value": value}),
        None => json!({"name": key, "value": value}),
    })
}

async fn post(api: &Api, path: &str, body: Value) -> Result<Value> {
    send(
        api.request(Svc::Registry, reqwest::Method::POST, path)?
            .json(&body),
    )
    .await?
    .json()
}

pub async fn model(api: &Api, command: ModelCommand) -> Result<ExitCode> {
    match command {
        ModelCommand::Register {
            name,
            artifact_uri,
            digest,
            artifact,
            framework,
            training_data,
            metrics,
            model_card,
            description,
            risk,
            owner,
        } => {
            let digest = match artifact {
                Some(p) => {
                    use sha2::Digest as _;
                    let bytes =
                        std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
                    Some(format!("{:x}", sha2::Sha256::digest(&bytes)))
                }
                None => digest,
            };
            let card = model_card
                .map(|p| {
                    std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
                })
                .transpose()?;
            let metrics = metrics
                .iter()
                .map(|m| metric(m))
                .collect::<Result<Vec<_>>>()?;
            let exists = send(api.request(
                Svc::Registry,
                reqwest::Method::GET,
                &format!("/v1/models/{name}"),
            )?)
            .await
            .is_ok();
            if !exists {
                post(
                    api,
                    "/v1/models",
                    json!({"name": name, "risk": risk, "owner": owner}),
                )
                .await?;
            }
            let mut spec = json!({
                "artifact_uri": artifact_uri,
                "training_data": training_data,
                "metrics": metrics,
                "description": description,
            });
            for (k, v) in [
                ("digest", digest),
                ("framework", framework),
                ("model_card", card),
            ] {
                if let Some(v) = v {
                    spec[k] = json!(v);
                }
            }
            let m = post(api, &format!("/v1/models/{name}/versions"), spec).await?;
            let version = m["versions"]
                .as_object()
                .and_then(|v| v.keys().filter_map(|k| k.parse::<u32>().ok()).max())
                .context("the registry answered without versions")?;
            print_json(&json!({"model": name, "version": version, "created": !exists}))
        }
        ModelCommand::List => get_print(api, Svc::Registry, "/v1/models").await,
        ModelCommand::Show { name } => {
            get_print(api, Svc::Registry, &format!("/v1/models/{name}")).await
        }
        ModelCommand::Deploy {
            name,
            version,
            to,
            approval,
            reason,
        } => {
            if to != "staging" && to != "production" {
                bail!("--to is staging or production, not {to:?}");
            }
            let a = post(
                api,
                &format!("/v1/models/{name}/deployments"),
                json!({"version": version, "environment": to, "approval_id": approval, "reason": reason}),
            )
            .await?;
            if a["status"] == "pending_approval" {
                eprintln!(
                    "approval requested: {}; once granted, run again with --approval {}",
                    a["approval_id"].as_str().unwrap_or("?"),
                    a["approval_id"].as_str().unwrap_or("?"),
                );
            }
            print_json(&a)
        }
        ModelCommand::Rollback { name, reason } => print_json(
            &post(
                api,
                &format!("/v1/models/{name}/rollback"),
                json!({"reason": reason}),
            )
            .await?,
        ),
        ModelCommand::History { name, at: Some(at) } => {
            let at = crate::sla::query_value(&at);
            get_print(
                api,
                Svc::Registry,
                &format!("/v1/models/{name}/production?at={at}"),
            )
            .await
        }
        ModelCommand::History { name, at: None } => {
            let m = get(api, Svc::Registry, &format!("/v1/models/{name}")).await?;
            println!(
                "{:<27} {:<11} {:>7} {:>8}  {:<8} {:<10} reason",
                "at", "environment", "version", "previous", "kind", "by"
            );
            for d in m["history"].as_array().into_iter().flatten() {
                println!(
                    "{:<27} {:<11} {:>7} {:>8}  {:<8} {:<10} {}",
                    d["at"].as_str().unwrap_or(""),
                    d["environment"].as_str().unwrap_or(""),
                    d["version"],
                    d["previous"]
                        .as_u64()
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "-".into()),
                    d["kind"].as_str().unwrap_or(""),
                    d["actor"].as_str().unwrap_or(""),
                    d["reason"].as_str().unwrap_or(""),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ModelCommand::Alias {
            name,
            alias,
            version,
        } => {
            let rb = api
                .request(
                    Svc::Registry,
                    reqwest::Method::PUT,
                    &format!("/v1/models/{name}/aliases/{alias}"),
                )?
                .json(&json!({ "version": version }));
            print_json(&send(rb).await?.json()?)
        }
        ModelCommand::Deprecate {
            name,
            version,
            reason,
        } => print_json(
            &post(
                api,
                &format!("/v1/models/{name}/versions/{version}/deprecate"),
                json!({"reason": reason}),
            )
            .await?,
        ),
    }
}
