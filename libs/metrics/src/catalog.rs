//! The catalog. Names follow Prometheus conventions (base units, `_total` counters); the seed
//! documents' names are kept where they give them (`compliance_state`, `promotion_status`,
//! `service_dependencies`, `http_requests_total`).

use crate::{Kind, Metric, LATENCY_BUCKETS, PROMOTION_BUCKETS, RATIO_BUCKETS};

const fn counter(
    name: &'static str,
    labels: &'static [&'static str],
    exported_by: &'static str,
    help: &'static str,
) -> Metric {
    Metric {
        name,
        kind: Kind::Counter,
        help,
        labels,
        exported_by,
        buckets: &[],
    }
}

const fn gauge(
    name: &'static str,
    labels: &'static [&'static str],
    exported_by: &'static str,
    help: &'static str,
) -> Metric {
    Metric {
        name,
        kind: Kind::Gauge,
        help,
        labels,
        exported_by,
        buckets: &[],
    }
}

const fn histogram(
    name: &'static str,
    labels: &'static [&'static str],
    buckets: &'static [f64],
    exported_by: &'static str,
    help: &'static str,
) -> Metric {
    Metric {
        name,
        kind: Kind::Histogram,
        help,
        labels,
        exported_by,
        buckets,
    }
}

const EVERY: &str = "every service";

/// HTTP requests (every route of every service).
pub mod http {
    use super::*;
    pub const REQUESTS: Metric = counter(
        "http_requests_total",
        &["route", "method", "code"],
        EVERY,
        "HTTP requests answered, by route template (`/v1/services/{name}`, `unmatched` for no route), method and status code.",
    );
    pub const DURATION: Metric = histogram(
        "http_request_duration_seconds",
        &["route", "method", "code"],
        LATENCY_BUCKETS,
        EVERY,
        "Seconds from a request's arrival to its response headers, by route template, method and status code.",
    );
}

/// Health and dependencies (seed 002).
pub mod health {
    use super::*;
    pub const STATUS: Metric = gauge(
        "goose_health_status",
        &[],
        EVERY,
        "1 while the process is ready (every dependency answers and no readiness condition holds), else 0; what /readyz answers, checked every 5 s.",
    );
    pub const DEPENDENCY_UP: Metric = gauge(
        "goose_dependency_up",
        &["dependency"],
        EVERY,
        "1 while a dependency answers (`ledger`, `bus`, or a peer service by name), else 0.",
    );
    pub const NOT_READY: Metric = gauge(
        "goose_not_ready",
        &["condition"],
        EVERY,
        "1 while a readiness condition keeps the service not ready, by condition.",
    );
    pub const RATE_LIMITED: Metric = counter(
        "goose_rate_limited_total",
        &["limit"],
        EVERY,
        "Requests refused by a rate limit (`address`, `user`).",
    );
}

/// The ledger (every process that writes).
pub mod ledger {
    use super::*;
    pub const EVENTS_APPENDED: Metric = counter(
        "goose_ledger_events_appended_total",
        &[],
        EVERY,
        "Events written to the ledger (idempotent duplicates excluded).",
    );
    pub const APPENDS_REJECTED: Metric = counter(
        "goose_ledger_appends_rejected_total",
        &[],
        EVERY,
        "Appends refused (version conflicts, idempotency mismatches).",
    );
    pub const COMMIT_FAILURES: Metric = counter(
        "goose_ledger_commit_failures_total",
        &[],
        EVERY,
        "Group commits that failed in storage (their appends got the error).",
    );
    pub const COMMIT_SECONDS: Metric = histogram(
        "goose_ledger_commit_seconds",
        &[],
        LATENCY_BUCKETS,
        EVERY,
        "Seconds per group commit.",
    );
    pub const LOG_SIZE: Metric = gauge(
        "goose_ledger_log_size",
        &[],
        EVERY,
        "Events in the log (its Merkle tree size) as this process last committed or read.",
    );
}

