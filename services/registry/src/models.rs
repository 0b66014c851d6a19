//! The model registry's REST handlers: models, versions, deployments through the model policy
//! and rbac approvals, rollback, aliases, deprecation, and production at a time T.

use crate::api::{
    CreateModel, DeployAnswer, DeployModel, ModelView, ProductionAt, Reason, SetAlias,
};
use crate::views::RegistryView;
use crate::{AppState, ModelAgg};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use goose_domain::approval::{ApprovalKind, ApprovalStatus};
use goose_domain::model::{
    Approval, Environment, ModelError, ModelName, RegisteredModel, VersionSpec,
};
use goose_domain::ownership::{may_act, Owned};
use goose_ledger::{aggregate, Metadata};
use goose_platform::{execute_problem, problem, JsonBody};
use goose_runtime::auth::Caller;
use goose_runtime::problem::Problem;
use serde::Deserialize;
use time::OffsetDateTime;

fn name(s: &str) -> Result<ModelName, Problem> {
    ModelName::parse(s).map_err(|e| problem(&e))
}

/// Records what `decide` returns on model `name`'s stream, then waits for the view.
pub(crate) async fn record(
    s: &AppState,
    caller: &Caller,
    name: &ModelName,
    decide: impl Fn(
        &goose_domain::model::RegisteredModel,
    ) -> Result<Vec<goose_domain::model::ModelEvent>, ModelError>,
) -> Result<(), Problem> {
    let meta = Metadata::now(caller.user.clone());
    let done =
        aggregate::execute::<ModelAgg, ModelError>(&s.platform.ledger, name.as_str(), &meta, |m| {
            decide(&m.0)
        })
        .await
        .map_err(execute_problem)?;
    s.view.after_write(done.receipt, "registry").await;
    Ok(())
}

/// The model as the view has it (after catching up when it is not there yet).
pub(crate) async fn view_of(s: &AppState, name: &ModelName) -> Result<ModelView, Problem> {
    if !s.view.read().models.contains_key(name.as_str()) {
        s.view.catch_up(&s.platform).await?;
    }
    let v = s.view.read();
    let m = v
        .models
        .get(name.as_str())
        .filter(|m| m.name.is_some())
        .ok_or_else(|| Problem::not_found(format!("no model {name}")))?;
    Ok(model_view(&v, name.as_str(), m))
}

fn model_view(v: &RegistryView, name: &str, m: &RegisteredModel) -> ModelView {
    ModelView {
        name: name.to_owned(),
        production: m.deployed(Environment::Production),
        staging: m.deployed(Environment::Staging),
        evidence: v
            .model_evidence
            .iter()
            .filter(|((model, _), _)| model == name)
            .map(|((_, version), e)| (*version, e.clone()))
            .collect(),
        model: m.clone(),
    }
}

pub(crate) async fn create(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateModel>,
) -> Result<(StatusCode, Json<ModelView>), Problem> {
    let n = name(&req.name)?;
    let now = OffsetDateTime::now_utc();
    record(&s, &caller, &n, |m| {
        m.create(
            n.clone(),
            req.description.clone(),
            req.risk,
            req.owner.clone(),
            req.tags.clone(),
            now,
        )
    })
    .await?;
    Ok((StatusCode::CREATED, Json(view_of(&s, &n).await?)))
}

pub(crate) async fn list(State(s): State<AppState>) -> Json<Vec<ModelView>> {
    let v = s.view.read();
    Json(
        v.models
            .iter()
            .filter(|(_, m)| m.name.is_some())
            .map(|(n, m)| model_view(&v, n, m))
            .collect(),
    )
}

pub(crate) async fn show(
    State(s): State<AppState>,
    Path(n): Path<String>,
) -> Result<Json<ModelView>, Problem> {
    Ok(Json(view_of(&s, &name(&n)?).await?))
}

pub(crate) async fn register(
    State(s): State<AppState>,
    caller: Caller,
    Path(n): Path<String>,
    JsonBody(spec): JsonBody<VersionSpec>,
) -> Result<(StatusCode, Json<ModelView>), Problem> {
    let n = name(&n)?;
    let now = OffsetDateTime::now_utc();
    record(&s, &caller, &n, |m| {
        m.register(spec.clone(), &caller.user, now)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(view_of(&s, &n).await?)))
}

