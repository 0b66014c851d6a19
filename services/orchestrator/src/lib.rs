//! The orchestrator: promotions of service versions through the compliance gates, in
//! dependency order and in parallel where the graph allows, and Golden Goose packages.
//!
//! Architecture invariant: every decision is `goose_domain::promotion::Promotion::step`, a
//! pure function of the recorded events and the facts gathered from other services' events;
//! the orchestrator only gathers, appends and waits. It owns the `promotion`, `package` and
//! `promotion_lock` streams and reads nobody's tables.

pub mod approvals;
pub mod chain;
pub mod engine;
pub mod grpc;
pub mod lease;
pub mod manifest;
pub mod metrics;
pub mod views;

use crate::approvals::ApprovalRequester;
use crate::engine::{Engine, PackageAgg, PromotionAgg, StartError};
use crate::lease::Leases;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use goose_domain::approval::ImpactLevel;
use goose_domain::catalog::ServiceName;
use goose_domain::compliance::ComplianceState;
use goose_domain::package::{parse_members, Member, Package, PackageRefusal};
use goose_domain::policy::{GateType, Policy};
use goose_domain::promotion::{
    check_version, compute_promotion_order, Promotion, Requested, TargetSpec,
};
use goose_domain::rbac::Permission;
use goose_ledger::aggregate::{self};
use goose_ledger::{Keyring, Metadata, StreamId, Vkey};
use goose_platform::{execute_problem, json_problem, ledger_problem, Platform};
use goose_runtime::auth::Caller;
use goose_runtime::problem::Problem;
use goose_runtime::routes::{Access, RouteSpec, Routes};
use serde::{Deserialize, Serialize};
use sha3::{Digest as _, Sha3_256};
use std::sync::Arc;
use time::OffsetDateTime;

/// The orchestrator REST API: each route with its handler. This one list builds the router, the
/// access table the middleware enforces, the OpenAPI document and the matrix test's rows.
fn api() -> Routes<AppState> {
    Routes::new()
.route(RouteSpec::post("/v1/promotions", Access::Permission(Permission::PromotionRequest), "Request the promotion of a service version to compliant (seed 001 §5.2); raises its approval request in rbac").body("PromotionRequest").returns("PromotionView"), request_promotion)
.route(RouteSpec::get("/v1/promotions", Access::Permission(Permission::ServiceRead), "List promotions (?status=running|finished, ?package=ID)"), list_promotions)
.route(RouteSpec::get("/v1/promotions/{id}", Access::Permission(Permission::ServiceRead), "One promotion: each target's status, compliance state and newest gate outcomes").returns("PromotionView"), get_promotion)
.route(RouteSpec::get("/v1/promotions/{id}/explain", Access::Permission(Permission::ServiceRead), "Every decision of a promotion as recorded, with the facts it read (event ids, positions, digests)"), explain)
.route(RouteSpec::get("/v1/compliance", Access::Permission(Permission::ServiceRead), "Compliance state of every service version (?service=NAME)"), compliance)
.route(RouteSpec::get("/v1/promotion-policy", Access::Permission(Permission::ServiceRead), "The promotion policy in force and its digest"), get_policy)
.route(RouteSpec::post("/v1/packages", Access::Permission(Permission::PackageCreate), "Create a Golden Goose package {services, version} (seed 001 §3.5)").body("PackageRequest").returns("PackageView"), create_package)
.route(RouteSpec::get("/v1/packages", Access::Permission(Permission::ServiceRead), "List packages"), list_packages)
.route(RouteSpec::get("/v1/packages/{id}", Access::Permission(Permission::ServiceRead), "One package with its promotions").returns("PackageView"), get_package)
.route(RouteSpec::post("/v1/packages/{id}/promote", Access::Permission(Permission::PackagePromote), "Promote every member of a package in dependency order").body("PromoteOptions").returns("PromotionView"), promote_package)
.route(RouteSpec::get("/v1/packages/{id}/manifest", Access::Permission(Permission::ServiceRead), "The newest signed manifest (DSSE envelope) with the events it cites"), get_manifest)
}

