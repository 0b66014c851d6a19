//! Read-only HTTP endpoints of the evidence chain: the newest checkpoint, inclusion proofs and
//! consistency proofs. The checkpoint (a signed tree head) is public, as in any transparency
//! log; proofs need `audit.read` (auditors, admins) because a tlog-proof carries the event
//! record.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use goose_domain::rbac::Permission;
use goose_ledger::{Error, LedgerReader, RecordedEvent, TlogProof, Vkey};
use goose_runtime::problem::Problem;
use goose_runtime::routes::{Access, QueryParam, RouteSpec, Routes};
use serde::{Deserialize, Serialize};

/// Ledger errors as problem+json: the platform's one mapping, with a chain-specific word for
/// an event that is not in the log.
fn problem(e: Error) -> Problem {
    match e {
        Error::NotFound(m) => Problem::not_found(format!("event {m} is not in the log")),
        other => goose_platform::ledger_problem(&other),
    }
}

#[derive(Debug, Clone)]
struct ChainState {
    reader: LedgerReader,
    /// Only checkpoints this key signed are served or proven against; other rows are junk.
    log_key: Vkey,
}

fn api() -> Routes<ChainState> {
    Routes::new()
        .route(
            RouteSpec::get(
                "/v1/chain/checkpoint",
                Access::Public,
                "The newest signed checkpoint (C2SP signed note)",
            ),
            latest_checkpoint,
        )
        .route(
            RouteSpec::get(
                "/v1/chain/proofs/inclusion/{event_id}",
                Access::Permission(Permission::AuditRead),
                "Inclusion proof of an event (?format=tlog-proof for the offline file)",
            ),
            inclusion,
        )
        .route(
            RouteSpec::get(
                "/v1/chain/proofs/consistency",
                Access::Permission(Permission::AuditRead),
                "Consistency proof between two tree sizes (?from=&to=)",
            )
            .query(&[
                QueryParam {
                    name: "from",
                    required: true,
                    kind: "integer",
                    values: &[],
                    description: "The older tree size",
                },
                QueryParam {
                    name: "to",
                    required: false,
                    kind: "integer",
                    values: &[],
                    description: "The newer tree size (default: the newest checkpoint's)",
                },
            ]),
            consistency,
        )
}

/// The chain routes (under `/v1/chain`) and their specs.
pub fn routes(reader: LedgerReader, log_key: Vkey) -> (Router, Vec<RouteSpec>) {
    let (router, specs) = api().into_parts();
    (router.with_state(ChainState { reader, log_key }), specs)
}

/// The specs of the chain routes.
pub fn specs() -> Vec<RouteSpec> {
    api().specs().to_vec()
}

/// The newest checkpoint signed by `log_key` of at least `min_size`; rows that do not verify
/// are logged as intrusions and skipped.
async fn newest_valid(
    reader: &LedgerReader,
    log_key: &Vkey,
    min_size: u64,
) -> goose_ledger::Result<Option<goose_ledger::SignedCheckpoint>> {
    let (cp, intrusions) = reader.latest_valid_checkpoint(log_key, min_size).await?;
    for i in intrusions {
        tracing::error!(intrusion = %i, "checkpoint row that this log did not sign; skipped");
    }
    Ok(cp)
}

async fn latest_checkpoint(State(s): State<ChainState>) -> Result<Response, Problem> {
    let cp = newest_valid(&s.reader, &s.log_key, 0)
        .await
        .map_err(problem)?
        .ok_or_else(|| Problem::not_found("no checkpoint has been signed yet"))?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        cp.note,
    )
        .into_response())
}

/// Builds the offline proof of `event` against the newest checkpoint that covers it; also
/// returns that checkpoint's tree size. Its extra data is the event's [`goose_ledger::Authorship`].
pub async fn offline_proof(
    reader: &LedgerReader,
    log_key: &Vkey,
    event: &RecordedEvent,
) -> goose_ledger::Result<(TlogProof, u64)> {
    reader.offline_proof(log_key, event).await
}

#[derive(Debug, Deserialize)]
struct InclusionQuery {
    /// `json` (default) or `tlog-proof`.
    format: Option<String>,
}

/// An inclusion proof as JSON.
#[derive(Debug, Serialize, Deserialize)]
pub struct InclusionResponse {
    pub event_id: String,
    pub index: u64,
    pub tree_size: u64,
    /// Hex SHA3-256 digest of the event record: the leaf data.
    pub leaf_digest: String,
    /// Base64 SHA-256 hashes, from the leaf's sibling upwards (RFC 6962).
    pub hashes: Vec<String>,
    /// The signed checkpoint (C2SP note) the proof is against.
    pub checkpoint: String,
}

async fn inclusion(
    State(ChainState { reader, log_key }): State<ChainState>,
    Path(event_id): Path<String>,
    q: Result<Query<InclusionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Query(q) = q.map_err(|e| Problem::bad_request(e.body_text()))?;
    let id = uuid::Uuid::parse_str(&event_id)
        .map_err(|_| Problem::bad_request(format!("{event_id:?} is not an event id (UUID)")))?;
    let event = reader.find_event(id).await.map_err(problem)?;
    let (proof, size) = offline_proof(&reader, &log_key, &event)
        .await
        .map_err(|e| match e {
            Error::InvalidInput(m) => Problem::new(StatusCode::CONFLICT, "not yet checkpointed", m),
            other => problem(other),
        })?;
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(InclusionResponse {
            event_id: event.event_id.to_string(),
            index: proof.index,
            tree_size: size,
            leaf_digest: hex::encode(event.digest),
            hashes: proof.hashes.iter().map(|h| B64.encode(h)).collect(),
            checkpoint: proof.checkpoint_note,
        })
        .into_response()),
        Some("tlog-proof") => Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            proof.to_text(),
        )
            .into_response()),
        Some(other) => Err(Problem::bad_request(format!(
            "format {other:?} is not one of json, tlog-proof"
        ))),
    }
}

#[derive(Debug, Deserialize)]
struct ConsistencyQuery {
    from: Option<String>,
    to: Option<String>,
}

/// A consistency proof as JSON.
#[derive(Debug, Serialize, Deserialize)]
pub struct ConsistencyResponse {
    pub from: u64,
    pub to: u64,
    pub hashes: Vec<String>,
}

fn parse_size(name: &str, v: Option<&str>) -> Result<Option<u64>, Problem> {
    v.map(|s| {
        s.parse::<u64>().map_err(|_| {
            Problem::bad_request(format!(
                "{name}={s:?} is not a tree size (a non-negative integer)"
            ))
        })
    })
    .transpose()
}

async fn consistency(
    State(ChainState { reader, .. }): State<ChainState>,
    q: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ConsistencyResponse>, Problem> {
    let Query(q) = q.map_err(|e| Problem::bad_request(e.body_text()))?;
    let from = parse_size("from", q.from.as_deref())?
        .ok_or_else(|| Problem::bad_request("query parameter `from` (a tree size) is required"))?;
    let to = match parse_size("to", q.to.as_deref())? {
        Some(to) => to,
        None => reader.size().await.map_err(problem)?,
    };
    let hashes = reader.consistency_proof(from, to).await.map_err(problem)?;
    Ok(Json(ConsistencyResponse {
        from,
        to,
        hashes: hashes.iter().map(|h| B64.encode(h)).collect(),
    }))
}
