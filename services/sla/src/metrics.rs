//! The sla service's own metric names (exported on /metrics).

/// Remote-written series by what became of them (`outcome`: used, ignored, unusable).
pub const REMOTE_WRITE_SERIES: &str = "goose_sla_remote_write_series_total";
