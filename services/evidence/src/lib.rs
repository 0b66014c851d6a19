//! The evidence service: accepts evidence files in the formats tools already write, stores
//! them write-once by content address, records a summary event per file for the gates, signs
//! the chain's checkpoints (periodically and on request) and serves proofs.
//!
//! Architecture invariant: a file is parsed and validated completely before anything is
//! stored; the event is the fact, the blob its content. The service knows which services exist
//! and the retention rules only from registry events.

pub mod chain_api;
pub mod grpc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use goose_domain::catalog::{CatalogEvent, ServiceName};
use goose_domain::evidence::{EvidenceKind, EvidenceSummary};
use goose_domain::org_config::{OrgConfig, OrgConfigEvent};
use goose_domain::rbac::Permission;
use goose_domain::streams;
use goose_evidence::blob::{self, BlobStore};
use goose_evidence::dsse::TrustedKeys;
use goose_evidence::formats;
use goose_ledger::aggregate::{self, Aggregate};
use goose_ledger::RecordedEvent;
use goose_ledger::{Metadata, NoteKey};
use goose_platform::checkpoints::{CheckpointPublisher, PublishConfig, WitnessClient};
use goose_platform::view::{View, ViewHandle};
use goose_platform::{execute_problem, Platform};
use goose_runtime::auth::{Access, AuthLayer, Caller, RouteSpec};
use goose_runtime::problem::Problem;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// The evidence API.
pub const ROUTES: &[RouteSpec] = &[
    RouteSpec::new("POST", "/v1/evidence", Access::Permission(Permission::EvidenceSubmit), "Submit evidence: multipart (service, version, kind, file) or the raw file with ?service=&version=&kind=").returns("EvidenceRecord"),
    RouteSpec::new("GET", "/v1/evidence", Access::Permission(Permission::EvidenceRead), "List evidence (?service=&version=)"),
    RouteSpec::new("GET", "/v1/evidence/{id}", Access::Permission(Permission::EvidenceRead), "One evidence record").returns("EvidenceRecord"),
    RouteSpec::new("GET", "/v1/blobs/{digest}", Access::Permission(Permission::EvidenceRead), "An evidence file by its SHA3-256 digest"),
    RouteSpec::new("POST", "/v1/chain/checkpoints", Access::Permission(Permission::ChainCheckpoint), "Sign a checkpoint of the chain now"),
    RouteSpec::new("GET", "/v1/chain/checkpoint", Access::Public, "The newest signed checkpoint (C2SP signed note)"),
    RouteSpec::new("GET", "/v1/chain/proofs/inclusion/{event_id}", Access::Authenticated, "Inclusion proof of an event (?format=tlog-proof for the offline file)"),
    RouteSpec::new("GET", "/v1/chain/proofs/consistency", Access::Authenticated, "Consistency proof between two tree sizes (?from=&to=)"),
];

pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(components(schemas(EvidenceRecord, EvidenceSummary, EvidenceKind)))]
    struct Doc;
    goose_runtime::openapi::document(
        "Golden Goose evidence",
        ROUTES,
        <Doc as utoipa::OpenApi>::openapi().components,
    )
}

/// How the evidence service runs.
#[derive(Debug, Clone)]
pub struct EvidenceConfig {
    pub blobs: Arc<dyn BlobStore>,
    /// Keys whose DSSE signatures make an attestation trusted.
    pub attestation_keys: TrustedKeys,
    /// Signs checkpoints; its vkey is what verifiers check the log against.
    pub log_key: Arc<NoteKey>,
    pub checkpoint_interval: Duration,
    /// A directory where every checkpoint is also written, once (write-once files).
    pub checkpoint_dir: Option<std::path::PathBuf>,
    /// Witnesses every checkpoint is offered to: `<cosigner vkey>@<URL>`.
    pub witnesses: Vec<String>,
    /// How many of them must cosign for a checkpoint to count as witnessed.
    pub witness_threshold: usize,
}

pub use goose_domain::evidence::{EvidenceEvent, EvidenceRecord};