/// The REST routes this service serves, with their access rules (gRPC: [`grpc::GRPC_ROUTES`]).
pub fn routes() -> Vec<RouteSpec> {
    api().specs().to_vec()
}

pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(components(schemas(
        PromotionRequest,
        DependencyRefs,
        PromotionView,
        PackageRequest,
        PromoteOptions,
        PackageView,
        Member,
        TargetSpec,
        ComplianceState,
        ImpactLevel
    )))]
    struct Doc;
    goose_runtime::openapi::document(
        "Golden Goose orchestrator",
        &routes(),
        <Doc as utoipa::OpenApi>::openapi().components,
    )
}

/// How the orchestrator runs.
#[derive(Debug, Clone)]
pub struct OrchestratorConfig {
    pub policy: Policy,
    /// SHA3-256 of the policy file (hex).
    pub policy_digest: String,
    /// Raises approval requests in rbac.
    pub approvals: Arc<dyn ApprovalRequester>,
    pub leases: Arc<dyn Leases>,
    /// Trusted service keys: the `signatures_verified` rule checks cited events against them.
    pub keyring: Option<Keyring>,
    /// The log's checkpoint key: the `evidence_chain_valid` rule checks checkpoints with it.
    pub log_key: Option<Vkey>,
    /// When set (threshold > 0), the rule relies only on checkpoints cosigned by that many of
    /// these witnesses.
    pub witness_policy: goose_ledger::witness::WitnessPolicy,
}

/// Reads a policy file's text: the policy and its digest.
pub fn load_policy(text: &str) -> Result<(Policy, String), goose_domain::policy::Invalid> {
    let policy = Policy::parse(text)?;
    Ok((policy, hex::encode(Sha3_256::digest(text.as_bytes()))))
}

#[derive(Clone)]
struct AppState {
    engine: Arc<Engine>,
    approvals: Arc<dyn ApprovalRequester>,
    follower: goose_bus::follow::Follower,
}

/// Builds the orchestrator API and starts its engine (which resumes unfinished promotions).
pub async fn build(platform: &Platform, config: OrchestratorConfig) -> anyhow::Result<Router> {
    let views = views::Views::new(config.keyring.clone());
    let v = views.clone();
    let follower = goose_bus::follow::Follower::start(
        (*platform.ledger).clone(),
        platform.bus.clone(),
        views::FOLLOWED,
        Arc::new(move |ev| v.apply(ev)),
        platform.stopped(),
    )
    .await?;
    let chain = chain::ChainWatch::start(
        (*platform.ledger).clone(),
        config.keyring.clone().unwrap_or_default(),
        config.log_key.clone(),
        config.witness_policy.clone(),
        platform.stopped(),
    );
    let engine = Engine::new(
        platform.clone(),
        views,
        chain,
        config.policy,
        config.policy_digest,
        config.leases,
    );
    engine.run_scanner();
    let grpc = Router::new().route_service(
        "/goose.v1.Orchestrator/{*method}",
        grpc::OrchestratorGrpc {
            views: engine.views.clone(),
        }
        .server(),
    );
    let state = AppState {
        engine,
        approvals: config.approvals,
        follower,
    };
    let (rest, specs) = api().into_parts();
    let router = rest.with_state(state).merge(grpc);
    Ok(platform.protect(router, &[specs.as_slice(), grpc::GRPC_ROUTES].concat()))
}

type ApiResult<T> = Result<Json<T>, Problem>;

// --- promotions -----------------------------------------------------------------------------

/// Services that must (or may) be compliant first, besides the catalog's dependencies.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DependencyRefs {
    #[serde(default)]
    pub required: Vec<String>,
    #[serde(default)]
    pub optional: Vec<String>,
}

fn compliant() -> ComplianceState {
    ComplianceState::Compliant
}

/// The seed's promotion request (001 §5.2), with the version to promote.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromotionRequest {
    pub service: String,
    pub version: String,
    /// Only `compliant` (the state a promotion moves to).
    #[serde(default = "compliant")]
    pub target_state: ComplianceState,
    /// Evidence ids or blob digests to consider (default: the newest of each kind).
    #[serde(default)]
    pub evidence_refs: Vec<String>,
    #[serde(default)]
    pub dependencies: DependencyRefs,
    /// Impact of the approval request (default: the policy's).
    #[serde(default)]
    pub impact: Option<ImpactLevel>,
    #[serde(default)]
    pub reason: String,
}

