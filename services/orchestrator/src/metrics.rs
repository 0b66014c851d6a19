//! The orchestrator's metric names, defined once.

/// Promotions recorded (counter).
pub const PROMOTIONS_REQUESTED: &str = "goose_promotions_requested_total";
/// Gate evaluations recorded, by `check` and `outcome` (counter).
pub const GATE_EVALUATIONS: &str = "goose_gate_evaluations_total";
/// Targets that ended, by `status` (promoted, failed, blocked) (counter).
pub const TARGETS_ENDED: &str = "goose_promotion_targets_ended_total";
/// Seconds from request to the end of a promotion, by `outcome` (histogram).
pub const PROMOTION_SECONDS: &str = "goose_promotion_duration_seconds";
/// Promotion steps that failed and were retried with backoff (counter).
pub const DRIVER_RETRIES: &str = "goose_promotion_step_retries_total";
/// Counter: checkpoint rows the chain watch found that the log key did not sign (intrusions).
pub use goose_platform::chain_watch::CHAIN_INTRUSIONS;
