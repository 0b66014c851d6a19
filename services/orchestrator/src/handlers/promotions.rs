//! Promotion handlers: request, list, read, explain, compliance, policy.

use crate::api::*;
use crate::engine::{PromotionAgg, StartError};
use crate::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use goose_domain::approval::ImpactLevel;
use goose_domain::catalog::ServiceName;
use goose_domain::compliance::ComplianceState;
use goose_domain::ownership::{may_request, Owned};
use goose_domain::policy::GateType;
use goose_domain::promotion::{compute_promotion_order, Requested, TargetSpec};
use goose_domain::rbac::TeamName;
use goose_domain::version::Version;
use goose_ledger::aggregate::{self};
use goose_ledger::StreamId;
use goose_platform::{json_problem, ledger_problem};
use goose_runtime::auth::Caller;
use goose_runtime::problem::Problem;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

type ApiResult<T> = Result<Json<T>, Problem>;

pub(crate) use goose_platform::approvals::bearer;

/// Waits until the read models have applied everything in the ledger now: a service
/// onboarded a moment ago through another process is known before a request is refused.
pub(crate) async fn catch_up(s: &AppState) -> Result<(), Problem> {
    s.engine.views.handle().catch_up(&s.engine.platform).await
}

pub(crate) fn unprocessable(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "rejected", detail)
}

pub(crate) fn start_problem(e: StartError) -> Problem {
    match e {
        StartError::Locked { .. } => Problem::conflict(e.to_string()),
        StartError::Ledger(l) => ledger_problem(&l),
    }
}

/// The targets of `members`, in promotion order, with their catalog dependencies.
pub(crate) fn targets_of(
    s: &AppState,
    members: &[(String, String)],
    extra: &DependencyRefs,
    evidence_refs: &[String],
) -> Result<Vec<TargetSpec>, Problem> {
    let graph = s.engine.views.graph();
    let data = s.engine.views.read();
    let names: Vec<ServiceName> = members
        .iter()
        .map(|(n, _)| ServiceName::parse(n).map_err(Problem::bad_request))
        .collect::<Result<_, _>>()?;
    let order =
        compute_promotion_order(&graph, &names).map_err(|e| unprocessable(e.to_string()))?;
    let mut specs = Vec::with_capacity(order.len());
    for name in order {
        let version = members
            .iter()
            .find(|(n, _)| n == name.as_str())
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        for r in extra.required.iter().chain(&extra.optional) {
            let n = ServiceName::parse(r).map_err(Problem::bad_request)?;
            if data.catalog.get(&n).is_none() {
                return Err(unprocessable(format!(
                    "dependency {r} is not in the catalog"
                )));
            }
        }
        if !evidence_refs.is_empty() {
            let entries = data
                .evidence
                .get(&(name.to_string(), version.clone()))
                .map(Vec::as_slice)
                .unwrap_or_default();
            let unknown: Vec<&str> = evidence_refs
                .iter()
                .filter(|r| {
                    !entries
                        .iter()
                        .any(|e| e.record.id == **r || e.record.digest == **r)
                })
                .map(String::as_str)
                .collect();
            if !unknown.is_empty() {
                return Err(unprocessable(format!(
                    "evidence_refs not found for {name}@{version}: {}",
                    unknown.join(", ")
                )));
            }
        }
        specs.push(TargetSpec {
            service: name.to_string(),
            version,
            dependencies: graph
                .dependencies(&name)
                .iter()
                .map(ToString::to_string)
                .collect(),
            required: extra.required.clone(),
            optional: extra.optional.clone(),
            evidence_refs: evidence_refs.to_vec(),
            owner: data
                .catalog
                .get(&name)
                .and_then(|e| e.definition.owner.clone()),
        });
    }
    Ok(specs)
}