/// Staging: the gate, then the deployment. Production: the gate, then either the approval
/// request (raised for the caller: 202) or, with a granted one, the deployment.
pub(crate) async fn deploy(
    State(s): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    Path(n): Path<String>,
    JsonBody(req): JsonBody<DeployModel>,
) -> Result<(StatusCode, Json<DeployAnswer>), Problem> {
    let n = name(&n)?;
    // Evidence submitted a moment ago (by the evidence service) counts.
    s.view.catch_up(&s.platform).await?;
    let model = view_of(&s, &n).await?.model;
    let owner_teams = goose_domain::rbac::owner_teams(model.owner.as_deref());
    let owned: Vec<Owned<'_>> = owner_teams
        .iter()
        .map(|t| Owned {
            service: n.as_str(),
            owner: Some(t),
        })
        .collect();
    may_act("deploy", &caller.user, &caller.roles, &caller.teams, &owned)
        .map_err(|e| Problem::forbidden(e.to_string()))?;
    let version = model.resolve(&req.version).map_err(|e| problem(&e))?;
    let Some(v) = model.versions.get(&version) else {
        return Err(Problem::not_found(format!(
            "model {n} has no version {version}"
        )));
    };
    // Production only from a staged version: said before what its gate thinks of it.
    if req.environment == Environment::Production {
        model
            .ready_for_production(version)
            .map_err(|e| problem(&e))?;
    }
    let evidence = s
        .view
        .read()
        .model_evidence
        .get(&(n.to_string(), version))
        .cloned()
        .unwrap_or_default();
    let checks = s.model_policy.evaluate(req.environment, v, &evidence);
    let lines: Vec<String> = checks.iter().map(|c| c.line()).collect();
    let failed: Vec<&str> = checks
        .iter()
        .zip(&lines)
        .filter(|(c, _)| !c.passed)
        .map(|(_, l)| l.as_str())
        .collect();
    if !failed.is_empty() {
        return Err(Problem::unprocessable(format!(
            "the model policy's {} gate refuses version {version} of {n}: {}",
            req.environment,
            failed.join("; ")
        )));
    }
    let answer = |status: &str, approval_id: Option<String>| DeployAnswer {
        model: n.to_string(),
        version,
        environment: req.environment.to_string(),
        status: status.to_owned(),
        approval_id,
        checks: lines.clone(),
    };
    let now = OffsetDateTime::now_utc();
    if req.environment == Environment::Staging {
        record(&s, &caller, &n, |m| {
            m.deploy_staging(version, lines.clone(), &caller.user, now)
        })
        .await?;
        return Ok((StatusCode::OK, Json(answer("deployed", None))));
    }
    let subject = format!("model:{n}@{version}");
    let risk = model
        .risk
        .unwrap_or(goose_domain::approval::ImpactLevel::Medium);
    let Some(approval_id) = req.approval_id.clone() else {
        let Some(requester) = &s.approvals else {
            return Err(Problem::unprocessable(format!(
                "a production deployment needs a granted approval: raise one with POST /v1/approvals \
                 {{\"kind\": \"model_deployment\", \"subject\": \"{subject}\", \"impact\": \"{risk}\"}} and pass its approval_id"
            )));
        };
        let token = goose_platform::approvals::bearer(&headers)?;
        let reason = if req.reason.is_empty() {
            format!("deploy {subject} to production")
        } else {
            req.reason.clone()
        };
        let id = requester
            .request(
                &token,
                ApprovalKind::ModelDeployment,
                &subject,
                risk,
                &reason,
                &owner_teams,
            )
            .await?;
        tracing::info!(user = %caller.user, %subject, approval = %id, "model deployment approval requested");
        return Ok((
            StatusCode::ACCEPTED,
            Json(answer("pending_approval", Some(id))),
        ));
    };
    let approval = granted(&s, &approval_id, &subject, &owner_teams).await?;
    let required = s.model_policy.approvers(risk);
    record(&s, &caller, &n, |m| {
        m.deploy_production(
            version,
            approval.clone(),
            required,
            lines.clone(),
            &caller.user,
            now,
        )
    })
    .await?;
    Ok((StatusCode::OK, Json(answer("deployed", Some(approval_id)))))
}

