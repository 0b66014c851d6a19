//! Compliance reports: `POST /v1/reports` builds the report of a period from the read model
//! (`goose_domain::sla::report`), signs it with this service's key (DSSE) and records it on
//! the chain (`report/<uuid>`, `ReportIssued` with the envelope and the payload's SHA3-256);
//! reads return the signed report, or render it as HTML for people.

use crate::views::ReportEntry;
use crate::{AppState, ReportAgg};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use goose_domain::package::Envelope;
use goose_domain::sla::report::{
    self, ChainSection, Cite, Issue, Report, ReportEvent, PAYLOAD_TYPE,
};
use goose_ledger::{aggregate, Metadata};
use goose_platform::JsonBody;
use goose_runtime::auth::Caller;
use goose_runtime::problem::Problem;
use serde::{Deserialize, Serialize};
use sha3::Digest as _;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The period of a report.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ReportRequest {
    /// Start of the period (RFC 3339, inclusive).
    pub from: String,
    /// End of the period (RFC 3339, exclusive; not in the future). Default: now.
    #[serde(default)]
    pub to: Option<String>,
}

/// A signed report as recorded.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignedReport {
    pub id: String,
    /// SHA3-256 (hex) of the signed payload.
    pub report_digest: String,
    /// The DSSE envelope: its payload is the report's JSON, byte for byte.
    pub envelope: Envelope,
    pub report: Report,
    /// The `ReportIssued` event recording it.
    pub report_event: Cite,
    /// The verifier key of the signer (this service's key).
    pub signer_vkey: String,
}

/// One issued report, listed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReportListing {
    pub id: String,
    pub from: String,
    pub to: String,
    pub report_digest: String,
    pub issued_by: String,
    pub issued_at: String,
    pub position: u64,
}

fn parse_time(field: &str, text: &str) -> Result<OffsetDateTime, Problem> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
        Problem::unprocessable(format!("{field}: {text:?} is not an RFC 3339 time: {e}"))
    })
}

/// The chain as the ledger holds it now: its size and the newest stored checkpoint (its note
/// is signed; `goosectl report verify` checks it with the log's key, so a row written into
/// the database by someone else is caught there), and what this process's chain watch has
/// verified, with any failure or intrusion it found.
async fn chain_section(s: &AppState, log_size: u64) -> Result<ChainSection, Problem> {
    let cp = s
        .platform
        .ledger
        .latest_checkpoint()
        .await
        .map_err(|e| goose_platform::ledger_problem(&e))?;
    let fact = s.chain.fact();
    Ok(ChainSection {
        log_size,
        checkpoint_size: cp.as_ref().map(|c| c.size),
        checkpoint: cp.map(|c| c.note),
        verified_up_to: fact.configured.then_some(fact.verified),
        verify_failure: fact.failure,
        intrusions: s
            .chain
            .intrusions()
            .into_iter()
            .map(|(id, what)| format!("checkpoint row {id}: {what}"))
            .collect(),
    })
}

fn signed(entry: &ReportEntry, signer_vkey: String) -> Result<SignedReport, Problem> {
    let ReportEvent::ReportIssued {
        report_digest,
        envelope,
        ..
    } = &entry.event;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(&envelope.payload)
        .map_err(|e| Problem::internal(format!("report {}: envelope payload: {e}", entry.id)))?;
    let report = serde_json::from_slice(&payload)
        .map_err(|e| Problem::internal(format!("report {}: payload: {e}", entry.id)))?;
    Ok(SignedReport {
        id: entry.id.clone(),
        report_digest: report_digest.clone(),
        envelope: envelope.clone(),
        report,
        report_event: entry.cite.clone(),
        signer_vkey,
    })
}

