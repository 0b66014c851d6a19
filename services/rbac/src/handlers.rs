//! rbac's REST handlers: parse the request, run a command or read a view, answer.

use crate::api::{
    AssignRole, CreateUser, Decision, NewApiKey, SetTeams, TokenRequest, UserView, WhoAmI,
};
use crate::commands::{digest_hex, new_api_key, run_approval, run_user, UserAgg};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use goose_domain::approval::{ApprovalStatus, ApprovalView, CreateApproval, NewRequest};
use goose_domain::rbac::{Permission, Role, UserName};
use goose_ledger::aggregate::{self, ExecuteError};
use goose_ledger::Metadata;
use goose_platform::{execute_problem, ledger_problem, problem, JsonBody, OptionalJsonBody};
use goose_runtime::auth::{Caller, IssuedToken};
use goose_runtime::problem::Problem;
use serde::Deserialize;
use std::collections::BTreeMap;

type ApiResult<T> = Result<Json<T>, Problem>;

/// Counter: refused approval attempts that could not be recorded (each failed its request).
pub use goose_metrics::rbac::UNRECORDED_REFUSALS;

pub(crate) async fn token(
    State(s): State<AppState>,
    JsonBody(req): JsonBody<TokenRequest>,
) -> ApiResult<IssuedToken> {
    let refuse = || {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "unknown user or invalid API key",
        )
    };
    let name = UserName::parse(&req.user).map_err(|_| refuse())?;
    let (key_id, secret) = req
        .api_key
        .strip_prefix("gk_")
        .and_then(|k| k.split_once('_'))
        .ok_or_else(refuse)?;
    // Authentication reads the user's stream itself, not a view: a key revoked a moment ago
    // on another replica must not still buy a token.
    let user = aggregate::load::<UserAgg>(&s.platform.ledger, name.as_str())
        .await
        .map_err(|e| ledger_problem(&e))?
        .state
        .0;
    if !user.active || user.keys.get(key_id) != Some(&digest_hex(secret)) {
        return Err(refuse());
    }
    let roles: Vec<Role> = user.roles.iter().copied().collect();
    s.issuer
        .issue(name.as_str(), &roles, now_unix(), Some(key_id))
        .map(Json)
        .map_err(|e| Problem::internal(e.to_string()))
}

pub(crate) fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(crate) async fn keys(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "keys": [s.token_vkey] }))
}

pub(crate) async fn whoami(caller: Caller) -> Json<WhoAmI> {
    Json(WhoAmI {
        user: caller.user,
        roles: caller.roles,
        permissions: caller
            .permissions
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect(),
        teams: caller.teams,
    })
}

pub(crate) async fn roles() -> Json<serde_json::Value> {
    let roles: BTreeMap<&str, Vec<&str>> = Role::ALL
        .iter()
        .map(|r| {
            (
                r.as_str(),
                r.permissions().iter().map(Permission::as_str).collect(),
            )
        })
        .collect();
    let permissions: BTreeMap<&str, &str> = Permission::ALL
        .iter()
        .map(|p| (p.as_str(), p.description()))
        .collect();
    Json(serde_json::json!({ "roles": roles, "permissions": permissions }))
}

fn parse_user(name: &str) -> Result<UserName, Problem> {
    UserName::parse(name).map_err(|e| problem(&e))
}

pub(crate) async fn create_user(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateUser>,
) -> ApiResult<UserView> {
    let name = parse_user(&req.name)?;
    let actor = caller.user.clone();
    run_user(&s, &caller, &name, |u| {
        u.create_with_roles(name.clone(), &req.display_name, &req.roles, &actor)
    })
    .await
    .map(Json)
}

pub(crate) async fn list_users(State(s): State<AppState>) -> ApiResult<Vec<UserView>> {
    let view = s.users.read();
    Ok(Json(view.0.values().map(UserView::of).collect()))
}