/// rbac's approval `id`, granted, of kind `model_deployment` for exactly `subject`.
async fn granted(
    s: &AppState,
    id: &str,
    subject: &str,
    owners: &[goose_domain::rbac::TeamName],
) -> Result<Approval, Problem> {
    // rbac records grants: the view must have applied everything committed before this
    // request (a grant a moment ago included), or a granted request would read as pending.
    s.view.catch_up(&s.platform).await?;
    let v = s.view.read();
    let a = v
        .approvals
        .get(id)
        .filter(|a| a.status != ApprovalStatus::New)
        .ok_or_else(|| Problem::unprocessable(format!("no approval request {id}")))?;
    if a.kind != Some(ApprovalKind::ModelDeployment) || a.subject != subject {
        return Err(Problem::unprocessable(format!(
            "approval {id} is for {} ({:?}), not a model deployment of {subject}",
            a.subject, a.kind
        )));
    }
    goose_domain::ownership::approval_names_owners(owners, &a.owner_teams)
        .map_err(|why| Problem::unprocessable(format!("approval {id}: {why}")))?;
    match a.status {
        ApprovalStatus::Approved => Ok(Approval {
            approval_id: id.to_owned(),
            approvers: a.approvers.clone(),
        }),
        ApprovalStatus::Pending => Err(Problem::unprocessable(format!(
            "approval {id} is still pending: {} of {} approver(s) so far",
            a.approvers.len(),
            a.required_approvers
        ))),
        _ => Err(Problem::unprocessable(format!(
            "approval {id} was rejected{}",
            a.rejection_reason
                .as_ref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ))),
    }
}

pub(crate) async fn rollback(
    State(s): State<AppState>,
    caller: Caller,
    Path(n): Path<String>,
    JsonBody(req): JsonBody<Reason>,
) -> Result<Json<ModelView>, Problem> {
    let n = name(&n)?;
    let now = OffsetDateTime::now_utc();
    record(&s, &caller, &n, |m| {
        m.rollback(&req.reason, &caller.user, now)
    })
    .await?;
    Ok(Json(view_of(&s, &n).await?))
}

pub(crate) async fn set_alias(
    State(s): State<AppState>,
    caller: Caller,
    Path((n, alias)): Path<(String, String)>,
    JsonBody(req): JsonBody<SetAlias>,
) -> Result<Json<ModelView>, Problem> {
    let n = name(&n)?;
    record(&s, &caller, &n, |m| m.set_alias(&alias, req.version)).await?;
    Ok(Json(view_of(&s, &n).await?))
}

pub(crate) async fn delete_alias(
    State(s): State<AppState>,
    caller: Caller,
    Path((n, alias)): Path<(String, String)>,
) -> Result<Json<ModelView>, Problem> {
    let n = name(&n)?;
    record(&s, &caller, &n, |m| m.delete_alias(&alias)).await?;
    Ok(Json(view_of(&s, &n).await?))
}

pub(crate) async fn deprecate(
    State(s): State<AppState>,
    caller: Caller,
    Path((n, version)): Path<(String, String)>,
    JsonBody(req): JsonBody<Reason>,
) -> Result<Json<ModelView>, Problem> {
    let n = name(&n)?;
    let version: u32 = version.parse().map_err(|_| {
        Problem::bad_request(format!("version {version:?} is not a version number"))
    })?;
    // Deployed use cases pinning the version.
    view_of(&s, &n).await?;
    let used_by: Vec<String> = s
        .view
        .read()
        .usecases
        .values()
        .filter(|u| u.uses(&n, version))
        .map(|u| u.name.clone())
        .collect();
    record(&s, &caller, &n, |m| {
        m.deprecate(version, &req.reason, used_by.clone())
    })
    .await?;
    Ok(Json(view_of(&s, &n).await?))
}

#[derive(Debug, Deserialize)]
pub(crate) struct AtQuery {
    at: Option<String>,
}

pub(crate) async fn production_at(
    State(s): State<AppState>,
    Path(n): Path<String>,
    q: Result<Query<AtQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ProductionAt>, Problem> {
    let Query(q) = q.map_err(|e| Problem::bad_request(e.body_text()))?;
    let n = name(&n)?;
    let at = match &q.at {
        Some(t) => OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .map_err(|e| Problem::bad_request(format!("at {t:?} is not an RFC 3339 time: {e}")))?,
        None => OffsetDateTime::now_utc(),
    };
    let model = view_of(&s, &n).await?.model;
    Ok(Json(ProductionAt {
        model: n.to_string(),
        at: at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        version: model.in_production_at(at),
    }))
}