/// `POST /v1/reports`: builds, signs and records the report of `[from, to)`.
pub(crate) async fn issue(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<ReportRequest>,
) -> Result<(StatusCode, Json<SignedReport>), Problem> {
    let now = OffsetDateTime::now_utc();
    let from = parse_time("from", &req.from)?;
    let to = match &req.to {
        Some(t) => parse_time("to", t)?,
        None => now,
    };
    report::check_period(from, to, now).map_err(|e| Problem::unprocessable(e.to_string()))?;
    // Everything recorded before the report is asked for is in it.
    let as_of = s
        .platform
        .ledger
        .size()
        .await
        .map_err(|e| goose_platform::ledger_problem(&e))?;
    s.view
        .wait_applied(as_of)
        .await
        .map_err(|e| goose_platform::stale_problem(&e))?;
    let chain = chain_section(&s, as_of).await?;
    let view = s.view.clone();
    let by = caller.user.clone();
    let built = tokio::task::spawn_blocking(move || -> Result<Report, Problem> {
        let v = view.read();
        let mut sla = Vec::new();
        for (name, entry) in &v.slos {
            let summaries: Vec<_> = v
                .summaries
                .get(&entry.slo.service)
                .into_iter()
                .flatten()
                .cloned()
                .zip(
                    v.summary_cites
                        .get(&entry.slo.service)
                        .into_iter()
                        .flatten()
                        .cloned(),
                )
                .collect();
            let applied =
                v.slo_cites.get(name).cloned().ok_or_else(|| {
                    Problem::internal(format!("SLO {name} has no recorded version"))
                })?;
            sla.push(
                report::sla_section(&entry.slo, entry.version, &applied, &summaries, from, to)
                    .map_err(|e| Problem::internal(format!("SLO {name}: {e}")))?,
            );
        }
        Ok(v.report_ledger.build(
            from,
            to,
            sla,
            chain,
            Issue {
                by,
                at: now,
                as_of_position: as_of,
            },
        ))
    })
    .await
    .map_err(|e| Problem::internal(format!("building the report: {e}")))??;
    let payload =
        serde_json::to_vec(&built).map_err(|e| Problem::internal(format!("report JSON: {e}")))?;
    let key = s.platform.ledger.key();
    let envelope: Envelope = serde_json::from_value(goose_evidence::dsse::sign(
        PAYLOAD_TYPE,
        &payload,
        key.key_id(),
        key.signing_key(),
    ))
    .map_err(|e| Problem::internal(format!("envelope: {e}")))?;
    let event = ReportEvent::ReportIssued {
        from: built.from.clone(),
        to: built.to.clone(),
        as_of_position: as_of,
        report_digest: hex::encode(sha3::Sha3_256::digest(&payload)),
        envelope,
        issued_by: caller.user.clone(),
    };
    let id = uuid::Uuid::new_v4().to_string();
    let meta = Metadata::now(caller.user.clone());
    let done = aggregate::execute::<ReportAgg, Problem>(&s.platform.ledger, &id, &meta, |cur| {
        if cur.0.issued {
            return Err(Problem::conflict(format!("report {id} exists")));
        }
        Ok(vec![event.clone()])
    })
    .await
    .map_err(|e| match e {
        aggregate::ExecuteError::Rejected(p) => p,
        aggregate::ExecuteError::Ledger(l) => goose_platform::ledger_problem(&l),
    })?;
    s.view.after_write(done.receipt, "sla").await;
    let entry = s.view.read().reports.get(&id).cloned().ok_or_else(|| {
        Problem::internal(format!("report {id} was recorded but is not read back"))
    })?;
    crate::metrics::REPORTS_ISSUED.counter(&[]).increment(1);
    tracing::info!(user = %caller.user, %id, from = %built.from, to = %built.to, position = entry.cite.position, "compliance report issued");
    Ok((StatusCode::CREATED, Json(signed(&entry, key.vkey())?)))
}

pub(crate) async fn list(State(s): State<AppState>) -> Json<Vec<ReportListing>> {
    let v = s.view.read();
    let mut out: Vec<ReportListing> = v
        .reports
        .values()
        .map(|r| {
            let ReportEvent::ReportIssued {
                from,
                to,
                report_digest,
                issued_by,
                ..
            } = &r.event;
            ReportListing {
                id: r.id.clone(),
                from: from.clone(),
                to: to.clone(),
                report_digest: report_digest.clone(),
                issued_by: issued_by.clone(),
                issued_at: r.at.format(&Rfc3339).unwrap_or_default(),
                position: r.cite.position,
            }
        })
        .collect();
    out.sort_by_key(|r| r.position);
    Json(out)
}

async fn find(s: &AppState, id: &str) -> Result<ReportEntry, Problem> {
    if !s.view.read().reports.contains_key(id) {
        s.view.catch_up(&s.platform).await?;
    }
    s.view
        .read()
        .reports
        .get(id)
        .cloned()
        .ok_or_else(|| Problem::not_found(format!("no report {id}")))
}

pub(crate) async fn get(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SignedReport>, Problem> {
    let entry = find(&s, &id).await?;
    Ok(Json(signed(&entry, s.platform.ledger.key().vkey())?))
}

/// `GET /v1/reports/{id}/html`: the report for people (readable and printable).
pub(crate) async fn html(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let entry = find(&s, &id).await?;
    let signed = signed(&entry, s.platform.ledger.key().vkey())?;
    let page = crate::report_html::render(&signed);
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response())
}
