//! The use-case registry's REST handlers: create, submit (the rbac approval raised for the
//! submitter), approve / reject (decided in rbac as the caller, then recorded), deploy (on
//! models in production), deprecate.

use crate::api::{CreateUseCase, Decide, SubmitUseCase};
use crate::{AppState, UseCaseAgg};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use goose_domain::approval::{ApprovalKind, ApprovalStatus};
use goose_domain::model::{Approval, ModelName};
use goose_domain::usecase::{UseCase, UseCaseError, UseCaseEvent, UseCaseSpec};
use goose_ledger::{aggregate, Metadata};
use goose_platform::approvals::bearer;
use goose_platform::{execute_problem, problem, JsonBody};
use goose_runtime::auth::Caller;
use goose_runtime::problem::Problem;
use time::OffsetDateTime;

async fn record(
    s: &AppState,
    caller: &Caller,
    name: &str,
    decide: impl Fn(&UseCase) -> Result<Vec<UseCaseEvent>, UseCaseError>,
) -> Result<UseCase, Problem> {
    goose_domain::usecase::check_name(name).map_err(|e| problem(&e))?;
    let meta = Metadata::now(caller.user.clone());
    let done =
        aggregate::execute::<UseCaseAgg, UseCaseError>(&s.platform.ledger, name, &meta, |u| {
            decide(&u.0)
        })
        .await
        .map_err(execute_problem)?;
    s.view.after_write(done.receipt, "registry").await;
    let mut u = done.state.0;
    for e in &done.events {
        u.apply(e);
    }
    Ok(u)
}

/// The use case as the view has it (after catching up when it is not there yet).
async fn current(s: &AppState, name: &str) -> Result<UseCase, Problem> {
    if !s.view.read().usecases.contains_key(name) {
        s.view.catch_up(&s.platform).await?;
    }
    s.view
        .read()
        .usecases
        .get(name)
        .filter(|u| u.state.is_some())
        .cloned()
        .ok_or_else(|| Problem::not_found(format!("no use case {name}")))
}

pub(crate) async fn create(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateUseCase>,
) -> Result<(StatusCode, Json<UseCase>), Problem> {
    let spec = UseCaseSpec {
        title: req.title,
        description: req.description,
        impact: req.impact,
        models: req.models,
        owner: req.owner,
    };
    let now = OffsetDateTime::now_utc();
    let u = record(&s, &caller, &req.name, |u| {
        u.create(&req.name, spec.clone(), &caller.user, now)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(u)))
}

pub(crate) async fn list(State(s): State<AppState>) -> Json<Vec<UseCase>> {
    Json(
        s.view
            .read()
            .usecases
            .values()
            .filter(|u| u.state.is_some())
            .cloned()
            .collect(),
    )
}

