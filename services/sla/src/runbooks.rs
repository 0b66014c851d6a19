//! Runbook runs (seed 001 §3.6): `goosectl runbook run` records what each step found and did,
//! so that the handling of an incident is part of the chain (`runbook_run/<uuid>`).

use crate::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use goose_domain::runbook::{RunbookEvent, RunbookRun};
use goose_ledger::{aggregate, Metadata};
use goose_platform::JsonBody;
use goose_runtime::auth::Caller;
use goose_runtime::problem::Problem;
use serde::{Deserialize, Serialize};

/// Whether a run's stream holds its record.
#[derive(Debug, Clone, Default)]
pub struct RunState {
    pub recorded: bool,
}

impl RunState {
    pub fn apply(&mut self, _e: &RunbookEvent) {
        self.recorded = true;
    }
}

goose_ledger::ledger_aggregate!(pub RunbookAgg(RunState), goose_domain::streams::RUNBOOK_RUN, RunbookEvent);

/// A recorded run, as listed.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct RecordedRun {
    pub id: String,
    pub run_by: String,
    /// When it was recorded (RFC 3339).
    pub at: String,
    /// Its event's ledger position.
    pub position: u64,
    #[serde(flatten)]
    pub run: RunbookRun,
}

pub(crate) async fn record(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(run): JsonBody<RunbookRun>,
) -> Result<(StatusCode, Json<RecordedRun>), Problem> {
    run.check().map_err(Problem::unprocessable)?;
    let id = uuid::Uuid::now_v7().to_string();
    let event = RunbookEvent::RunbookRunRecorded {
        id: id.clone(),
        run_by: caller.user.clone(),
        run,
    };
    let meta = Metadata::now(caller.user.clone());
    let done = aggregate::execute::<RunbookAgg, Problem>(&s.platform.ledger, &id, &meta, |cur| {
        if cur.0.recorded {
            return Err(Problem::conflict(format!("runbook run {id} exists")));
        }
        Ok(vec![event.clone()])
    })
    .await
    .map_err(|e| match e {
        aggregate::ExecuteError::Rejected(p) => p,
        aggregate::ExecuteError::Ledger(l) => goose_platform::ledger_problem(&l),
    })?;
    s.view.after_write(done.receipt, "sla").await;
    let run = s
        .view
        .read()
        .runbook_runs
        .get(&id)
        .cloned()
        .ok_or_else(|| {
            Problem::internal(format!(
                "runbook run {id} was recorded but is not read back"
            ))
        })?;
    tracing::info!(user = %caller.user, %id, runbook = %run.run.runbook, service = %run.run.service, "runbook run recorded");
    Ok((StatusCode::CREATED, Json(run)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunsQuery {
    service: Option<String>,
}

pub(crate) async fn list(
    State(s): State<AppState>,
    q: Result<Query<RunsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<RecordedRun>>, Problem> {
    let Query(q) = q.map_err(|e| Problem::bad_request(e.body_text()))?;
    let v = s.view.read();
    Ok(Json(
        v.runbook_runs
            .values()
            .filter(|r| q.service.as_ref().is_none_or(|svc| &r.run.service == svc))
            .cloned()
            .collect(),
    ))
}
