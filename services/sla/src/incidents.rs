//! Incident handlers: list and read, report by hand, and the lifecycle steps.

use crate::views::IncidentView;
use crate::{AppState, IncidentAgg};
use axum::extract::{Path, Query, State};
use axum::Json;
use goose_domain::sla::incident::{Action, IncidentError, IncidentReport, IncidentStatus};
use goose_ledger::aggregate;
use goose_ledger::Metadata;
use goose_platform::{execute_problem, JsonBody};
use goose_runtime::auth::Caller;
use goose_runtime::problem::Problem;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    status: Option<String>,
}

pub(crate) async fn list(
    State(s): State<AppState>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<IncidentView>>, Problem> {
    let Query(q) = q.map_err(|e| Problem::bad_request(e.body_text()))?;
    let status: Option<IncidentStatus> = match q.status.as_deref() {
        None => None,
        Some(s) => Some(
            serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| {
                Problem::bad_request(format!(
                    "status {s:?}: open, acknowledged, mitigated or resolved"
                ))
            })?,
        ),
    };
    Ok(Json(
        s.view
            .read()
            .incidents
            .values()
            .filter(|i| status.is_none_or(|st| i.status == st))
            .cloned()
            .collect(),
    ))
}

async fn find(s: &AppState, id: &str) -> Result<IncidentView, Problem> {
    if !s.view.read().incidents.contains_key(id) {
        s.view.catch_up(&s.platform).await?;
    }
    s.view
        .read()
        .incidents
        .get(id)
        .cloned()
        .ok_or_else(|| Problem::not_found(format!("no incident {id}")))
}

pub(crate) async fn get(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<IncidentView>, Problem> {
    Ok(Json(find(&s, &id).await?))
}

/// A report by hand: its own incident (cause `manual:<id>`).
pub(crate) async fn report(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(report): JsonBody<IncidentReport>,
) -> Result<(axum::http::StatusCode, Json<IncidentView>), Problem> {
    if let Some(service) = &report.service {
        goose_domain::catalog::ServiceName::parse(service).map_err(Problem::bad_request)?;
    }
    let id = uuid::Uuid::now_v7().to_string();
    let cause = format!("manual:{id}");
    let meta = Metadata::now(caller.user.clone());
    let done = aggregate::execute::<IncidentAgg, IncidentError>(
        &s.platform.ledger,
        &cause,
        &meta,
        |cur| cur.0.occur(&cause, &id, &report, &caller.user),
    )
    .await
    .map_err(execute_problem)?;
    s.view.after_write(done.receipt, "sla").await;
    Ok((axum::http::StatusCode::CREATED, Json(find(&s, &id).await?)))
}

/// What a lifecycle step says: what was done or found (mitigate, resolve, notes), or why an
/// incident is reopened.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentNote {
    #[schema(min_length = 1, max_length = 10000)]
    pub note: String,
}

/// Who takes an incident.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentAssignee {
    #[schema(min_length = 1, max_length = 200)]
    pub assignee: String,
}

fn bounded(value: String, field: &str, max: usize) -> Result<String, Problem> {
    if value.is_empty() || value.chars().count() > max {
        return Err(Problem::bad_request(format!(
            "{field}: 1 to {max} characters"
        )));
    }
    Ok(value)
}

async fn step(
    s: &AppState,
    caller: &Caller,
    id: &str,
    action: Action,
) -> Result<Json<IncidentView>, Problem> {
    let cause = find(s, id).await?.cause;
    let meta = Metadata::now(caller.user.clone());
    let done = aggregate::execute::<IncidentAgg, IncidentError>(
        &s.platform.ledger,
        &cause,
        &meta,
        |cur| cur.0.act(id, action.clone(), &caller.user),
    )
    .await
    .map_err(execute_problem)?;
    s.view.after_write(done.receipt, "sla").await;
    Ok(Json(find(s, id).await?))
}

pub(crate) async fn acknowledge(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<IncidentView>, Problem> {
    step(&s, &caller, &id, Action::Acknowledge).await
}

pub(crate) async fn assign(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<IncidentAssignee>,
) -> Result<Json<IncidentView>, Problem> {
    let assignee = bounded(body.assignee, "assignee", 200)?;
    step(&s, &caller, &id, Action::Assign(assignee)).await
}

/// The steps that carry a note (what was done or found; why it is reopened): a handler each
/// that checks the note and takes the step.
macro_rules! noted_steps {
    ($($name:ident => $action:ident),* $(,)?) => {$(
        pub(crate) async fn $name(
            State(s): State<AppState>,
            caller: Caller,
            Path(id): Path<String>,
            JsonBody(body): JsonBody<IncidentNote>,
        ) -> Result<Json<IncidentView>, Problem> {
            let note = bounded(body.note, "note", 10_000)?;
            step(&s, &caller, &id, Action::$action(note)).await
        }
    )*};
}

noted_steps!(add_note => Note, mitigate => Mitigate, resolve => Resolve, reopen => Reopen);