/// A promotion as served.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PromotionView {
    pub id: String,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub promotion: Promotion,
}

fn bearer(headers: &HeaderMap) -> Result<String, Problem> {
    goose_runtime::auth::bearer_token(headers)
        .map(str::to_owned)
        .ok_or_else(|| {
            Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "no bearer token",
            )
        })
}

/// Waits until the read models have applied everything in the ledger now: a service
/// onboarded a moment ago through another process is known before a request is refused.
async fn catch_up(s: &AppState) -> Result<(), Problem> {
    let size = s
        .engine
        .platform
        .ledger
        .size()
        .await
        .map_err(|e| goose_platform::ledger_problem(&e))?;
    s.follower
        .wait_applied(size, goose_platform::READ_YOUR_WRITES)
        .await
        .map_err(|e| goose_platform::stale_problem(&e))
}

fn unprocessable(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "rejected", detail)
}

fn start_problem(e: StartError) -> Problem {
    match e {
        StartError::Locked { .. } => Problem::conflict(e.to_string()),
        StartError::Ledger(l) => ledger_problem(&l),
    }
}

/// The targets of `members`, in promotion order, with their catalog dependencies.
fn targets_of(
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
        });
    }
    Ok(specs)
}

/// Locks, approval request, the request event: all or (after releasing the locks) nothing.
async fn start(
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
        match s.approvals.request(token, &subject, impact, &text).await {
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

async fn request_promotion(
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
    check_version(&req.version).map_err(Problem::bad_request)?;
    if req.evidence_refs.len() > 256 {
        return Err(Problem::bad_request("at most 256 evidence_refs"));
    }
    if s.engine.views.read().catalog.get(&service).is_none() {
        catch_up(&s).await?;
    }
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
struct ListQuery {
    status: Option<String>,
    package: Option<String>,
}

async fn list_promotions(
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

fn parse_id(what: &str, id: &str) -> Result<String, Problem> {
    uuid::Uuid::parse_str(id)
        .map(|u| u.to_string())
        .map_err(|_| Problem::bad_request(format!("{what} id {id:?} is not a UUID")))
}

async fn get_promotion(
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
struct ExplainedEvent {
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
async fn recorded(
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

async fn explain(
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
struct ComplianceQuery {
    service: Option<String>,
}

async fn compliance(
    State(s): State<AppState>,
    q: Result<Query<ComplianceQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Vec<serde_json::Value>> {
    let Query(q) = q.map_err(|e| Problem::bad_request(e.body_text()))?;
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

async fn get_policy(State(s): State<AppState>) -> ApiResult<serde_json::Value> {
    Ok(Json(serde_json::json!({
        "digest": s.engine.policy_digest,
        "policy": *s.engine.policy,
    })))
}

// --- packages -------------------------------------------------------------------------------

/// The seed's package request (001 §3.5): members as `name` (at the package's version) or
/// `name@version`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PackageRequest {
    pub services: Vec<String>,
    pub version: String,
}

/// Options of a package promotion.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteOptions {
    #[serde(default)]
    pub impact: Option<ImpactLevel>,
    #[serde(default)]
    pub reason: String,
}

/// A package as served.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PackageView {
    pub id: String,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub package: Package,
    /// Its promotions, oldest first.
    pub promotions: Vec<String>,
}

fn package_problem(r: PackageRefusal) -> Problem {
    match r {
        PackageRefusal::AlreadyExists => Problem::conflict(r.to_string()),
        PackageRefusal::NotFound => Problem::not_found(r.to_string()),
        PackageRefusal::Invalid(m) => unprocessable(m),
    }
}

async fn create_package(
    State(s): State<AppState>,
    caller: Caller,
    body: Result<Json<PackageRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<PackageView>), Problem> {
    let Json(req) = body.map_err(json_problem)?;
    let members = parse_members(&req.services, &req.version).map_err(Problem::bad_request)?;
    let unknown = {
        let data = s.engine.views.read();
        members
            .iter()
            .any(|m| ServiceName::parse(&m.service).is_ok_and(|n| data.catalog.get(&n).is_none()))
    };
    if unknown {
        catch_up(&s).await?;
    }
    // The members must be onboarded and orderable now (a cycle is named here, not later).
    let pairs: Vec<(String, String)> = members
        .iter()
        .map(|m| (m.service.clone(), m.version.clone()))
        .collect();
    targets_of(&s, &pairs, &DependencyRefs::default(), &[])?;
    let id = uuid::Uuid::now_v7().to_string();
    let meta = Metadata::now(caller.user.clone());
    let done = aggregate::execute::<PackageAgg, PackageRefusal>(
        &s.engine.platform.ledger,
        &id,
        &meta,
        |p| p.0.create(&req.version, members.clone(), &caller.user),
    )
    .await
    .map_err(|e| execute_problem(e, package_problem))?;
    if let Some(r) = done.receipt {
        goose_platform::log_stale_after_write(
            s.follower
                .wait_applied(r.last_position + 1, goose_platform::READ_YOUR_WRITES)
                .await,
            "orchestrator",
        );
    }
    tracing::info!(user = %caller.user, package = %id, members = done.state.0.members.len(), "package created");
    Ok((
        StatusCode::CREATED,
        Json(PackageView {
            id,
            package: done.state.0,
            promotions: Vec::new(),
        }),
    ))
}

fn package_view(s: &AppState, id: &str) -> Option<PackageView> {
    let data = s.engine.views.read();
    data.packages
        .get(id)
        .filter(|p| p.exists())
        .map(|p| PackageView {
            id: id.to_owned(),
            package: p.clone(),
            promotions: data.package_promotions.get(id).cloned().unwrap_or_default(),
        })
}

async fn list_packages(State(s): State<AppState>) -> ApiResult<Vec<PackageView>> {
    let ids: Vec<String> = s.engine.views.read().packages.keys().cloned().collect();
    Ok(Json(
        ids.iter().filter_map(|id| package_view(&s, id)).collect(),
    ))
}

async fn get_package(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<PackageView> {
    let id = parse_id("package", &id)?;
    package_view(&s, &id)
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no package {id}")))
}

async fn promote_package(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    goose_platform::OptionalJsonBody(body): goose_platform::OptionalJsonBody<PromoteOptions>,
) -> Result<(StatusCode, Json<PromotionView>), Problem> {
    let id = parse_id("package", &id)?;
    let token = bearer(&headers)?;
    let opts = body.unwrap_or_default();
    let package = package_view(&s, &id)
        .ok_or_else(|| Problem::not_found(format!("no package {id}")))?
        .package;
    let pairs: Vec<(String, String)> = package
        .members
        .iter()
        .map(|m| (m.service.clone(), m.version.clone()))
        .collect();
    let targets = targets_of(&s, &pairs, &DependencyRefs::default(), &[])?;
    let view = start(
        &s,
        &caller,
        &token,
        targets,
        Some(id),
        opts.impact,
        opts.reason,
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

async fn get_manifest(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<serde_json::Value> {
    use base64::Engine as _;
    let id = parse_id("package", &id)?;
    let events = recorded(&s, "package", &id).await?;
    let signed = events.iter().rev().find_map(|ev| match ev.payload_as() {
        Ok(goose_domain::package::PackageEvent::PackageManifestSigned {
            promotion_id,
            manifest_digest,
            envelope,
        }) => Some((ev, promotion_id, manifest_digest, envelope)),
        _ => None,
    });
    let Some((ev, promotion_id, digest, envelope)) = signed else {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "no manifest yet",
            format!(
                "package {id} has no signed manifest: promote it and wait for the promotion to end"
            ),
        ));
    };
    let manifest: serde_json::Value = base64::engine::general_purpose::STANDARD
        .decode(&envelope.payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null);
    Ok(Json(serde_json::json!({
        "package": id,
        "promotion": promotion_id,
        "manifest_digest": digest,
        "envelope": envelope,
        "manifest": manifest,
        "manifest_event": views::fact_of("package", ev, "PackageManifestSigned"),
        "signer_vkey": s.engine.platform.ledger.key().vkey(),
    })))
}
