//! The evidence service's REST handlers: submissions (parsed and checked completely before
//! anything is stored), reads, blobs, and checkpoints on request.

use crate::{AppState, EvidenceAgg};
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use goose_domain::catalog::ServiceName;
use goose_domain::evidence::EvidenceKind;
use goose_domain::evidence::{BlobDownload, EvidenceEvent, EvidenceRecord, Subject};
use goose_evidence::blob;
use goose_evidence::formats;
use goose_ledger::aggregate::{self};
use goose_ledger::Metadata;
use goose_platform::execute_problem;
use goose_runtime::auth::Caller;
use goose_runtime::problem::Problem;
use serde::Deserialize;
use time::OffsetDateTime;

#[derive(Debug, Deserialize, Default)]
pub(crate) struct SubmitQuery {
    service: Option<String>,
    model: Option<String>,
    version: Option<String>,
    kind: Option<String>,
    filename: Option<String>,
}

pub(crate) struct Submission {
    subject: Subject,
    /// The service's or the model's name.
    name: String,
    version: String,
    kind: String,
    filename: String,
    bytes: Bytes,
}

/// The 413 of an upload over the org-config limit.
fn too_large(max_bytes: u64, what: &str) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too large",
        format!("{what} is over the evidence limit of {max_bytes} bytes (org-config evidence.max_upload_bytes)"),
    )
}

/// Room for the multipart framing and the small fields around the file.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;

/// Reads the submission, never buffering more than the limit: a declared length over it is
/// refused before reading, and the body is cut off (413) as soon as it passes it, so memory
/// stays a small multiple of the limit whatever is sent.
pub(crate) async fn read_submission(
    q: SubmitQuery,
    req: Request,
    max_bytes: u64,
) -> Result<Submission, Problem> {
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let cap = if is_multipart {
        max_bytes.saturating_add(MULTIPART_OVERHEAD)
    } else {
        max_bytes
    };
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|len| *len > cap)
    {
        return Err(too_large(max_bytes, &format!("a body of {len} bytes")));
    }
    let req = req.map(|b| {
        axum::body::Body::new(http_body_util::Limited::new(
            b,
            usize::try_from(cap).unwrap_or(usize::MAX),
        ))
    });
    let limited = |text: String| {
        if text.contains("length limit exceeded") {
            too_large(max_bytes, "the body")
        } else {
            Problem::bad_request(text)
        }
    };
    read_limited(q, req, is_multipart, &limited).await
}

async fn read_limited(
    q: SubmitQuery,
    req: Request,
    is_multipart: bool,
    limited: &(dyn Fn(String) -> Problem + Sync),
) -> Result<Submission, Problem> {
    if !is_multipart {
        let bytes = axum::body::to_bytes(req.into_body(), usize::MAX)
            .await
            .map_err(|e| {
                // The cause (the limit) is the source of axum's error.
                let cause = std::error::Error::source(&e).map(ToString::to_string);
                limited(format!("{e}: {}", cause.unwrap_or_default()))
            })?;
        let missing = |f: &str| {
            Problem::bad_request(format!(
                "missing query parameter {f} (or send multipart/form-data)"
            ))
        };
        let (subject, name) = subject(q.service, q.model, &missing)?;
        return Ok(Submission {
            subject,
            name,
            version: q.version.ok_or_else(|| missing("version"))?,
            kind: q.kind.ok_or_else(|| missing("kind"))?,
            filename: q.filename.unwrap_or_default(),
            bytes,
        });
    }
    let mut mp = Multipart::from_request(req, &())
        .await
        .map_err(|e| limited(e.body_text()))?;
    let (mut service, mut model, mut version, mut kind, mut filename, mut bytes) =
        (q.service, q.model, q.version, q.kind, q.filename, None);
    while let Some(field) = mp.next_field().await.map_err(|e| limited(e.body_text()))? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                if filename.is_none() {
                    filename = field.file_name().map(str::to_owned);
                }
                bytes = Some(field.bytes().await.map_err(|e| limited(e.body_text()))?);
            }
            "service" | "model" | "version" | "kind" => {
                let text = field
                    .text()
                    .await
                    .map_err(|e| Problem::bad_request(e.body_text()))?;
                match name.as_str() {
                    "service" => service = Some(text),
                    "model" => model = Some(text),
                    "version" => version = Some(text),
                    _ => kind = Some(text),
                }
            }
            other => {
                return Err(Problem::bad_request(format!(
                    "unexpected multipart field {other:?} (expected service or model, version, kind, file)"
                )))
            }
        }
    }
    let missing = |f: &str| Problem::bad_request(format!("missing multipart field {f}"));
    let (subject, name) = subject(service, model, &missing)?;
    Ok(Submission {
        subject,
        name,
        version: version.ok_or_else(|| missing("version"))?,
        kind: kind.ok_or_else(|| missing("kind"))?,
        filename: filename.unwrap_or_default(),
        bytes: bytes.ok_or_else(|| missing("file"))?,
    })
}

