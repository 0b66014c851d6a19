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
use goose_platform::{execute_problem, json_problem, ledger_problem};
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
    for v in std::iter::once(&req.version).chain(members.iter().map(|m| &m.version)) {
        in_scheme(&s, v)?;
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

/// How long a package bundle kept in the WORM bucket is retained (seed 003: three years).
const BUNDLE_RETENTION_DAYS: i64 = 3 * 365 + 1;

/// `GET /v1/packages/{id}/bundle`: the package's offline-verifiable bundle — the signed
/// manifest, the signer's key, the manifest's own event and a tlog-proof of every fact it
/// cites — as files by name (what `goosectl package export` writes and `package verify`
/// checks). With a WORM bucket configured it is kept there once built (write-once, compliance
/// retention) and served from there. 409 until the manifest is signed and a checkpoint covers
/// every cited event.
pub(crate) async fn get_bundle(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<serde_json::Value> {
    let Json(m) = get_manifest(State(s.clone()), Path(id.clone())).await?;
    let digest = m["manifest_digest"].as_str().unwrap_or_default().to_owned();
    let key = format!(
        "bundles/{}/{digest}.json",
        m["package"].as_str().unwrap_or(&id)
    );
    if let Some(store) = &s.bundles {
        let kept = store
            .get_named(&key)
            .await
            .map_err(|e| Problem::unavailable(format!("the bundle store cannot be read: {e}")))?;
        if let Some(bytes) = kept {
            let v = serde_json::from_slice(&bytes).map_err(|e| {
                Problem::internal(format!("the kept bundle {key} is not JSON: {e}"))
            })?;
            return Ok(Json(v));
        }
    }
    let log_key = s.log_key.clone().ok_or_else(|| {
        Problem::unavailable(
            "no log key is configured (--log-vkey): the bundle's proofs cannot be built",
        )
    })?;
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let mut files = serde_json::Map::new();
    files.insert("manifest.dsse.json".into(), pretty(&m["envelope"]).into());
    files.insert("manifest.json".into(), pretty(&m["manifest"]).into());
    files.insert(
        "signer.vkey".into(),
        format!("{}\n", m["signer_vkey"].as_str().unwrap_or_default()).into(),
    );
    files.insert(
        "manifest-event.json".into(),
        pretty(&m["manifest_event"]).into(),
    );
    let cited = m["manifest"]["cited_events"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(std::iter::once(&m["manifest_event"]));
    for f in cited {
        let Some(event_id) = f["id"].as_str() else {
            continue;
        };
        let name = format!("proofs/{event_id}.tlog-proof");
        if files.contains_key(&name) {
            continue;
        }
        let uuid = uuid::Uuid::parse_str(event_id).map_err(|_| {
            Problem::internal(format!("the manifest cites {event_id:?}, not an event id"))
        })?;
        let ledger = &s.engine.platform.ledger;
        let event = ledger
            .find_event(uuid)
            .await
            .map_err(|e| ledger_problem(&e))?;
        let (proof, _) = ledger
            .offline_proof(&log_key, &event)
            .await
            .map_err(|e| match e {
                goose_ledger::Error::InvalidInput(m) => {
                    Problem::new(StatusCode::CONFLICT, "not yet checkpointed", m)
                }
                other => ledger_problem(&other),
            })?;
        files.insert(name, proof.to_text().into());
    }
    let bundle = serde_json::json!({
        "package": m["package"],
        "manifest_digest": digest,
        "files": files,
    });
    if let Some(store) = &s.bundles {
        let until = time::OffsetDateTime::now_utc() + time::Duration::days(BUNDLE_RETENTION_DAYS);
        let bytes = serde_json::to_vec(&bundle).map_err(|e| Problem::internal(e.to_string()))?;
        store.put_named(&key, &bytes, until).await.map_err(|e| {
            Problem::unavailable(format!(
                "the bundle could not be kept in the WORM bucket: {e}"
            ))
        })?;
    }
    Ok(Json(bundle))
}