/// The bus: outbox relay and read models.
pub mod bus {
    use super::*;
    pub const RELAY_PUBLISHED: Metric = counter(
        "goose_relay_published_events_total",
        &["relay"],
        EVERY,
        "Events the outbox relay published, by relay (the service whose events it carries).",
    );
    pub const RELAY_LEADER: Metric = gauge(
        "goose_relay_leader",
        &["relay"],
        EVERY,
        "1 while this process leads that relay (one leader per deployment), else 0.",
    );
    pub const RELAY_LEADERSHIP_LOST: Metric = counter(
        "goose_relay_leadership_lost_total",
        &["relay"],
        EVERY,
        "Relay leaderships lost (the database session holding the lock ended).",
    );
    pub const RELAY_FAILURES: Metric = counter(
        "goose_relay_failures_total",
        &["relay"],
        EVERY,
        "Relay publish attempts that failed (retried with backoff).",
    );
    pub const RELAY_LAG: Metric = gauge(
        "goose_relay_lag_events",
        &["relay"],
        EVERY,
        "Events committed but not yet past the leading relay's cursor (0 when caught up).",
    );
    pub const STALE_READS: Metric = counter(
        "goose_read_model_stale_total",
        &[],
        EVERY,
        "Waits for a read model to reach a position that timed out (the model was behind).",
    );
    pub const UNDECODABLE_EVENTS: Metric = counter(
        "goose_read_model_undecodable_events_total",
        &["aggregate"],
        EVERY,
        "Events a read model could not decode and skipped (logged with their positions).",
    );
    pub const SNAPSHOTS_RESTORED: Metric = counter(
        "goose_read_model_snapshots_restored_total",
        &["view"],
        EVERY,
        "Read models started from a kept snapshot instead of replaying the ledger.",
    );
    pub const SNAPSHOTS_REFUSED: Metric = counter(
        "goose_read_model_snapshots_refused_total",
        &["view", "reason"],
        EVERY,
        "Kept snapshots not used at start (`unreadable`, `ahead`, `mismatch`, `ledger`): the view replayed the ledger instead.",
    );
    pub const SNAPSHOTS_WRITTEN: Metric = counter(
        "goose_read_model_snapshots_written_total",
        &["view"],
        EVERY,
        "Read-model snapshots written to the snapshot directory.",
    );
    pub const SNAPSHOT_FAILURES: Metric = counter(
        "goose_read_model_snapshot_failures_total",
        &["view"],
        EVERY,
        "Read-model snapshots that could not be written (logged; the next attempt follows).",
    );
    pub const REFUSAL_NOTICES_DROPPED: Metric = counter(
        "goose_refusal_notices_dropped_total",
        &["reason"],
        EVERY,
        "Refused-request notices not delivered to the sla service (`queue_full`, `publish`).",
    );
}