#[derive(Debug, Clone, Default)]
struct EvidenceAgg(Vec<EvidenceRecord>);

impl Aggregate for EvidenceAgg {
    const TYPE: &'static str = streams::EVIDENCE;
    type Event = EvidenceEvent;
    fn apply(&mut self, e: &EvidenceEvent) {
        let EvidenceEvent::EvidenceAccepted(r) = e;
        self.0.push(r.clone());
    }
    fn event_type(_: &EvidenceEvent) -> &'static str {
        "EvidenceAccepted"
    }
}

/// The evidence service's read model: the services registry onboarded, the org-config's
/// limits, and the evidence accepted.
#[derive(Debug, Default)]
pub(crate) struct Views {
    services: BTreeSet<String>,
    org: OrgConfig,
    pub(crate) records: BTreeMap<String, EvidenceRecord>,
}

impl View for Views {
    const FOLLOWS: &'static [&'static str] =
        &[streams::CATALOG, streams::ORG_CONFIG, streams::EVIDENCE];

    fn apply(&mut self, ev: &RecordedEvent) {
        match ev.stream.aggregate_type() {
            streams::CATALOG => {
                if let Some(e) = goose_platform::decoded::<CatalogEvent>(ev) {
                    self.services.insert(e.definition().name.to_string());
                }
            }
            streams::ORG_CONFIG => {
                // Undecodable: the previous limits stay in force, and it is logged and counted.
                if let Some(OrgConfigEvent::OrgConfigSet { config, .. }) =
                    goose_platform::decoded(ev)
                {
                    self.org = config;
                }
            }
            _ => {
                if let Some(EvidenceEvent::EvidenceAccepted(r)) = goose_platform::decoded(ev) {
                    self.records.insert(r.id.clone(), r);
                }
            }
        }
    }
}

#[derive(Clone)]
struct AppState {
    platform: Platform,
    checkpoints: CheckpointPublisher,
    config: EvidenceConfig,
    views: ViewHandle<Views>,
}

impl AppState {
    fn views(&self) -> std::sync::RwLockReadGuard<'_, Views> {
        self.views.read()
    }
}

/// Builds the evidence API and starts periodic checkpoints.
pub async fn build(platform: &Platform, config: EvidenceConfig) -> anyhow::Result<Router> {
    let views = ViewHandle::<Views>::start(platform).await?;
    let log_vkey = goose_ledger::Vkey::parse(&config.log_key.vkey())?;
    let checkpoints = CheckpointPublisher::new(
        (*platform.ledger).clone(),
        config.log_key.clone(),
        PublishConfig {
            dir: config.checkpoint_dir.clone(),
            witnesses: config
                .witnesses
                .iter()
                .map(|w| WitnessClient::parse(w))
                .collect::<anyhow::Result<_>>()?,
            threshold: config.witness_threshold,
        },
    )?;
    {
        let publisher = checkpoints.clone();
        let every = config.checkpoint_interval;
        let stop = platform.stopped();
        platform.spawn(async move { publisher.run_periodic(every, stop).await });
    }
    let state = AppState {
        platform: platform.clone(),
        checkpoints,
        config,
        views,
    };
    let chain = chain_api::routes((*platform.ledger).clone(), log_vkey);
    let grpc = Router::new().route_service(
        "/goose.v1.Evidence/{*method}",
        grpc::EvidenceGrpc {
            views: state.views.clone(),
        }
        .server(),
    );
    let router = Router::new()
        .route("/v1/evidence", post(submit).get(list))
        .route("/v1/evidence/{id}", get(get_record))
        .route("/v1/blobs/{digest}", get(get_blob))
        .route("/v1/chain/checkpoints", post(checkpoint_now))
        .with_state(state)
        .merge(chain)
        .merge(grpc)
        // The org-config limit is checked against the real size below; this is the hard cap.
        .layer(DefaultBodyLimit::max(1 << 30));
    let auth = AuthLayer::new(
        platform.verifier.clone(),
        Arc::new(platform.directory.clone()),
        &[ROUTES, grpc::GRPC_ROUTES].concat(),
    );
    Ok(auth.protect(router))
}

