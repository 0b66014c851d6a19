//! The sla service's own metric names (exported on /metrics).

/// Remote-written series by what became of them (`outcome`: used, ignored, unusable).
pub const REMOTE_WRITE_SERIES: &str = "goose_sla_remote_write_series_total";

/// Telemetry samples folded into minute accumulators.
pub const TELEMETRY_SAMPLES: &str = "goose_sla_telemetry_samples_total";
/// Telemetry messages dropped (`reason`: subject, unknown_service, malformed).
pub const TELEMETRY_DROPPED: &str = "goose_sla_telemetry_dropped_messages_total";
/// Flushes whose summaries could not be recorded (kept and retried).
pub const TELEMETRY_FLUSH_FAILURES: &str = "goose_sla_telemetry_flush_failures_total";
/// Compliance reports issued (signed and recorded).
pub const REPORTS_ISSUED: &str = "goose_sla_reports_issued_total";
