//! The registry's wire types.

use goose_domain::catalog::CatalogEntry;
use serde::{Deserialize, Serialize};

/// What an apply did.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApplyResult {
    /// Newly onboarded, in the order applied (dependencies first).
    pub onboarded: Vec<String>,
    /// Changed definitions, in the order applied.
    pub updated: Vec<String>,
    /// Submitted but identical to what is stored.
    pub unchanged: Vec<String>,
}

/// A service with its place in the graph.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServiceView {
    #[serde(flatten)]
    pub entry: CatalogEntry,
    pub dependants: Vec<String>,
    /// The resource limits of its compliance mode (org-config `modes`), for deployment
    /// rendering.
    pub resources: goose_domain::org_config::ModeLimits,
}

/// `POST /v1/models`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateModel {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Sets how many approvers a production deployment needs (the model policy).
    #[serde(default = "medium")]
    #[schema(value_type = String)]
    pub risk: goose_domain::approval::ImpactLevel,
    /// The owning team.
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
}

fn medium() -> goose_domain::approval::ImpactLevel {
    goose_domain::approval::ImpactLevel::Medium
}

/// A model with its versions, aliases and deployment history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ModelView {
    pub name: String,
    #[serde(flatten)]
    pub model: goose_domain::model::RegisteredModel,
    /// The version in production now, and the staged one.
    pub production: Option<u32>,
    pub staging: Option<u32>,
    /// By version: the newest evidence of each kind submitted for it (the gates read these).
    #[schema(value_type = Object)]
    pub evidence: std::collections::BTreeMap<u32, goose_domain::model::policy::VersionEvidence>,
}

/// `POST /v1/models/{name}/deployments`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployModel {
    /// A version number or an alias.
    pub version: String,
    #[schema(value_type = String)]
    pub environment: goose_domain::model::Environment,
    /// Production: the granted rbac approval (kind `model_deployment`, subject
    /// `model:<name>@<version>`). Left out, the registry raises one for the caller and answers
    /// 202 with its id.
    #[serde(default)]
    pub approval_id: Option<String>,
    /// Why (the approval request's reason).
    #[serde(default)]
    pub reason: String,
}

/// What a deployment request did.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeployAnswer {
    pub model: String,
    pub version: u32,
    pub environment: String,
    /// `deployed`, or `pending_approval` (the approval request was raised).
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    /// The model policy's checks, each `check: pass|fail (detail)`.
    pub checks: Vec<String>,
}

/// `POST /v1/models/{name}/rollback` and `.../versions/{v}/deprecate`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    pub reason: String,
}

/// `PUT /v1/models/{name}/aliases/{alias}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetAlias {
    pub version: u32,
}

/// `GET /v1/models/{name}/production?at=T`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProductionAt {
    pub model: String,
    /// RFC 3339.
    pub at: String,
    /// The version in production then; none if none was.
    pub version: Option<u32>,
}

/// `POST /v1/usecases`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUseCase {
    pub name: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// Sets how many distinct approvers it needs (rbac's impact rules).
    #[schema(value_type = String)]
    pub impact: goose_domain::approval::ImpactLevel,
    /// The models it uses: `{model, reference}` (a version number or an alias; `champion`
    /// when left out).
    pub models: Vec<goose_domain::usecase::ModelRef>,
    #[serde(default)]
    pub owner: Option<String>,
}

/// `POST /v1/usecases/{name}/submit`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitUseCase {
    /// The rbac approval request (kind `use_case`, subject `usecase:<name>`) when the caller
    /// raised it; left out, the registry raises it for the caller.
    #[serde(default)]
    pub approval_id: Option<String>,
    #[serde(default)]
    pub reason: String,
}

/// `POST /v1/usecases/{name}/approve` and `/reject`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decide {
    /// A comment for a grant; the reason for a rejection.
    #[serde(default)]
    pub comment: String,
}