#[derive(Debug, Deserialize, Default)]
struct SubmitQuery {
    service: Option<String>,
    version: Option<String>,
    kind: Option<String>,
    filename: Option<String>,
}

struct Submission {
    service: String,
    version: String,
    kind: String,
    filename: String,
    bytes: Bytes,
}

fn check_version(v: &str) -> Result<(), Problem> {
    if !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
    {
        Ok(())
    } else {
        Err(Problem::bad_request(format!(
            "version {v:?} must be 1 to 64 of A-Z a-z 0-9 . _ + -"
        )))
    }
}

async fn read_submission(q: SubmitQuery, req: Request) -> Result<Submission, Problem> {
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !is_multipart {
        let bytes = Bytes::from_request(req, &())
            .await
            .map_err(|e| Problem::bad_request(e.body_text()))?;
        let missing = |f: &str| {
            Problem::bad_request(format!(
                "missing query parameter {f} (or send multipart/form-data)"
            ))
        };
        return Ok(Submission {
            service: q.service.ok_or_else(|| missing("service"))?,
            version: q.version.ok_or_else(|| missing("version"))?,
            kind: q.kind.ok_or_else(|| missing("kind"))?,
            filename: q.filename.unwrap_or_default(),
            bytes,
        });
    }
    let mut mp = Multipart::from_request(req, &())
        .await
        .map_err(|e| Problem::bad_request(e.body_text()))?;
    let (mut service, mut version, mut kind, mut filename, mut bytes) =
        (q.service, q.version, q.kind, q.filename, None);
    while let Some(field) = mp
        .next_field()
        .await
        .map_err(|e| Problem::bad_request(e.body_text()))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                if filename.is_none() {
                    filename = field.file_name().map(str::to_owned);
                }
                bytes = Some(
                    field
                        .bytes()
                        .await
                        .map_err(|e| Problem::bad_request(e.body_text()))?,
                );
            }
            "service" | "version" | "kind" => {
                let text = field
                    .text()
                    .await
                    .map_err(|e| Problem::bad_request(e.body_text()))?;
                match name.as_str() {
                    "service" => service = Some(text),
                    "version" => version = Some(text),
                    _ => kind = Some(text),
                }
            }
            other => {
                return Err(Problem::bad_request(format!(
                    "unexpected multipart field {other:?} (expected service, version, kind, file)"
                )))
            }
        }
    }
    let missing = |f: &str| Problem::bad_request(format!("missing multipart field {f}"));
    Ok(Submission {
        service: service.ok_or_else(|| missing("service"))?,
        version: version.ok_or_else(|| missing("version"))?,
        kind: kind.ok_or_else(|| missing("kind"))?,
        filename: filename.unwrap_or_default(),
        bytes: bytes.ok_or_else(|| missing("file"))?,
    })
}

fn blob_problem(e: blob::Error) -> Problem {
    match e {
        blob::Error::NotFound(d) => Problem::not_found(format!("no blob {d}")),
        blob::Error::InvalidDigest(_) => Problem::bad_request(e.to_string()),
        blob::Error::Retained { .. } => Problem::forbidden(e.to_string()),
        _ => Problem::unavailable(e.to_string()),
    }
}

