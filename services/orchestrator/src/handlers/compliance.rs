//! Demotion: a compliant version back to sandbox, with its reason, by someone who may decide
//! on compliance (`promotion.approve`).

use crate::engine::Engine;
use crate::{views, AppState};
use axum::extract::{Path, State};
use axum::Json;
use goose_domain::catalog::ServiceName;
use goose_domain::compliance::ComplianceState;
use goose_domain::demotion::{ComplianceEvent, ComplianceRecord, Demote};
use goose_domain::streams;
use goose_domain::version::Version;
use goose_ledger::aggregate;
use goose_ledger::Metadata;
use goose_platform::{execute_problem, problem, JsonBody};
use goose_runtime::auth::Caller;
use goose_runtime::problem::Problem;
use serde::{Deserialize, Serialize};

goose_ledger::ledger_aggregate!(
    pub(crate) ComplianceAgg(ComplianceRecord),
    streams::COMPLIANCE,
    ComplianceEvent
);

/// Why a version is demoted.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DemoteRequest {
    pub reason: String,
}

/// A demotion as recorded.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Demoted {
    pub service: String,
    pub version: String,
    pub state: ComplianceState,
    pub reason: String,
    /// Services that depend on this one (their own compliance is not changed).
    pub dependants: Vec<String>,
    /// The event that records it.
    #[schema(value_type = Object)]
    pub event: goose_domain::gates::FactRef,
}

pub(crate) async fn demote(
    State(s): State<AppState>,
    caller: Caller,
    Path((service, version)): Path<(String, String)>,
    JsonBody(req): JsonBody<DemoteRequest>,
) -> Result<Json<Demoted>, Problem> {
    let name = ServiceName::parse(&service).map_err(Problem::bad_request)?;
    let version = Version::parse(&version).map_err(|e| problem(&e))?;
    Ok(Json(
        demote_version(&s.engine, &name, &version, &req.reason, &caller.user).await?,
    ))
}

/// Demotes `service@version` to sandbox (what the API and the incident reactor do).
pub(crate) async fn demote_version(
    engine: &Engine,
    name: &ServiceName,
    version: &Version,
    reason: &str,
    actor: &str,
) -> Result<Demoted, Problem> {
    // The state as committed now (a promotion may have just finished on another replica).
    let views = engine.views.handle();
    views.catch_up(&engine.platform).await?;
    let (current, dependants) = {
        let data = engine.views.read();
        let current = data
            .compliance
            .get(&(name.to_string(), version.to_string()))
            .map(|(state, _)| *state)
            .unwrap_or_default();
        let dependants: Vec<String> = data
            .graph()
            .dependants(name)
            .into_iter()
            .map(|d| d.to_string())
            .collect();
        (current, dependants)
    };
    let id = format!("{name}@{version}");
    let meta = Metadata::now(actor.to_owned());
    let ask = Demote {
        service: name.as_str(),
        version: version.as_str(),
        current,
        reason,
        actor,
        dependants: dependants.clone(),
    };
    let done = aggregate::execute::<ComplianceAgg, _>(&engine.platform.ledger, &id, &meta, |r| {
        r.0.demote(&ask)
    })
    .await
    .map_err(execute_problem)?;
    views
        .after_write(done.receipt, "orchestrator demotion")
        .await;
    let recorded = match done.receipt {
        Some(r) => engine
            .platform
            .ledger
            .read_all(r.last_position, 1)
            .await
            .map_err(|e| goose_platform::ledger_problem(&e))?,
        None => Vec::new(),
    };
    let event = recorded
        .first()
        .map(|ev| views::fact_of("demotion", ev, format!("{id} demoted")))
        .unwrap_or_default();
    tracing::warn!(user = %actor, service = %name, %version, %reason, ?dependants, "version demoted to sandbox");
    Ok(Demoted {
        service: name.to_string(),
        version: version.to_string(),
        state: ComplianceState::Sandbox,
        reason: reason.trim().to_owned(),
        dependants,
        event,
    })
}
