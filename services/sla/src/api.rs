//! The sla service's wire types.

use goose_domain::sla::measure::Sample;
use serde::{Deserialize, Serialize};

/// What applying an OpenSLO stream did, per SLO.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppliedSlo {
    pub name: String,
    /// The SLO's version after the apply.
    pub version: u64,
    /// False when the definition was identical to the current version (nothing recorded).
    pub changed: bool,
}

/// A batch of one service's request samples.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeasurementBatch {
    pub service: String,
    /// The batch's id (1 to 64 of A-Z a-z 0-9 - _): a batch sent again with the same id is
    /// recognised and not counted twice. A random one when absent.
    #[serde(default)]
    pub batch_id: Option<String>,
    /// The version that served the requests (a staging run before promotion, a canary):
    /// `performance_baseline_met` reads the measurements of the version it promotes.
    #[serde(default)]
    pub version: Option<String>,
    pub samples: Vec<Sample>,
}

/// What a batch became on the chain.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Recorded {
    pub batch_id: String,
    /// True when this batch id was recorded before (nothing new was recorded).
    pub duplicate: bool,
    pub samples: u64,
    /// Minute summaries recorded (one per minute the samples fall in).
    pub minutes: u64,
}