/// Evidence chain integrity (seed 003).
pub mod chain {
    use super::*;
    pub const VERIFY_OK: Metric = gauge(
        "goose_chain_verify_ok",
        &[],
        "orchestrator, sla, analytics",
        "1 while the chain watch verifies every event up to the newest signed checkpoint, 0 once it found a problem.",
    );
    pub const VERIFIED_EVENTS: Metric = gauge(
        "goose_chain_verified_events",
        &[],
        "orchestrator, sla, analytics",
        "Events the chain watch verified from position 0 (digests, links, signatures, Merkle nodes).",
    );
    pub const LAST_VERIFY: Metric = gauge(
        "goose_chain_last_verify_timestamp_seconds",
        &[],
        "orchestrator, sla, analytics",
        "Unix time the chain watch last finished a verification round.",
    );
    pub const CHECKPOINT_SIZE: Metric = gauge(
        "goose_chain_checkpoint_size",
        &[],
        "orchestrator, sla, analytics",
        "Tree size of the newest checkpoint signed by the log key.",
    );
    pub const CHECKPOINT_SEEN: Metric = gauge(
        "goose_chain_checkpoint_seen_timestamp_seconds",
        &[],
        "orchestrator, sla, analytics",
        "Unix time the chain watch first saw the newest signed checkpoint.",
    );
    pub const INTRUSIONS: Metric = counter(
        "goose_chain_intrusions_total",
        &[],
        "orchestrator, sla, analytics",
        "Checkpoint rows the log key did not sign (written by someone with database rights).",
    );
    pub const CHECKPOINTS_PUBLISHED: Metric = counter(
        "goose_checkpoints_published_total",
        &[],
        "evidence",
        "Checkpoints signed and stored.",
    );
    pub const COSIGNATURES: Metric = counter(
        "goose_checkpoint_cosignatures_total",
        &["witness"],
        "evidence",
        "Cosignatures collected, by witness.",
    );
    pub const WITNESS_FAILURES: Metric = counter(
        "goose_checkpoint_witness_failures_total",
        &["witness", "reason"],
        "evidence",
        "Witness requests that failed, by witness and reason (`conflict`: the witness holds a different tree for that size — disagreement; `refused`, `unreachable`).",
    );
    pub const WITNESSED: Metric = gauge(
        "goose_checkpoint_witnessed",
        &[],
        "evidence",
        "1 when the newest checkpoint meets the witness policy, else 0.",
    );
    pub const SINK_FAILURES: Metric = counter(
        "goose_checkpoint_sink_failures_total",
        &["sink"],
        "evidence",
        "Checkpoint copies that could not be written, by sink (`dir`, `s3`).",
    );
}

/// Write-once evidence storage (seed 003).
pub mod worm {
    use super::*;
    pub const OBJECTS: Metric = gauge(
        "goose_worm_objects",
        &["backend"],
        "evidence",
        "Objects in the evidence blob store.",
    );
    pub const BYTES: Metric = gauge(
        "goose_worm_bytes",
        &["backend"],
        "evidence",
        "Bytes in the evidence blob store.",
    );
    pub const OLDEST_WRITE: Metric = gauge(
        "goose_worm_oldest_object_timestamp_seconds",
        &["backend"],
        "evidence",
        "Unix time of the oldest object's write.",
    );
    pub const RETENTION_HORIZON: Metric = gauge(
        "goose_worm_retention_horizon_timestamp_seconds",
        &["backend"],
        "evidence",
        "Unix time before which no object may be deleted (the earliest retention date).",
    );
    pub const STATS_FAILURES: Metric = counter(
        "goose_worm_stats_failures_total",
        &["backend"],
        "evidence",
        "Failed attempts to count the store.",
    );
}