async fn submit(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<SubmitQuery>, axum::extract::rejection::QueryRejection>,
    req: Request,
) -> Result<Json<EvidenceRecord>, Problem> {
    let Query(q) = q.map_err(|e| Problem::bad_request(e.body_text()))?;
    let sub = read_submission(q, req).await?;
    let service = ServiceName::parse(&sub.service).map_err(Problem::bad_request)?;
    check_version(&sub.version)?;
    let kind: EvidenceKind = sub.kind.parse().map_err(Problem::bad_request)?;
    if sub.filename.len() > 255 || sub.filename.contains(['/', '\\', '\0']) {
        return Err(Problem::bad_request(
            "filename must be a plain name of at most 255 characters",
        ));
    }
    if !s.views().services.contains(service.as_str()) {
        // Onboarded a moment ago, perhaps, and not applied here yet: catch up with the ledger
        // before refusing (read-your-writes across services).
        s.views.catch_up(&s.platform).await?;
    }
    let (known, max_bytes, retention_days) = {
        let v = s.views();
        (
            v.services.contains(service.as_str()),
            v.org.evidence.max_upload_bytes,
            v.org.retention.evidence_days,
        )
    };
    if !known {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown service",
            format!("service {service} is not in the catalog; onboard it first"),
        ));
    }
    if sub.bytes.len() as u64 > max_bytes {
        return Err(Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "too large", format!("{} bytes is over the evidence limit of {max_bytes} bytes (org-config evidence.max_upload_bytes)", sub.bytes.len())));
    }
    if sub.bytes.is_empty() {
        return Err(Problem::bad_request("the file is empty"));
    }
    // Parse fully before storing anything; parsing is CPU work, off the async threads.
    let keys = s.config.attestation_keys.clone();
    let bytes = sub.bytes.clone();
    let summary = tokio::task::spawn_blocking(move || formats::summarize(kind, &bytes, &keys))
        .await
        .map_err(|e| Problem::internal(e.to_string()))?
        .map_err(|e| {
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid evidence",
                e.to_string(),
            )
        })?;
    let now = OffsetDateTime::now_utc();
    let retain_until = now + time::Duration::days(i64::from(retention_days));
    let stored = s
        .config
        .blobs
        .put(&sub.bytes, retain_until)
        .await
        .map_err(blob_problem)?;
    let record = EvidenceRecord {
        id: uuid::Uuid::now_v7().to_string(),
        service: service.to_string(),
        version: sub.version.clone(),
        kind,
        digest: stored.digest,
        size: sub.bytes.len() as u64,
        filename: if sub.filename.is_empty() {
            format!("{}.{}", kind.as_str(), kind.file_extension())
        } else {
            sub.filename
        },
        summary,
        submitted_at: now,
        submitted_by: caller.user.clone(),
        retain_until,
    };
    let meta = Metadata::now(caller.user.clone());
    let event = EvidenceEvent::EvidenceAccepted(record.clone());
    let stream_id = format!("{service}@{}", sub.version);
    let done = aggregate::execute::<EvidenceAgg, std::convert::Infallible>(
        &s.platform.ledger,
        &stream_id,
        &meta,
        |_| Ok(vec![event.clone()]),
    )
    .await
    .map_err(|e| execute_problem(e, |never| match never {}))?;
    s.views.after_write(done.receipt, "evidence").await;
    tracing::info!(user = %caller.user, service = %record.service, version = %record.version, kind = %kind, digest = %record.digest, "evidence accepted");
    Ok(Json(record))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    service: Option<String>,
    version: Option<String>,
}

async fn list(
    State(s): State<AppState>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<EvidenceRecord>>, Problem> {
    let Query(q) = q.map_err(|e| Problem::bad_request(e.body_text()))?;
    let v = s.views();
    Ok(Json(
        v.records
            .values()
            .filter(|r| q.service.as_ref().is_none_or(|x| &r.service == x))
            .filter(|r| q.version.as_ref().is_none_or(|x| &r.version == x))
            .cloned()
            .collect(),
    ))
}

async fn get_record(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<EvidenceRecord>, Problem> {
    s.views()
        .records
        .get(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no evidence {id}")))
}

async fn get_blob(
    State(s): State<AppState>,
    Path(digest): Path<String>,
) -> Result<Response, Problem> {
    let bytes = s.config.blobs.get(&digest).await.map_err(blob_problem)?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

async fn checkpoint_now(State(s): State<AppState>, caller: Caller) -> Result<Response, Problem> {
    let cp = s
        .checkpoints
        .publish_now()
        .await
        .map_err(|e| match e.downcast_ref() {
            Some(l) => goose_platform::ledger_problem(l),
            None => Problem::internal(format!("{e:#}")),
        })?;
    tracing::info!(user = %caller.user, size = cp.checkpoint.size, "checkpoint signed on request");
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        cp.note,
    )
        .into_response())
}
