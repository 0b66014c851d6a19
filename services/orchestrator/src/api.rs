//! The orchestrator's wire types.

use goose_domain::approval::ImpactLevel;
use goose_domain::compliance::ComplianceState;
use goose_domain::package::Package;
use goose_domain::promotion::Promotion;
use serde::{Deserialize, Serialize};

/// Services that must (or may) be compliant first, besides the catalog's dependencies.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DependencyRefs {
    #[serde(default)]
    pub required: Vec<String>,
    #[serde(default)]
    pub optional: Vec<String>,
}

fn compliant() -> ComplianceState {
    ComplianceState::Compliant
}

/// The seed's promotion request (001 §5.2), with the version to promote.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromotionRequest {
    #[schema(pattern = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
    pub service: String,
    #[schema(pattern = "^[A-Za-z0-9._+-]{1,64}$")]
    pub version: String,
    /// Only `compliant` (the state a promotion moves to).
    #[serde(default = "compliant")]
    pub target_state: ComplianceState,
    /// Evidence ids or blob digests to consider (default: the newest of each kind).
    #[serde(default)]
    #[schema(max_items = 256)]
    pub evidence_refs: Vec<String>,
    #[serde(default)]
    pub dependencies: DependencyRefs,
    /// Impact of the approval request (default: the policy's).
    #[serde(default)]
    pub impact: Option<ImpactLevel>,
    #[serde(default)]
    pub reason: String,
}

/// A promotion as served.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PromotionView {
    pub id: String,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub promotion: Promotion,
}

/// The seed's package request (001 §3.5): members as `name` (at the package's version) or
/// `name@version`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PackageRequest {
    #[schema(schema_with = package_members)]
    pub services: Vec<String>,
    #[schema(pattern = "^[A-Za-z0-9._+-]{1,64}$")]
    pub version: String,
}

/// `name` or `name@version`, at least one.
fn package_members() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(ObjectBuilder::new().schema_type(Type::String).pattern(Some(
            "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(@[A-Za-z0-9._+-]{1,64})?$",
        )))
        .min_items(Some(1))
        .build()
}

/// Options of a package promotion.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteOptions {
    #[serde(default)]
    pub impact: Option<ImpactLevel>,
    #[serde(default)]
    pub reason: String,
}

/// A package as served.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PackageView {
    pub id: String,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub package: Package,
    /// Its promotions, oldest first.
    pub promotions: Vec<String>,
}