/// Compliance and promotions (seed 001 §3.6, seed 003).
pub mod promotion {
    use super::*;
    pub const COMPLIANCE_STATE: Metric = gauge(
        "compliance_state",
        &["service", "version", "state"],
        "orchestrator (at scrape)",
        "1 for a version's current compliance state (`sandbox`, `compliance_ready`, `compliant`), 0 for the others.",
    );
    pub const STATUS: Metric = gauge(
        "promotion_status",
        &["service", "status"],
        "orchestrator (at scrape)",
        "1 for the status of a service's newest promotion target (`pending`, `running`, `promoted`, `failed`, `blocked`), 0 for the others.",
    );
    pub const DEPENDENCIES: Metric = gauge(
        "service_dependencies",
        &["service", "depends_on", "kind"],
        "orchestrator (at scrape)",
        "1 per dependency edge of the catalog (`kind`: runtime, data, security).",
    );
    pub const SERVICE_MODE: Metric = gauge(
        "goose_service_mode",
        &["service", "mode"],
        "orchestrator (at scrape)",
        "1 for a service's declared compliance mode (`sandbox`, `compliant`), 0 for the other.",
    );
    pub const MODE_TRANSITIONS: Metric = counter(
        "goose_mode_transitions_total",
        &["from", "to"],
        "orchestrator",
        "Changes of a service's declared compliance mode read from the catalog's events (replayed at start: the count on the ledger).",
    );
    pub const REQUESTED: Metric = counter(
        "goose_promotions_requested_total",
        &[],
        "orchestrator",
        "Promotions recorded.",
    );
    pub const GATE_EVALUATIONS: Metric = counter(
        "goose_gate_evaluations_total",
        &["check", "outcome"],
        "orchestrator",
        "Gate checks evaluated, by check and outcome (`pass`, `fail`, `missing`).",
    );
    pub const TARGETS_ENDED: Metric = counter(
        "goose_promotion_targets_ended_total",
        &["status"],
        "orchestrator",
        "Promotion targets that ended, by status (`promoted`, `failed`, `blocked`): the success/failure rate.",
    );
    pub const DURATION: Metric = histogram(
        "goose_promotion_duration_seconds",
        &["outcome"],
        PROMOTION_BUCKETS,
        "orchestrator",
        "Seconds from a promotion's request to its end, by outcome.",
    );
    pub const PARALLEL_EFFICIENCY: Metric = histogram(
        "goose_promotion_parallel_efficiency",
        &[],
        RATIO_BUCKETS,
        "orchestrator",
        "Per ended promotion of two or more started targets: the critical path of its targets' durations along dependencies divided by their wall time (1.0: as parallel as the graph allows).",
    );
    pub const STEP_RETRIES: Metric = counter(
        "goose_promotion_step_retries_total",
        &[],
        "orchestrator",
        "Promotion steps that failed and were retried with backoff.",
    );
    pub const RUNNING: Metric = gauge(
        "goose_promotions_running",
        &[],
        "orchestrator (at scrape)",
        "Promotions requested and not yet ended.",
    );
    pub const OLDEST_RUNNING_AGE: Metric = gauge(
        "goose_promotion_oldest_running_age_seconds",
        &[],
        "orchestrator (at scrape)",
        "Age of the oldest promotion not yet ended (0 when none runs).",
    );
    pub const APPROVALS_PENDING: Metric = gauge(
        "goose_approvals_pending",
        &[],
        "orchestrator (at scrape)",
        "Promotions waiting for an approval decision.",
    );
    pub const OLDEST_APPROVAL_AGE: Metric = gauge(
        "goose_approval_oldest_pending_age_seconds",
        &[],
        "orchestrator (at scrape)",
        "How long the oldest promotion waiting for approval has waited (0 when none waits).",
    );
    pub const REACTOR_FAILURES: Metric = counter(
        "goose_orchestrator_incident_reactor_failures_total",
        &[],
        "orchestrator",
        "Demotions the incident reactor could not record (logged; tried again).",
    );
}

/// rbac.
pub mod rbac {
    use super::*;
    pub const UNRECORDED_REFUSALS: Metric = counter(
        "goose_rbac_unrecorded_refusals_total",
        &[],
        "rbac",
        "Refused approval attempts that could not be recorded (each failed its request).",
    );
    pub const SSO_EXCHANGES: Metric = counter(
        "goose_rbac_sso_exchanges_total",
        &["issuer", "outcome"],
        "rbac",
        "External (OpenID provider) tokens presented for exchange, by issuer and outcome (issued, refused, unavailable).",
    );
    pub const SSO_KEY_FETCH_FAILURES: Metric = counter(
        "goose_rbac_sso_key_fetch_failures_total",
        &["issuer"],
        "rbac",
        "Failed fetches of an OpenID provider's discovery document or keys (cached keys stay in use).",
    );
}

/// The model registry.
pub mod registry {
    use super::*;
    pub const GUARD_FAILURES: Metric = counter(
        "goose_registry_model_guard_failures_total",
        &[],
        "registry",
        "Model guard rounds that failed (retried at the next wake-up).",
    );
    pub const ROLLBACKS: Metric = counter(
        "goose_registry_model_rollbacks_total",
        &[],
        "registry",
        "Automatic model rollbacks recorded.",
    );
}