/// Exactly one of `service` and `model`.
fn subject(
    service: Option<String>,
    model: Option<String>,
    missing: &dyn Fn(&str) -> Problem,
) -> Result<(Subject, String), Problem> {
    match (service, model) {
        (Some(s), None) => Ok((Subject::Service, s)),
        (None, Some(m)) => Ok((Subject::Model, m)),
        (None, None) => Err(missing("service (or model)")),
        (Some(_), Some(_)) => Err(Problem::bad_request(
            "give service or model, not both: evidence is about one of them",
        )),
    }
}

pub(crate) fn blob_problem(e: blob::Error) -> Problem {
    match e {
        blob::Error::NotFound(d) => Problem::not_found(format!("no blob {d}")),
        blob::Error::InvalidDigest(_) => Problem::bad_request(e.to_string()),
        blob::Error::Retained { .. } => Problem::forbidden(e.to_string()),
        _ => Problem::unavailable(e.to_string()),
    }
}

pub(crate) async fn submit(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<SubmitQuery>, axum::extract::rejection::QueryRejection>,
    req: Request,
) -> Result<Json<EvidenceRecord>, Problem> {
    let Query(q) = q.map_err(|e| Problem::bad_request(e.body_text()))?;
    // The catalog and the org-config's limits as committed now, not as this replica last
    // heard of them: a service onboarded a moment ago is known, and a limit lowered a moment
    // ago (a security setting) applies. One size query; 503 + Retry-After when behind.
    s.views.catch_up(&s.platform).await?;
    let max_bytes = s.views().org.evidence.max_upload_bytes;
    let sub = read_submission(q, req, max_bytes).await?;
    let name = match sub.subject {
        Subject::Service => {
            let service = ServiceName::parse(&sub.name).map_err(Problem::bad_request)?;
            goose_domain::version::Version::parse(&sub.version)
                .map_err(|e| goose_platform::problem(&e))?;
            service.to_string()
        }
        Subject::Model => {
            let model = goose_domain::model::ModelName::parse(&sub.name)
                .map_err(|e| goose_platform::problem(&e))?;
            let version: u32 = sub.version.parse().map_err(|_| {
                Problem::bad_request(format!(
                    "a model version is a number (1, 2, ...), not {:?}",
                    sub.version
                ))
            })?;
            if !s
                .views()
                .models
                .get(model.as_str())
                .is_some_and(|v| v.contains(&version))
            {
                return Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unknown model version",
                    format!("model {model} has no version {version}; register it first"),
                ));
            }
            model.to_string()
        }
    };
    let kind: EvidenceKind = sub.kind.parse().map_err(Problem::bad_request)?;
    if sub.subject == Subject::Service && kind.for_models_only() {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "evidence for models only",
            format!("{kind} evidence is about a model version: give model= instead of service="),
        ));
    }
    if sub.filename.len() > 255 || sub.filename.contains(['/', '\\', '\0']) {
        return Err(Problem::bad_request(
            "filename must be a plain name of at most 255 characters",
        ));
    }
    let (known, retention_days) = {
        let v = s.views();
        (
            sub.subject == Subject::Model || v.services.contains(&name),
            v.org.retention.evidence_days,
        )
    };
    if !known {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown service",
            format!("service {name} is not in the catalog; onboard it first"),
        ));
    }
    if sub.bytes.len() as u64 > max_bytes {
        return Err(too_large(
            max_bytes,
            &format!("a file of {} bytes", sub.bytes.len()),
        ));
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
        subject: sub.subject,
        service: name.clone(),
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
    let stream_id = sub.subject.stream_id(&name, &sub.version);
    let done = aggregate::execute::<EvidenceAgg, std::convert::Infallible>(
        &s.platform.ledger,
        &stream_id,
        &meta,
        |_| Ok(vec![event.clone()]),
    )
    .await
    .map_err(execute_problem)?;
    s.views.after_write(done.receipt, "evidence").await;
    tracing::info!(user = %caller.user, subject = ?record.subject, name = %record.service, version = %record.version, kind = %kind, digest = %record.digest, "evidence accepted");
    Ok(Json(record))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    service: Option<String>,
    model: Option<String>,
    version: Option<String>,
}

