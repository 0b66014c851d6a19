//! Package handlers: create, list, read, promote, manifest.

use super::promotions::*;
use crate::api::*;
use crate::engine::PackageAgg;
use crate::{views, AppState};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use goose_domain::package::{parse_members, PackageRefusal};
use goose_ledger::aggregate::{self};
use goose_ledger::Metadata;
use goose_platform::{execute_problem, json_problem};
use goose_runtime::auth::Caller;
use goose_runtime::problem::Problem;

type ApiResult<T> = Result<Json<T>, Problem>;

pub(crate) async fn create_package(
    State(s): State<AppState>,
    caller: Caller,
    body: Result<Json<PackageRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<PackageView>), Problem> {
    let Json(req) = body.map_err(json_problem)?;
    let members = parse_members(&req.services, &req.version).map_err(Problem::bad_request)?;
    // The catalog and the org's packaging rules as committed now.
    catch_up(&s).await?;
    let scheme = s.engine.views.read().org.packaging.version_scheme;
    for v in std::iter::once(&req.version).chain(members.iter().map(|m| &m.version)) {
        let version =
            goose_domain::version::Version::parse(v).map_err(|e| goose_platform::problem(&e))?;
        version.conforms_to(scheme).map_err(|why| {
            Problem::unprocessable(format!(
                "{why}: org-config packaging.version_scheme is {}",
                serde_json::to_value(scheme)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ))
        })?;
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
    .map_err(execute_problem)?;
    s.engine
        .views
        .handle()
        .after_write(done.receipt, "orchestrator package")
        .await;
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

pub(crate) fn package_view(s: &AppState, id: &str) -> Option<PackageView> {
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

pub(crate) async fn list_packages(State(s): State<AppState>) -> ApiResult<Vec<PackageView>> {
    let ids: Vec<String> = s.engine.views.read().packages.keys().cloned().collect();
    Ok(Json(
        ids.iter().filter_map(|id| package_view(&s, id)).collect(),
    ))
}

pub(crate) async fn get_package(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<PackageView> {
    let id = parse_id("package", &id)?;
    package_view(&s, &id)
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no package {id}")))
}

pub(crate) async fn promote_package(
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

pub(crate) async fn get_manifest(
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