/// The sla service.
pub mod sla {
    use super::*;
    pub const EVALUATION_FAILURES: Metric = counter(
        "goose_sla_evaluation_failures_total",
        &[],
        "sla",
        "SLO evaluations that failed (logged; retried at the next tick).",
    );
    pub const REFUSAL_NOTICES: Metric = counter(
        "goose_sla_refusal_notices_total",
        &["outcome"],
        "sla",
        "Refused-request notices received (`counted`, `malformed`).",
    );
    pub const REMOTE_WRITE_SERIES: Metric = counter(
        "goose_sla_remote_write_series_total",
        &["outcome"],
        "sla",
        "Remote-written series by what became of them (`used`, `ignored`, `unusable`).",
    );
    pub const TELEMETRY_SAMPLES: Metric = counter(
        "goose_sla_telemetry_samples_total",
        &[],
        "sla",
        "Telemetry samples folded into minute summaries.",
    );
    pub const TELEMETRY_DROPPED: Metric = counter(
        "goose_sla_telemetry_dropped_messages_total",
        &["reason"],
        "sla",
        "Telemetry messages dropped (`subject`, `unknown_service`, `malformed`).",
    );
    pub const TELEMETRY_FLUSH_FAILURES: Metric = counter(
        "goose_sla_telemetry_flush_failures_total",
        &[],
        "sla",
        "Flushes whose summaries could not be recorded (kept and retried).",
    );
    pub const REPORTS_ISSUED: Metric = counter(
        "goose_sla_reports_issued_total",
        &[],
        "sla",
        "Compliance reports issued (signed and recorded).",
    );
    pub const BURN_RATE: Metric = gauge(
        "goose_slo_burn_rate",
        &["slo", "objective", "service", "window"],
        "sla (at scrape)",
        "An SLO objective's error-budget burn rate over each window of its alert conditions (`window`: `3600s`...; 1.0: the budget lasts exactly the period). Absent while the window has no requests.",
    );
    pub const BUDGET_REMAINING: Metric = gauge(
        "goose_slo_error_budget_remaining_ratio",
        &["slo", "objective", "service"],
        "sla (at scrape)",
        "Share of an SLO objective's error budget left in its window (1 untouched, 0 spent, negative overspent). Absent while the window has no requests.",
    );
    pub const ALERT_FIRING: Metric = gauge(
        "goose_slo_alert_firing",
        &["slo", "objective", "service", "alert", "severity"],
        "sla (at scrape)",
        "1 while an SLO objective's burn-rate alert condition fires (both of its windows over the factor, as the sla service evaluates it), else 0; `severity`: page (6x and faster) or ticket.",
    );
    pub const OPEN_INCIDENTS: Metric = gauge(
        "goose_incidents_open",
        &["service", "severity"],
        "sla (at scrape)",
        "Incidents not yet resolved, by service (`none` for platform-wide ones) and severity (`info`, `warning`, `error`, `critical`).",
    );
}

/// The analytics service.
pub mod analytics {
    use super::*;
    pub const QUERIES: Metric = counter(
        "goose_analytics_queries_total",
        &["outcome"],
        "analytics",
        "Queries, by outcome (`answered`, `refused`, `failed`, `timeout`, ...).",
    );
    pub const LEDGER_ROWS_READ: Metric = counter(
        "goose_analytics_ledger_rows_read_total",
        &[],
        "analytics",
        "Rows `ledger_events` scans read from the ledger.",
    );
    pub const QUERY_SECONDS: Metric = histogram(
        "goose_analytics_query_duration_seconds",
        &[],
        LATENCY_BUCKETS,
        "analytics",
        "Seconds an answered query took.",
    );
    pub const EXPORTS: Metric = counter(
        "goose_analytics_exports_total",
        &[],
        "analytics",
        "Parquet exports done.",
    );
    pub const EXPORT_FAILURES: Metric = counter(
        "goose_analytics_export_failures_total",
        &[],
        "analytics",
        "Parquet exports that failed (retried at the next round).",
    );
    pub const EXPORT_POSITION: Metric = gauge(
        "goose_analytics_export_position",
        &[],
        "analytics",
        "The ledger position every exported table reaches.",
    );
    pub const UNDECODABLE: Metric = counter(
        "goose_analytics_undecodable_events_total",
        &[],
        "analytics",
        "Events whose payload did not decode (their `events` row exists; typed tables lack them).",
    );
    pub const STREAMS: Metric = gauge(
        "goose_analytics_kpi_streams",
        &[],
        "analytics",
        "Open KPI server-sent-event streams.",
    );
}

