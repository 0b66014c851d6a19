//! The registry's wire types.

use goose_domain::catalog::CatalogEntry;
use serde::{Deserialize, Serialize};

/// What an apply did.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApplyResult {
    /// Newly onboarded, in the order applied (dependencies first).
    pub onboarded: Vec<String>,
    /// Changed definitions, in the order applied.
    pub updated: Vec<String>,
    /// Submitted but identical to what is stored.
    pub unchanged: Vec<String>,
}

/// A service with its place in the graph.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServiceView {
    #[serde(flatten)]
    pub entry: CatalogEntry,
    pub dependants: Vec<String>,
    /// The resource limits of its compliance mode (org-config `modes`), for deployment
    /// rendering.
    pub resources: goose_domain::org_config::ModeLimits,
}