pub(crate) async fn list(
    State(s): State<AppState>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<EvidenceRecord>>, Problem> {
    let Query(q) = q.map_err(|e| Problem::bad_request(e.body_text()))?;
    let v = s.views();
    Ok(Json(
        v.records
            .values()
            .filter(|r| {
                q.service
                    .as_ref()
                    .is_none_or(|x| r.subject == Subject::Service && &r.service == x)
            })
            .filter(|r| {
                q.model
                    .as_ref()
                    .is_none_or(|x| r.subject == Subject::Model && &r.service == x)
            })
            .filter(|r| q.version.as_ref().is_none_or(|x| &r.version == x))
            .cloned()
            .collect(),
    ))
}

pub(crate) async fn get_record(
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

pub(crate) async fn get_blob(
    State(s): State<AppState>,
    caller: Caller,
    Path(digest): Path<String>,
) -> Result<Response, Problem> {
    let bytes = s.config.blobs.get(&digest).await.map_err(blob_problem)?;
    // Who read which file, when: recorded before the bytes leave; unrecorded, they do not.
    let records: Vec<String> = s
        .views()
        .records
        .values()
        .filter(|r| r.digest == digest)
        .map(|r| r.id.clone())
        .collect();
    let event = EvidenceEvent::BlobDownloaded(BlobDownload {
        digest: digest.clone(),
        by: caller.user.clone(),
        at: OffsetDateTime::now_utc(),
        records,
    });
    aggregate::execute::<EvidenceAgg, std::convert::Infallible>(
        &s.platform.ledger,
        &EvidenceEvent::download_stream(&digest),
        &Metadata::now(caller.user.clone()),
        |_| Ok(vec![event.clone()]),
    )
    .await
    .map_err(|e| {
        tracing::error!(digest = %digest, user = %caller.user, error = %e, "a download could not be recorded; refused");
        Problem::unavailable(format!(
            "the download of {digest} could not be recorded, so it is refused: {e}"
        ))
    })?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// Every recorded download of the file `digest`, oldest first, with its event's position.
pub(crate) async fn blob_downloads(
    State(s): State<AppState>,
    Path(digest): Path<String>,
) -> Result<Json<Vec<serde_json::Value>>, Problem> {
    if digest.len() != 64
        || !digest
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Err(Problem::bad_request(format!(
            "invalid digest {digest:?}: expected 64 lowercase hex characters"
        )));
    }
    let stream = goose_ledger::StreamId::new(
        goose_domain::streams::EVIDENCE,
        EvidenceEvent::download_stream(&digest),
    )
    .map_err(|e| goose_platform::ledger_problem(&e))?;
    let events = s
        .platform
        .ledger
        .read_stream(&stream, 1, u32::MAX)
        .await
        .map_err(|e| goose_platform::ledger_problem(&e))?;
    Ok(Json(
        events
            .iter()
            .filter_map(|ev| match goose_platform::decoded::<EvidenceEvent>(ev)? {
                EvidenceEvent::BlobDownloaded(d) => Some(serde_json::json!({
                    "position": ev.position,
                    "event_id": ev.event_id.to_string(),
                    "digest": d.digest,
                    "by": d.by,
                    "at": d.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                    "records": d.records,
                })),
                EvidenceEvent::EvidenceAccepted(_) => None,
            })
            .collect(),
    ))
}

pub(crate) async fn checkpoint_now(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Response, Problem> {
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
