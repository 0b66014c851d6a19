//! The sla service's REST handlers.

use crate::api::{AppliedSlo, MeasurementBatch, Recorded};
use crate::views::SloEntry;
use crate::{AppState, BatchAgg, SloAgg, MAX_MINUTES_PER_BATCH, MAX_SAMPLES_PER_BATCH};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::Json;
use goose_domain::catalog::ServiceName;
use goose_domain::sla::status::SloStatus;
use goose_domain::sla::{measure, openslo, status, MeasurementEvent};
use goose_ledger::aggregate;
use goose_ledger::Metadata;
use goose_platform::{execute_problem, problem, JsonBody};
use goose_runtime::auth::Caller;
use goose_runtime::problem::Problem;
use serde::Deserialize;
use std::convert::Infallible;

/// The body as UTF-8 text; a body axum refused or that is not UTF-8 is problem+json.
fn body_text(
    body: &Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<&str, Problem> {
    let body = body
        .as_ref()
        .map_err(|e| Problem::new(e.status(), "invalid request body", e.body_text()))?;
    std::str::from_utf8(body).map_err(|e| Problem::bad_request(format!("body is not UTF-8: {e}")))
}

/// Refuses a service the catalog does not know (after catching up once: it may have been
/// onboarded a moment ago through the registry).
async fn known_service(s: &AppState, service: &str) -> Result<(), Problem> {
    ServiceName::parse(service).map_err(Problem::bad_request)?;
    if !known_service_quiet(s, service).await? {
        return Err(Problem::unprocessable(format!(
            "service {service} is not in the catalog; onboard it first"
        )));
    }
    Ok(())
}

/// Whether the catalog knows `service` (catching up once); a name that is not a service
/// name is simply unknown.
pub(crate) async fn known_service_quiet(s: &AppState, service: &str) -> Result<bool, Problem> {
    let Ok(name) = ServiceName::parse(service) else {
        return Ok(false);
    };
    if s.view.read().catalog.get(&name).is_some() {
        return Ok(true);
    }
    s.view.catch_up(&s.platform).await?;
    Ok(s.view.read().catalog.get(&name).is_some())
}

pub(crate) async fn apply(
    State(s): State<AppState>,
    caller: Caller,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<Vec<AppliedSlo>>, Problem> {
    let text = body_text(&body)?;
    let slos = openslo::parse(text).map_err(|e| problem(&e))?;
    if slos.is_empty() {
        return Err(Problem::unprocessable(
            "the documents hold no SLO (kind: SLO)".to_owned(),
        ));
    }
    // Every SLO is checked before any is recorded.
    for slo in &slos {
        known_service(&s, &slo.service).await?;
    }
    let meta = Metadata::now(caller.user.clone());
    let mut applied = Vec::new();
    for slo in &slos {
        let done =
            aggregate::execute::<SloAgg, Infallible>(&s.platform.ledger, &slo.name, &meta, |cur| {
                Ok(cur.0.apply_definition(slo, text, &caller.user))
            })
            .await
            .map_err(execute_problem)?;
        s.view.after_write(done.receipt, "sla").await;
        let version = match done.receipt {
            Some(r) => r.stream_version,
            None => s.view.read().slos.get(&slo.name).map_or(0, |e| e.version),
        };
        applied.push(AppliedSlo {
            name: slo.name.clone(),
            version,
            changed: done.receipt.is_some(),
        });
    }
    tracing::info!(user = %caller.user, slos = ?applied.iter().map(|a| &a.name).collect::<Vec<_>>(), "SLOs applied");
    Ok(Json(applied))
}

pub(crate) async fn list(State(s): State<AppState>) -> Json<Vec<SloEntry>> {
    Json(s.view.read().slos.values().cloned().collect())
}

async fn entry(s: &AppState, name: &str) -> Result<SloEntry, Problem> {
    if !s.view.read().slos.contains_key(name) {
        s.view.catch_up(&s.platform).await?;
    }
    s.view
        .read()
        .slos
        .get(name)
        .cloned()
        .ok_or_else(|| Problem::not_found(format!("no SLO named {name}")))
}

pub(crate) async fn get_slo(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<SloEntry>, Problem> {
    Ok(Json(entry(&s, &name).await?))
}

#[derive(Debug, Deserialize)]
pub(crate) struct StatusQuery {
    /// The moment (RFC 3339); now when absent.
    #[serde(default, with = "time::serde::rfc3339::option")]
    at: Option<time::OffsetDateTime>,
}

pub(crate) async fn slo_status(
    State(s): State<AppState>,
    Path(name): Path<String>,
    q: Result<Query<StatusQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SloStatus>, Problem> {
    let Query(q) = q.map_err(|e| Problem::bad_request(e.body_text()))?;
    Ok(Json(
        status_at(&s, &name, q.at.map(time::OffsetDateTime::unix_timestamp)).await?,
    ))
}

/// The status of SLO `name` at unix time `at` (now when None): REST and gRPC.
pub(crate) async fn status_at(
    s: &AppState,
    name: &str,
    at: Option<i64>,
) -> Result<SloStatus, Problem> {
    let e = entry(s, name).await?;
    let at = at.unwrap_or_else(|| time::OffsetDateTime::now_utc().unix_timestamp());
    let view = s.view.read();
    let summaries = view
        .summaries
        .get(&e.slo.service)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let st = status::status(&e.slo, summaries, at).map_err(|e| problem(&e))?;
    if st.undecodable_summaries > 0 {
        tracing::error!(slo = %name, count = st.undecodable_summaries, "minute summaries that do not decode were left out of a status");
    }
    Ok(st)
}

fn check_batch_id(id: &str) -> Result<(), Problem> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Problem::bad_request(format!(
            "batch_id {id:?}: 1 to 64 of A-Z, a-z, 0-9, '-' and '_'"
        )))
    }
}

pub(crate) async fn measurements(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(batch): JsonBody<MeasurementBatch>,
) -> Result<Json<Recorded>, Problem> {
    if batch.samples.is_empty() {
        return Err(Problem::unprocessable("samples: at least one".to_owned()));
    }
    if batch.samples.len() > MAX_SAMPLES_PER_BATCH {
        return Err(Problem::unprocessable(format!(
            "samples: {} in one batch; at most {MAX_SAMPLES_PER_BATCH}",
            batch.samples.len()
        )));
    }
    let batch_id = match batch.batch_id {
        Some(id) => {
            check_batch_id(&id)?;
            id
        }
        None => uuid::Uuid::now_v7().simple().to_string(),
    };
    known_service(&s, &batch.service).await?;
    if let Some(v) = &batch.version {
        goose_domain::version::Version::parse(v)
            .map_err(|e| Problem::unprocessable(format!("version: {e}")))?;
    }
    let mut summaries =
        measure::summarize(&batch.service, &batch.samples).map_err(|e| problem(&e))?;
    for s in &mut summaries {
        s.version.clone_from(&batch.version);
    }
    if summaries.len() > MAX_MINUTES_PER_BATCH {
        return Err(Problem::unprocessable(format!(
            "samples: they span {} minutes; a batch covers at most {MAX_MINUTES_PER_BATCH} (send a day or less per batch)",
            summaries.len()
        )));
    }
    let meta = Metadata::now(caller.user.clone());
    let done = aggregate::execute::<BatchAgg, Infallible>(
        &s.platform.ledger,
        &MeasurementEvent::stream_id(&batch.service, &batch_id),
        &meta,
        |cur| Ok(cur.0.record(&summaries)),
    )
    .await
    .map_err(execute_problem)?;
    s.view.after_write(done.receipt, "sla").await;
    Ok(Json(Recorded {
        duplicate: done.receipt.is_none(),
        batch_id,
        samples: batch.samples.len() as u64,
        minutes: summaries.len() as u64,
    }))
}