/// Locks, approval request, the request event: all or (after releasing the locks) nothing.
pub(crate) async fn start(
    s: &AppState,
    caller: &Caller,
    token: &str,
    targets: Vec<TargetSpec>,
    package: Option<String>,
    impact: Option<ImpactLevel>,
    reason: String,
) -> Result<PromotionView, Problem> {
    if reason.len() > 4096 {
        return Err(Problem::bad_request(
            "reason must be at most 4096 characters",
        ));
    }
    // Ownership, from the catalog and the caller's teams as known now; both are recorded
    // with the request, so the decision can be explained and re-checked.
    let owned: Vec<Owned<'_>> = targets
        .iter()
        .map(|t| Owned {
            service: &t.service,
            owner: t.owner.as_ref(),
        })
        .collect();
    may_request(&caller.user, &caller.roles, &caller.teams, &owned).map_err(|e| {
        tracing::info!(user = %caller.user, reason = %e, "promotion refused: not the owner");
        Problem::forbidden(e.to_string())
    })?;
    let owner_teams: Vec<TeamName> = targets
        .iter()
        .filter_map(|t| t.owner.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let id = uuid::Uuid::now_v7().to_string();
    let services: Vec<String> = targets.iter().map(|t| t.service.clone()).collect();
    s.engine
        .acquire_locks(&id, &services, &caller.user)
        .await
        .map_err(start_problem)?;
    let impact = s.engine.impact(impact);
    let approval_id = if s.engine.policy.approval_check == GateType::Manual {
        let subject = format!("promotion:{id}");
        let what = match &package {
            Some(p) => format!("package {p}: {} services", targets.len()),
            None => targets
                .iter()
                .map(|t| format!("{}@{}", t.service, t.version))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let text = if reason.is_empty() {
            what
        } else {
            format!("{what}: {reason}")
        };
        match s
            .approvals
            .request(
                token,
                goose_domain::approval::ApprovalKind::Promotion,
                &subject,
                impact,
                &text,
                &owner_teams,
            )
            .await
        {
            Ok(a) => Some(a),
            Err(p) => {
                s.engine
                    .release_locks(&id, &services, "the approval request failed")
                    .await;
                return Err(p);
            }
        }
    } else {
        None
    };
    let request = Requested {
        targets,
        requester: caller.user.clone(),
        requester_teams: caller.teams.clone(),
        package,
        approval_id,
        impact,
        policy: (*s.engine.policy).clone(),
        policy_digest: s.engine.policy_digest.clone(),
        reason,
        requested_at: OffsetDateTime::now_utc(),
    };
    match s.engine.record_request(&id, request).await {
        Ok(promotion) => {
            tracing::info!(user = %caller.user, promotion = %id, targets = services.len(), "promotion requested");
            Ok(PromotionView { id, promotion })
        }
        Err(e) => {
            s.engine
                .release_locks(&id, &services, "the request could not be recorded")
                .await;
            Err(ledger_problem(&e))
        }
    }
}

/// A version must be valid and follow the org-config's `packaging.version_scheme` (semver
/// or calver): 400 for an invalid one, 422 naming the rule.
pub(crate) fn in_scheme(s: &AppState, v: &str) -> Result<(), Problem> {
    let scheme = s.engine.views.read().org.packaging.version_scheme;
    let version = Version::parse(v).map_err(|e| goose_platform::problem(&e))?;
    version.conforms_to(scheme).map_err(|why| {
        Problem::unprocessable(format!(
            "{why}: org-config packaging.version_scheme is {}",
            serde_json::to_value(scheme)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        ))
    })
}

pub(crate) async fn request_promotion(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Json<PromotionRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<PromotionView>), Problem> {
    let Json(req) = body.map_err(json_problem)?;
    let token = bearer(&headers)?;
    if req.target_state != ComplianceState::Compliant {
        return Err(unprocessable(format!(
            "target_state {} is not reachable by a promotion: promotions move versions to compliant",
            req.target_state
        )));
    }
    let service = ServiceName::parse(&req.service).map_err(Problem::bad_request)?;
    if req.evidence_refs.len() > 256 {
        return Err(Problem::bad_request("at most 256 evidence_refs"));
    }
    // The catalog and the org's version scheme as committed now.
    catch_up(&s).await?;
    in_scheme(&s, &req.version)?;
    if s.engine.views.read().catalog.get(&service).is_none() {
        return Err(unprocessable(format!(
            "service {service} is not in the catalog; onboard it first"
        )));
    }
    let targets = targets_of(
        &s,
        &[(service.to_string(), req.version.clone())],
        &req.dependencies,
        &req.evidence_refs,
    )?;
    let view = start(&s, &caller, &token, targets, None, req.impact, req.reason).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    status: Option<String>,
    package: Option<String>,
}

pub(crate) async fn list_promotions(
    State(s): State<AppState>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Vec<PromotionView>> {
    let Query(q) = q.map_err(|e| Problem::bad_request(e.body_text()))?;
    let finished = match q.status.as_deref() {
        None => None,
        Some("running") => Some(false),
        Some("finished") => Some(true),
        Some(other) => {
            return Err(Problem::bad_request(format!(
                "status {other:?} must be running or finished"
            )))
        }
    };
    let data = s.engine.views.read();
    Ok(Json(
        data.promotions
            .iter()
            .filter(|(_, p)| p.request.is_some())
            .filter(|(_, p)| finished.is_none_or(|f| p.is_finished() == f))
            .filter(|(_, p)| {
                q.package.as_ref().is_none_or(|pk| {
                    p.request.as_ref().and_then(|r| r.package.as_ref()) == Some(pk)
                })
            })
            .map(|(id, p)| PromotionView {
                id: id.clone(),
                promotion: p.clone(),
            })
            .collect(),
    ))
}

pub(crate) fn parse_id(what: &str, id: &str) -> Result<String, Problem> {
    uuid::Uuid::parse_str(id)
        .map(|u| u.to_string())
        .map_err(|_| Problem::bad_request(format!("{what} id {id:?} is not a UUID")))
}

pub(crate) async fn get_promotion(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<PromotionView> {
    let id = parse_id("promotion", &id)?;
    let p = aggregate::load::<PromotionAgg>(&s.engine.platform.ledger, &id)
        .await
        .map_err(|e| ledger_problem(&e))?;
    if p.version == 0 {
        return Err(Problem::not_found(format!("no promotion {id}")));
    }
    Ok(Json(PromotionView {
        id,
        promotion: p.state.0,
    }))
}

/// One recorded decision.
#[derive(Debug, Serialize)]
pub(crate) struct ExplainedEvent {
    position: u64,
    event_id: String,
    event_type: String,
    /// SHA3-256 of the event's record (hex).
    digest: String,
    actor: String,
    #[serde(with = "time::serde::rfc3339")]
    recorded_at: OffsetDateTime,
    event: serde_json::Value,
}

/// Every recorded event of the stream `(aggregate, id)`; 404 when there is none.
pub(crate) async fn recorded(
    s: &AppState,
    aggregate: &str,
    id: &str,
) -> Result<Vec<goose_ledger::RecordedEvent>, Problem> {
    let stream = StreamId::new(aggregate, id).map_err(|e| ledger_problem(&e))?;
    let events = s
        .engine
        .platform
        .ledger
        .read_stream(&stream, 1, u32::MAX)
        .await
        .map_err(|e| ledger_problem(&e))?;
    if events.is_empty() {
        return Err(Problem::not_found(format!("no {aggregate} {id}")));
    }
    Ok(events)
}

/// The promotion's steps as recorded, without the facts each decision cites (those are the
/// audit trail: `explain`, `audit.read`). What `goosectl promotion status --watch` follows.
pub(crate) async fn steps(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<serde_json::Value> {
    let Json(mut v) = explain(State(s), Path(id)).await?;
    for e in v["events"].as_array_mut().into_iter().flatten() {
        for c in e["event"]["checks"].as_array_mut().into_iter().flatten() {
            if let Some(o) = c.as_object_mut() {
                o.remove("inputs");
            }
        }
    }
    Ok(Json(v))
}

pub(crate) async fn explain(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<serde_json::Value> {
    let id = parse_id("promotion", &id)?;
    let events = recorded(&s, "promotion", &id).await?;
    let explained: Vec<ExplainedEvent> = events
        .iter()
        .map(|ev| ExplainedEvent {
            position: ev.position,
            event_id: ev.event_id.to_string(),
            event_type: ev.event_type.clone(),
            digest: hex::encode(ev.digest),
            actor: ev.metadata.actor.clone(),
            recorded_at: ev.metadata.recorded_at,
            event: serde_json::from_slice(&ev.payload).unwrap_or(serde_json::Value::Null),
        })
        .collect();
    Ok(Json(serde_json::json!({ "id": id, "events": explained })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ComplianceQuery {
    service: Option<String>,
}

pub(crate) async fn compliance(
    State(s): State<AppState>,
    q: Result<Query<ComplianceQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Vec<serde_json::Value>> {
    let Query(q) = q.map_err(|e| Problem::bad_request(e.body_text()))?;
    // Everything recorded before the request (a promotion just seen ended) is in the answer.
    catch_up(&s).await?;
    let data = s.engine.views.read();
    let mut rows: Vec<serde_json::Value> = data
        .compliance
        .iter()
        .filter(|((svc, _), _)| q.service.as_ref().is_none_or(|x| x == svc))
        .map(|((svc, ver), (state, fact))| {
            serde_json::json!({"service": svc, "version": ver, "state": state, "since": fact})
        })
        .collect();
    rows.sort_by(|a, b| {
        a["service"]
            .as_str()
            .cmp(&b["service"].as_str())
            .then(a["version"].as_str().cmp(&b["version"].as_str()))
    });
    Ok(Json(rows))
}

pub(crate) async fn get_policy(State(s): State<AppState>) -> ApiResult<serde_json::Value> {
    Ok(Json(serde_json::json!({
        "digest": s.engine.policy_digest,
        "policy": *s.engine.policy,
    })))
}

/// The signed SLSA verification summary of a target the promotion made compliant.
pub(crate) async fn target_vsa(
    State(s): State<AppState>,
    Path((id, service)): Path<(String, String)>,
) -> ApiResult<serde_json::Value> {
    let id = parse_id("promotion", &id)?;
    let events = recorded(&s, "promotion", &id).await?;
    let key = s.engine.platform.ledger.key();
    let verifier = format!("https://golden-goose.dev/orchestrator/{}", key.key_id());
    let statement =
        crate::vsa::statement(&id, &service, &events, &verifier).map_err(Problem::not_found)?;
    Ok(Json(serde_json::json!({
        "envelope": crate::vsa::envelope(&statement, key),
        "statement": statement,
        "signer_vkey": key.vkey(),
    })))
}
