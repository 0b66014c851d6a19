//! The tables' declared columns: the contract SQL users, Parquet readers and the docs rely on
//! (docs/analytics.md lists them). Times are UTC timestamps (µs); `*_ms` are milliseconds.

use crate::table::{col, few, ts, TableDef};
use datafusion::arrow::datatypes::DataType::{Boolean, Float64, Int64, Utf8};

pub fn events() -> TableDef {
    TableDef {
        name: "events",
        description: "Every event of the ledger: position, time, stream, type, the service that sealed it, actor, record digest and payload (JSON)",
        fields: vec![
            col("position", Int64, false),
            col("recorded_at", ts(), false),
            col("stream", Utf8, false),
            col("aggregate_type", few(), false),
            col("aggregate_id", Utf8, false),
            col("stream_version", Int64, false),
            col("event_id", Utf8, false),
            col("event_type", few(), false),
            col("service", few(), false),
            col("actor", few(), false),
            col("digest", Utf8, false),
            col("payload", Utf8, false),
        ],
    }
}

pub fn promotions() -> TableDef {
    TableDef {
        name: "promotions",
        description: "One row per promotion: request, outcome, duration and parallelism (wall time of its targets vs their critical path)",
        fields: vec![
            col("promotion_id", Utf8, false),
            col("position", Int64, false),
            col("requested_at", ts(), false),
            col("requester", Utf8, false),
            col("package", Utf8, true),
            col("impact", Utf8, false),
            col("reason", Utf8, false),
            col("policy_digest", Utf8, false),
            col("targets", Int64, false),
            col("completed_at", ts(), true),
            col("outcome", Utf8, true),
            col("promoted", Int64, true),
            col("failed", Int64, true),
            col("blocked", Int64, true),
            col("duration_ms", Int64, true),
            col("first_started_at", ts(), true),
            col("wall_ms", Int64, true),
            col("critical_path_ms", Int64, true),
            col("serial_ms", Int64, true),
        ],
    }
}

pub fn promotion_targets() -> TableDef {
    TableDef {
        name: "promotion_targets",
        description:
            "One row per service version in a promotion: when it started and ended, and how",
        fields: vec![
            col("promotion_id", Utf8, false),
            col("service", Utf8, false),
            col("version", Utf8, false),
            col("dependencies", Utf8, false),
            col("requested_at", ts(), false),
            col("started_at", ts(), true),
            col("ended_at", ts(), true),
            col("outcome", Utf8, true),
            col("already_compliant", Boolean, false),
            col("failed_check", Utf8, true),
            col("reason", Utf8, true),
            col("duration_ms", Int64, true),
        ],
    }
}

pub fn gate_evaluations() -> TableDef {
    TableDef {
        name: "gate_evaluations",
        description: "One row per check of each recorded gate evaluation, with its outcome and the reason given",
        fields: vec![
            col("position", Int64, false),
            col("evaluated_at", ts(), false),
            col("promotion_id", Utf8, false),
            col("service", Utf8, false),
            col("version", Utf8, false),
            col("gate", Utf8, false),
            col("gate_outcome", Utf8, false),
            col("check", Utf8, false),
            col("outcome", Utf8, false),
            col("detail", Utf8, false),
        ],
    }
}

pub fn evidence() -> TableDef {
    TableDef {
        name: "evidence",
        description: "One row per accepted evidence file",
        fields: vec![
            col("position", Int64, false),
            col("evidence_id", Utf8, false),
            col("service", Utf8, false),
            col("version", Utf8, false),
            col("kind", Utf8, false),
            col("filename", Utf8, false),
            col("size_bytes", Int64, false),
            col("digest", Utf8, false),
            col("submitted_at", ts(), false),
            col("submitted_by", Utf8, false),
            col("retain_until", ts(), false),
            // `service`, or `model` when `service` holds a model's name (`version` its number).
            col("subject", Utf8, false),
        ],
    }
}

pub fn approvals() -> TableDef {
    TableDef {
        name: "approvals",
        description: "One row per approval request: who asked, who decided, how long it waited",
        fields: vec![
            col("approval_id", Utf8, false),
            col("position", Int64, false),
            col("kind", few(), false),
            col("subject", Utf8, false),
            col("impact", few(), false),
            col("requester", Utf8, false),
            col("required_approvers", Int64, false),
            col("requested_at", ts(), false),
            col("status", few(), false),
            col("grants", Int64, false),
            col("approvers", Utf8, false),
            col("refused_attempts", Int64, false),
            col("decided_at", ts(), true),
            col("decided_by", Utf8, true),
            col("wait_ms", Int64, true),
        ],
    }
}

pub fn compliance_transitions() -> TableDef {
    TableDef {
        name: "compliance_transitions",
        description:
            "Every move of a service version's compliance state: by a promotion, or a demotion",
        fields: vec![
            col("position", Int64, false),
            col("at", ts(), false),
            col("service", Utf8, false),
            col("version", Utf8, false),
            col("from_state", Utf8, false),
            col("to_state", Utf8, false),
            col("kind", Utf8, false),
            col("promotion_id", Utf8, true),
            col("actor", Utf8, false),
            col("reason", Utf8, true),
        ],
    }
}

pub fn incidents() -> TableDef {
    TableDef {
        name: "incidents",
        description: "One row per incident with its timeline's milestones, time to acknowledge and time to restore",
        fields: vec![
            col("incident_id", Utf8, false),
            col("position", Int64, false),
            col("cause", Utf8, false),
            col("type", Utf8, false),
            col("severity", Utf8, false),
            col("service", Utf8, true),
            col("title", Utf8, false),
            col("opened_by", Utf8, false),
            col("opened_at", ts(), false),
            col("acknowledged_at", ts(), true),
            col("mitigated_at", ts(), true),
            col("resolved_at", ts(), true),
            col("status", Utf8, false),
            col("recurrences", Int64, false),
            col("reopened", Int64, false),
            col("time_to_acknowledge_ms", Int64, true),
            col("time_to_restore_ms", Int64, true),
        ],
    }
}

pub fn sla_windows() -> TableDef {
    TableDef {
        name: "sla_windows",
        description: "One row per recorded minute summary of a service's requests (the sla service's measurements)",
        fields: vec![
            col("position", Int64, false),
            col("service", Utf8, false),
            col("version", Utf8, true),
            col("minute", ts(), false),
            col("requests", Int64, false),
            col("errors", Int64, false),
            col("approximate", Boolean, false),
        ],
    }
}

pub fn chain() -> TableDef {
    TableDef {
        name: "chain",
        description: "The evidence chain as this service's chain watch verified it when the query ran (one row; none without a log key): log size, events verified, the newest verified checkpoint, the witness threshold, the first failure",
        fields: vec![
            col("checked_at", ts(), false),
            col("configured", Boolean, false),
            col("log_size", Int64, false),
            col("verified", Int64, false),
            col("checkpoint_size", Int64, true),
            col("checkpoint_root", Utf8, true),
            col("failure", Utf8, true),
            col("witness_threshold", Int64, false),
            col("witnesses", Int64, false),
        ],
    }
}

pub fn slo_objectives() -> TableDef {
    TableDef {
        name: "slo_objectives",
        description: "One row per objective of each SLO as last applied: its service, indicator (ratio: good / all requests; latency), target and window",
        fields: vec![
            col("slo", Utf8, false),
            col("objective", Utf8, false),
            col("service", Utf8, false),
            col("indicator", Utf8, false),
            col("target", Float64, false),
            col("window_seconds", Int64, false),
            col("applied_at", ts(), false),
            col("applied_by", Utf8, false),
            col("position", Int64, false),
        ],
    }
}
