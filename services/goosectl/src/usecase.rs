//! `goosectl usecase`: the use-case registry from the terminal — draft, submit for approval,
//! approve or reject (as the caller, in rbac), deploy on models in production, deprecate.

use crate::api::{get_print, print_json, send, Svc};
use crate::cli::Api;
use anyhow::{Context as _, Result};
use serde_json::{json, Value};
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum UseCaseCommand {
    /// Create a use case as a draft.
    Create {
        name: String,
        #[arg(long)]
        title: String,
        /// low, medium, high or critical: how many distinct approvers it needs.
        #[arg(long)]
        impact: String,
        /// A model it uses, `name` (its `champion`), `name@version` or `name@alias`
        /// (repeatable).
        #[arg(long = "model", required = true)]
        models: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long)]
        owner: Option<String>,
    },
    /// Submit the draft for approval (raises its rbac approval request for you, or cites one).
    Submit {
        name: String,
        #[arg(long)]
        approval: Option<String>,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Grant the use case's approval as yourself (never the submitter).
    Approve {
        name: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Reject the use case's approval, with the reason: it goes back to draft.
    Reject {
        name: String,
        #[arg(long)]
        reason: String,
    },
    /// Deploy an approved use case: each model must resolve to its production version.
    Deploy { name: String },
    /// Deprecate a use case, with the reason (its history stays).
    Deprecate {
        name: String,
        #[arg(long)]
        reason: String,
    },
    /// Every use case.
    List,
    /// One use case: state, models, approvers, history.
    Show { name: String },
}

/// `name`, `name@version` or `name@alias` as the registry's `{model, reference}`.
fn model_ref(s: &str) -> Result<Value> {
    match s.split_once('@') {
        None if !s.is_empty() => Ok(json!({ "model": s })),
        Some((m, r)) if !m.is_empty() && !r.is_empty() => Ok(json!({"model": m, "reference": r})),
        _ => anyhow::bail!("model {s:?}: write name, name@version or name@alias"),
    }
}

async fn post(api: &Api, path: &str, body: Value) -> Result<()> {
    let v: Value = send(
        api.request(Svc::Registry, reqwest::Method::POST, path)?
            .json(&body),
    )
    .await?
    .json()?;
    print_json(&v).map(|_| ())
}

pub async fn usecase(api: &Api, command: UseCaseCommand) -> Result<ExitCode> {
    let path = |name: &str, verb: &str| format!("/v1/usecases/{name}/{verb}");
    match command {
        UseCaseCommand::Create {
            name,
            title,
            impact,
            models,
            description,
            owner,
        } => {
            let models = models
                .iter()
                .map(|m| model_ref(m))
                .collect::<Result<Vec<_>>>()
                .context("--model")?;
            post(
                api,
                "/v1/usecases",
                json!({"name": name, "title": title, "impact": impact, "models": models,
                       "description": description, "owner": owner}),
            )
            .await?;
        }
        UseCaseCommand::Submit {
            name,
            approval,
            reason,
        } => {
            post(
                api,
                &path(&name, "submit"),
                json!({"approval_id": approval, "reason": reason}),
            )
            .await?;
        }
        UseCaseCommand::Approve { name, comment } => {
            post(api, &path(&name, "approve"), json!({ "comment": comment })).await?;
        }
        UseCaseCommand::Reject { name, reason } => {
            post(api, &path(&name, "reject"), json!({ "comment": reason })).await?;
        }
        UseCaseCommand::Deploy { name } => {
            let rb = api.request(Svc::Registry, reqwest::Method::POST, &path(&name, "deploy"))?;
            print_json(&send(rb).await?.json()?)?;
        }
        UseCaseCommand::Deprecate { name, reason } => {
            post(api, &path(&name, "deprecate"), json!({ "reason": reason })).await?;
        }
        UseCaseCommand::List => return get_print(api, Svc::Registry, "/v1/usecases").await,
        UseCaseCommand::Show { name } => {
            return get_print(api, Svc::Registry, &format!("/v1/usecases/{name}")).await
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::model_ref;

    #[test]
    fn model_references() {
        assert_eq!(
            model_ref("fraud").unwrap(),
            serde_json::json!({"model": "fraud"})
        );
        assert_eq!(
            model_ref("fraud@3").unwrap(),
            serde_json::json!({"model": "fraud", "reference": "3"})
        );
        assert_eq!(
            model_ref("fraud@challenger").unwrap()["reference"],
            "challenger"
        );
        assert!(model_ref("@3").is_err());
        assert!(model_ref("fraud@").is_err());
        assert!(model_ref("").is_err());
    }
}