pub(crate) async fn get_user(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<UserView> {
    let name = parse_user(&name)?;
    let found = |s: &AppState| s.users.read().0.get(name.as_str()).map(UserView::of);
    if let Some(u) = found(&s) {
        return Ok(Json(u));
    }
    s.users.catch_up(&s.platform).await?;
    found(&s)
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no user {name}")))
}

pub(crate) async fn assign_role(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<AssignRole>,
) -> ApiResult<UserView> {
    let name = parse_user(&name)?;
    let actor = caller.user.clone();
    run_user(&s, &caller, &name, |u| u.assign(req.role, &actor))
        .await
        .map(Json)
}

pub(crate) async fn revoke_role(
    State(s): State<AppState>,
    caller: Caller,
    Path((name, role)): Path<(String, String)>,
) -> ApiResult<UserView> {
    let name = parse_user(&name)?;
    let role: Role = role
        .parse()
        .map_err(|e: goose_domain::rbac::Error| problem(&e))?;
    let actor = caller.user.clone();
    let other_admins = other_admins(&s, &name).await?;
    run_user(&s, &caller, &name, |u| u.revoke(role, &actor, other_admins))
        .await
        .map(Json)
}

/// The active admins other than `name`, as committed now (a change elsewhere a moment ago
/// counts).
async fn other_admins(s: &AppState, name: &UserName) -> Result<usize, Problem> {
    s.users.catch_up(&s.platform).await?;
    Ok(s.users
        .read()
        .0
        .iter()
        .filter(|(n, u)| n.as_str() != name.as_str() && u.active && u.roles.contains(&Role::Admin))
        .count())
}

/// `POST /v1/users/{name}/deactivate`: roles and keys go; every token of the user is refused
/// at once in every service (when the event reaches it).
pub(crate) async fn deactivate_user(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<UserView> {
    let name = parse_user(&name)?;
    let actor = caller.user.clone();
    let other_admins = other_admins(&s, &name).await?;
    run_user(&s, &caller, &name, |u| u.deactivate(&actor, other_admins))
        .await
        .map(Json)
}

/// `POST /v1/users/{name}/reactivate`: active again, with no roles and no keys.
pub(crate) async fn reactivate_user(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<UserView> {
    let name = parse_user(&name)?;
    let actor = caller.user.clone();
    run_user(&s, &caller, &name, |u| u.reactivate(&actor))
        .await
        .map(Json)
}

pub(crate) async fn issue_key(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<NewApiKey> {
    let name = parse_user(&name)?;
    let (key_id, secret, api_key) = new_api_key();
    let digest = digest_hex(&secret);
    let actor = caller.user.clone();
    run_user(&s, &caller, &name, |u| {
        u.issue_key(&key_id, &digest, &actor)
    })
    .await?;
    Ok(Json(NewApiKey {
        user: name.to_string(),
        key_id,
        api_key,
    }))
}

pub(crate) async fn revoke_key(
    State(s): State<AppState>,
    caller: Caller,
    Path((name, key_id)): Path<(String, String)>,
) -> ApiResult<UserView> {
    let name = parse_user(&name)?;
    let actor = caller.user.clone();
    run_user(&s, &caller, &name, |u| u.revoke_key(&key_id, &actor))
        .await
        .map(Json)
}

pub(crate) async fn set_teams(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<SetTeams>,
) -> ApiResult<UserView> {
    let name = parse_user(&name)?;
    let actor = caller.user.clone();
    run_user(&s, &caller, &name, |u| u.set_teams(&req.teams, &actor))
        .await
        .map(Json)
}

pub(crate) async fn create_approval(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateApproval>,
) -> ApiResult<ApprovalView> {
    caller.require(req.kind.request_permission())?;
    let id = uuid::Uuid::now_v7().to_string();
    let meta = Metadata::now(caller.user.clone());
    let new = NewRequest {
        kind: req.kind,
        subject: &req.subject,
        impact: req.impact,
        reason: &req.reason,
        owner_teams: &req.owner_teams,
    };
    let done = run_approval(&s.platform, &s.approvals, &id, &meta, |a| {
        a.request(&caller.user, caller.permissions, &new, &s.policy)
    })
    .await
    .map_err(execute_problem)?;
    Ok(Json(ApprovalView {
        id,
        request: done.state.0,
    }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    status: Option<ApprovalStatus>,
}

pub(crate) async fn list_approvals(
    State(s): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Vec<ApprovalView>> {
    let Query(q) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let view = s.approvals.read();
    Ok(Json(
        view.0
            .iter()
            .filter(|(_, r)| q.status.is_none_or(|st| r.status == st))
            .map(|(id, r)| ApprovalView {
                id: id.clone(),
                request: r.clone(),
            })
            .collect(),
    ))
}

fn parse_id(id: &str) -> Result<String, Problem> {
    uuid::Uuid::parse_str(id)
        .map(|u| u.to_string())
        .map_err(|_| Problem::bad_request(format!("approval id {id:?} is not a UUID")))
}

pub(crate) async fn get_approval(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<ApprovalView> {
    let id = parse_id(&id)?;
    let found = |s: &AppState| {
        s.approvals.read().0.get(&id).map(|r| ApprovalView {
            id: id.clone(),
            request: r.clone(),
        })
    };
    if let Some(a) = found(&s) {
        return Ok(Json(a));
    }
    s.approvals.catch_up(&s.platform).await?;
    found(&s)
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no approval request {id}")))
}

async fn decide(
    s: AppState,
    caller: Caller,
    id: String,
    action: goose_domain::approval::Decision,
    body: Option<Decision>,
) -> ApiResult<ApprovalView> {
    let comment = body.map(|d| d.comment).unwrap_or_default();
    let id = parse_id(&id)?;
    let meta = Metadata::now(caller.user.clone());
    let result = run_approval(&s.platform, &s.approvals, &id, &meta, |a| {
        a.decide(
            action,
            &caller.user,
            caller.permissions,
            &caller.teams,
            &comment,
        )
    })
    .await;
    match result {
        Ok(done) => Ok(Json(ApprovalView {
            id,
            request: done.state.0,
        })),
        Err(ExecuteError::Rejected(refusal)) => {
            if refusal.is_recorded() {
                // The attempt itself goes on the record, with its actor.
                let event = refusal.as_event(&caller.user, action);
                let recorded = run_approval(&s.platform, &s.approvals, &id, &meta, |_| {
                    Ok(vec![event.clone()])
                })
                .await;
                if let Err(e) = recorded {
                    // No hole in the audit trail: an attempt that cannot be recorded is not
                    // answered as if it had been. Nothing was decided; the caller may retry.
                    tracing::error!(error = %e, user = %caller.user, %id, "could not record a refused approval attempt");
                    UNRECORDED_REFUSALS.counter(&[]).increment(1);
                    return Err(Problem::unavailable(format!(
                        "the attempt was refused ({refusal}) but the refusal could not be recorded: {e}; retry"
                    ))
                    .retry_after(1));
                }
                tracing::info!(user = %caller.user, %id, action = action.as_str(), reason = %refusal, "approval attempt refused");
            }
            Err(problem(&refusal))
        }
        Err(e) => Err(execute_problem(e)),
    }
}

pub(crate) async fn grant(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<Decision>,
) -> ApiResult<ApprovalView> {
    decide(s, caller, id, goose_domain::approval::Decision::Grant, body).await
}

pub(crate) async fn reject(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<Decision>,
) -> ApiResult<ApprovalView> {
    decide(
        s,
        caller,
        id,
        goose_domain::approval::Decision::Reject,
        body,
    )
    .await
}