/// Every metric, in documentation order.
pub const ALL: &[&Metric] = &[
    &http::REQUESTS,
    &http::DURATION,
    &health::STATUS,
    &health::DEPENDENCY_UP,
    &health::NOT_READY,
    &health::RATE_LIMITED,
    &ledger::EVENTS_APPENDED,
    &ledger::APPENDS_REJECTED,
    &ledger::COMMIT_FAILURES,
    &ledger::COMMIT_SECONDS,
    &ledger::LOG_SIZE,
    &bus::RELAY_PUBLISHED,
    &bus::RELAY_LEADER,
    &bus::RELAY_LEADERSHIP_LOST,
    &bus::RELAY_FAILURES,
    &bus::RELAY_LAG,
    &bus::STALE_READS,
    &bus::UNDECODABLE_EVENTS,
    &bus::SNAPSHOTS_RESTORED,
    &bus::SNAPSHOTS_REFUSED,
    &bus::SNAPSHOTS_WRITTEN,
    &bus::SNAPSHOT_FAILURES,
    &bus::REFUSAL_NOTICES_DROPPED,
    &chain::VERIFY_OK,
    &chain::VERIFIED_EVENTS,
    &chain::LAST_VERIFY,
    &chain::CHECKPOINT_SIZE,
    &chain::CHECKPOINT_SEEN,
    &chain::INTRUSIONS,
    &chain::CHECKPOINTS_PUBLISHED,
    &chain::COSIGNATURES,
    &chain::WITNESS_FAILURES,
    &chain::WITNESSED,
    &chain::SINK_FAILURES,
    &worm::OBJECTS,
    &worm::BYTES,
    &worm::OLDEST_WRITE,
    &worm::RETENTION_HORIZON,
    &worm::STATS_FAILURES,
    &promotion::COMPLIANCE_STATE,
    &promotion::STATUS,
    &promotion::DEPENDENCIES,
    &promotion::SERVICE_MODE,
    &promotion::MODE_TRANSITIONS,
    &promotion::REQUESTED,
    &promotion::GATE_EVALUATIONS,
    &promotion::TARGETS_ENDED,
    &promotion::DURATION,
    &promotion::PARALLEL_EFFICIENCY,
    &promotion::STEP_RETRIES,
    &promotion::RUNNING,
    &promotion::OLDEST_RUNNING_AGE,
    &promotion::APPROVALS_PENDING,
    &promotion::OLDEST_APPROVAL_AGE,
    &promotion::REACTOR_FAILURES,
    &rbac::UNRECORDED_REFUSALS,
    &rbac::SSO_EXCHANGES,
    &rbac::SSO_KEY_FETCH_FAILURES,
    &registry::GUARD_FAILURES,
    &registry::ROLLBACKS,
    &sla::EVALUATION_FAILURES,
    &sla::REFUSAL_NOTICES,
    &sla::REMOTE_WRITE_SERIES,
    &sla::TELEMETRY_SAMPLES,
    &sla::TELEMETRY_DROPPED,
    &sla::TELEMETRY_FLUSH_FAILURES,
    &sla::REPORTS_ISSUED,
    &sla::BURN_RATE,
    &sla::BUDGET_REMAINING,
    &sla::ALERT_FIRING,
    &sla::OPEN_INCIDENTS,
    &analytics::QUERIES,
    &analytics::LEDGER_ROWS_READ,
    &analytics::QUERY_SECONDS,
    &analytics::EXPORTS,
    &analytics::EXPORT_FAILURES,
    &analytics::EXPORT_POSITION,
    &analytics::UNDECODABLE,
    &analytics::STREAMS,
];
