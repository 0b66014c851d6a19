//! The model aggregate's events and its refusals.

use super::{Approval, Environment, ModelName, VersionSpec};
use crate::approval::ImpactLevel;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// The model's events (stream `model/<name>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum ModelEvent {
    ModelCreated {
        name: ModelName,
        #[serde(default)]
        description: String,
        /// How much harm a wrong deployment could do: sets the approvers needed.
        risk: ImpactLevel,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        tags: BTreeMap<String, String>,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    DescriptionChanged {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<u32>,
        description: String,
    },
    VersionRegistered {
        version: u32,
        spec: VersionSpec,
        by: String,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// A version deployed to an environment; `previous` is the version it replaced there.
    VersionDeployed {
        version: u32,
        environment: Environment,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous: Option<u32>,
        /// Production only: the approval it was deployed on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        approval: Option<Approval>,
        /// The gates it passed (names with their outcome), as the service evaluated them.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        gates: Vec<String>,
        by: String,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// Production went back from `from` to `to`.
    RolledBack {
        from: u32,
        to: u32,
        reason: String,
        by: String,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    AliasSet {
        alias: String,
        version: u32,
    },
    AliasDeleted {
        alias: String,
    },
    TagSet {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<u32>,
        key: String,
        value: String,
    },
    TagDeleted {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<u32>,
        key: String,
    },
    VersionDeprecated {
        version: u32,
        reason: String,
    },
}

impl ModelEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::ModelCreated { .. } => "ModelCreated",
            Self::DescriptionChanged { .. } => "DescriptionChanged",
            Self::VersionRegistered { .. } => "VersionRegistered",
            Self::VersionDeployed { .. } => "VersionDeployed",
            Self::RolledBack { .. } => "RolledBack",
            Self::AliasSet { .. } => "AliasSet",
            Self::AliasDeleted { .. } => "AliasDeleted",
            Self::TagSet { .. } => "TagSet",
            Self::TagDeleted { .. } => "TagDeleted",
            Self::VersionDeprecated { .. } => "VersionDeprecated",
        }
    }
}

/// Why a model command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("{0}")]
    Invalid(String),
    #[error("model {0} already exists")]
    Exists(String),
    #[error("{0}")]
    NotFound(String),
    /// The model's state does not allow it.
    #[error("{0}")]
    Refused(String),
    /// Deployed use cases still use the version.
    #[error("version {version} is used by deployed use cases: {}", use_cases.join(", "))]
    InUse {
        version: u32,
        use_cases: Vec<String>,
    },
}