pub(crate) async fn show(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<UseCase>, Problem> {
    Ok(Json(current(&s, &name).await?))
}

fn subject(name: &str) -> String {
    format!("usecase:{name}")
}

pub(crate) async fn submit(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<SubmitUseCase>,
) -> Result<Json<UseCase>, Problem> {
    let u = current(&s, &name).await?;
    // Refused before anything is raised in rbac when the state does not allow it.
    u.submit("-", 1, &caller.user, OffsetDateTime::now_utc())
        .map_err(|e| problem(&e))?;
    let impact = u
        .spec
        .as_ref()
        .map_or(goose_domain::approval::ImpactLevel::Medium, |spec| {
            spec.impact
        });
    let owner_teams =
        goose_domain::rbac::owner_teams(u.spec.as_ref().and_then(|s| s.owner.as_deref()));
    let owned: Vec<goose_domain::ownership::Owned<'_>> = owner_teams
        .iter()
        .map(|t| goose_domain::ownership::Owned {
            service: name.as_str(),
            owner: Some(t),
        })
        .collect();
    goose_domain::ownership::may_act("submit", &caller.user, &caller.roles, &caller.teams, &owned)
        .map_err(|e| Problem::forbidden(e.to_string()))?;
    let id = match (req.approval_id.clone(), &s.approvals) {
        (Some(id), _) => id,
        (None, Some(requester)) => {
            let reason = if req.reason.is_empty() {
                format!("use case {name}")
            } else {
                req.reason.clone()
            };
            requester
                .request(
                    &bearer(&headers)?,
                    ApprovalKind::UseCase,
                    &subject(&name),
                    impact,
                    &reason,
                    &owner_teams,
                )
                .await?
        }
        (None, None) => {
            return Err(Problem::unprocessable(format!(
                "raise an approval with POST /v1/approvals {{\"kind\": \"use_case\", \"subject\": \"{}\", \"impact\": \"{impact}\"}} and pass its approval_id",
                subject(&name)
            )))
        }
    };
    // The request as rbac recorded it: ours, and how many approvers it needs.
    s.view.catch_up(&s.platform).await?;
    let required = {
        let v = s.view.read();
        let a = v
            .approvals
            .get(&id)
            .filter(|a| a.status != ApprovalStatus::New)
            .ok_or_else(|| Problem::unprocessable(format!("no approval request {id}")))?;
        if a.kind != Some(ApprovalKind::UseCase) || a.subject != subject(&name) {
            return Err(Problem::unprocessable(format!(
                "approval {id} is for {}, not use case {name}",
                a.subject
            )));
        }
        if a.requester != caller.user {
            return Err(Problem::unprocessable(format!(
                "approval {id} was raised by {}, not by the submitter",
                a.requester
            )));
        }
        goose_domain::ownership::approval_names_owners(&owner_teams, &a.owner_teams)
            .map_err(|why| Problem::unprocessable(format!("approval {id}: {why}")))?;
        a.required_approvers
    };
    let now = OffsetDateTime::now_utc();
    Ok(Json(
        record(&s, &caller, &name, |u| {
            u.submit(&id, required, &caller.user, now)
        })
        .await?,
    ))
}

/// Grants or rejects the use case's approval in rbac as the caller, then records what rbac
/// decided: approved once enough distinct people granted, back to draft when rejected.
async fn decide(
    s: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    name: &str,
    grant: bool,
    comment: &str,
) -> Result<UseCase, Problem> {
    let u = current(s, name).await?;
    let Some(id) = u
        .approval_id
        .clone()
        .filter(|_| u.state == Some(goose_domain::usecase::UseCaseState::Submitted))
    else {
        return Err(Problem::unprocessable(format!(
            "use case {name} is not waiting for an approval"
        )));
    };
    let Some(requester) = &s.approvals else {
        return Err(Problem::unprocessable(format!(
            "decide approval {id} in rbac (POST /v1/approvals/{id}/grant); this registry has no rbac URL"
        )));
    };
    requester
        .decide(&bearer(headers)?, &id, grant, comment)
        .await?;
    s.view.catch_up(&s.platform).await?;
    let a = s
        .view
        .read()
        .approvals
        .get(&id)
        .cloned()
        .ok_or_else(|| Problem::unprocessable(format!("no approval request {id}")))?;
    let now = OffsetDateTime::now_utc();
    match a.status {
        ApprovalStatus::Approved => {
            let approval = Approval {
                approval_id: id.clone(),
                approvers: a.approvers.clone(),
            };
            record(s, caller, name, |u| u.approve(approval.clone(), now)).await
        }
        ApprovalStatus::Rejected => {
            let by = a.rejected_by.clone().unwrap_or_else(|| caller.user.clone());
            let reason = a.rejection_reason.clone().unwrap_or_default();
            record(s, caller, name, |u| u.reject(&by, &reason)).await
        }
        // Granted by this caller; more approvers are needed.
        _ => current(s, name).await,
    }
}

pub(crate) async fn approve(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<Decide>,
) -> Result<Json<UseCase>, Problem> {
    Ok(Json(
        decide(&s, &caller, &headers, &name, true, &req.comment).await?,
    ))
}

pub(crate) async fn reject(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<Decide>,
) -> Result<Json<UseCase>, Problem> {
    if req.comment.trim().is_empty() {
        return Err(Problem::bad_request("a rejection needs a reason (comment)"));
    }
    Ok(Json(
        decide(&s, &caller, &headers, &name, false, &req.comment).await?,
    ))
}

pub(crate) async fn deploy(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<UseCase>, Problem> {
    current(&s, &name).await?;
    s.view.catch_up(&s.platform).await?;
    let models = s.view.read().models.clone();
    let now = OffsetDateTime::now_utc();
    Ok(Json(
        record(&s, &caller, &name, |u| {
            u.deploy(|m: &ModelName| models.get(m.as_str()), &caller.user, now)
        })
        .await?,
    ))
}

pub(crate) async fn deprecate(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<crate::api::Reason>,
) -> Result<Json<UseCase>, Problem> {
    current(&s, &name).await?;
    let now = OffsetDateTime::now_utc();
    Ok(Json(
        record(&s, &caller, &name, |u| {
            u.deprecate(&req.reason, &caller.user, now)
        })
        .await?,
    ))
}
