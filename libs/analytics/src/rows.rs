//! The rows of each table, as serde structs matching the declared columns ([`crate::schema`]).
//! Times are microseconds since the Unix epoch (UTC timestamps in Arrow); durations are
//! milliseconds.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    pub position: i64,
    pub recorded_at: i64,
    pub stream: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub stream_version: i64,
    pub event_id: String,
    pub event_type: String,
    pub service: String,
    pub actor: String,
    pub digest: String,
    pub payload: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PromotionRow {
    pub promotion_id: String,
    pub position: i64,
    pub requested_at: i64,
    pub requester: String,
    pub package: Option<String>,
    pub impact: String,
    pub reason: String,
    pub policy_digest: String,
    pub targets: i64,
    pub completed_at: Option<i64>,
    pub outcome: Option<String>,
    pub promoted: Option<i64>,
    pub failed: Option<i64>,
    pub blocked: Option<i64>,
    pub duration_ms: Option<i64>,
    pub first_started_at: Option<i64>,
    pub wall_ms: Option<i64>,
    pub critical_path_ms: Option<i64>,
    pub serial_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetRow {
    pub promotion_id: String,
    pub service: String,
    pub version: String,
    pub dependencies: String,
    pub requested_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub outcome: Option<String>,
    pub already_compliant: bool,
    pub failed_check: Option<String>,
    pub reason: Option<String>,
    pub duration_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GateRow {
    pub position: i64,
    pub evaluated_at: i64,
    pub promotion_id: String,
    pub service: String,
    pub version: String,
    pub gate: String,
    pub gate_outcome: String,
    pub check: String,
    pub outcome: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvidenceRow {
    pub position: i64,
    pub evidence_id: String,
    pub service: String,
    pub version: String,
    pub kind: String,
    pub filename: String,
    pub size_bytes: i64,
    pub digest: String,
    pub submitted_at: i64,
    pub submitted_by: String,
    pub retain_until: i64,
    pub subject: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApprovalRow {
    pub approval_id: String,
    pub position: i64,
    pub kind: String,
    pub subject: String,
    pub impact: String,
    pub requester: String,
    pub required_approvers: i64,
    pub requested_at: i64,
    pub status: String,
    pub grants: i64,
    pub approvers: String,
    pub refused_attempts: i64,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
    pub wait_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TransitionRow {
    pub position: i64,
    pub at: i64,
    pub service: String,
    pub version: String,
    pub from_state: String,
    pub to_state: String,
    pub kind: String,
    pub promotion_id: Option<String>,
    pub actor: String,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IncidentRow {
    pub incident_id: String,
    pub position: i64,
    pub cause: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub severity: String,
    pub service: Option<String>,
    pub title: String,
    pub opened_by: String,
    pub opened_at: i64,
    pub acknowledged_at: Option<i64>,
    pub mitigated_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub status: String,
    pub recurrences: i64,
    pub reopened: i64,
    pub time_to_acknowledge_ms: Option<i64>,
    pub time_to_restore_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SlaWindowRow {
    pub position: i64,
    pub service: String,
    pub version: Option<String>,
    pub minute: i64,
    pub requests: i64,
    pub errors: i64,
    pub approximate: bool,
}

/// The chain watch's verdict when a query ran (the `chain` table's one row).
#[derive(Debug, Clone, Serialize)]
pub struct ChainRow {
    pub checked_at: i64,
    pub configured: bool,
    pub log_size: i64,
    pub verified: i64,
    pub checkpoint_size: Option<i64>,
    pub checkpoint_root: Option<String>,
    pub failure: Option<String>,
    pub witness_threshold: i64,
    pub witnesses: i64,
}

/// One objective of an SLO as last applied (the `slo_objectives` table).
#[derive(Debug, Clone, Serialize)]
pub struct SloObjectiveRow {
    pub slo: String,
    pub objective: String,
    pub service: String,
    /// `ratio` (good / all requests) or `latency`.
    pub indicator: String,
    pub target: f64,
    pub window_seconds: i64,
    pub applied_at: i64,
    pub applied_by: String,
    pub position: i64,
}
