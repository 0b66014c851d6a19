//! What a model version is registered with, and the names it is known by.

use super::ModelError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A model name: 1 to 128 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit (it names a
/// stream and appears in URLs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct ModelName(String);

impl ModelName {
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        let ok = (1..=128).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            && s.as_bytes()[0].is_ascii_alphanumeric();
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ModelError::Invalid(format!(
                "invalid model name {s:?}: use 1 to 128 of A-Z, a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ModelName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Where a version is deployed.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    Staging,
    Production,
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Staging => "staging",
            Self::Production => "production",
        })
    }
}

/// One evaluation metric, on a named dataset when it has one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    pub value: f64,
}

/// What registering a version says about it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionSpec {
    /// Where the artifact lives (`s3://...`, `models:/...`, `runs:/...`, a path).
    pub artifact_uri: String,
    /// SHA-256 of the artifact (64 hex digits), when known; required to deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// `sklearn`, `pytorch`, `onnx`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework: Option<String>,
    /// References to the training data (URIs, dataset names with versions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub training_data: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
    /// The model card, markdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_card: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The MLflow run that produced it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl VersionSpec {
    /// Checks what a registration may carry.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.artifact_uri.trim().is_empty() || self.artifact_uri.len() > 2048 {
            return Err(ModelError::Invalid(
                "artifact_uri must be 1 to 2048 characters".into(),
            ));
        }
        if let Some(d) = &self.digest {
            let hex = d.strip_prefix("sha256:").unwrap_or(d);
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ModelError::Invalid(format!(
                    "digest {d:?} is not a SHA-256 (64 hex digits, optionally after 'sha256:')"
                )));
            }
        }
        for m in &self.metrics {
            if m.name.trim().is_empty() || !m.value.is_finite() {
                return Err(ModelError::Invalid(format!(
                    "metric {:?} needs a name and a finite value",
                    m.name
                )));
            }
        }
        if self
            .model_card
            .as_ref()
            .is_some_and(|c| c.len() > 256 * 1024)
        {
            return Err(ModelError::Invalid("model_card is over 256 KiB".into()));
        }
        check_tags(&self.tags)
    }
}

pub(super) fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), ModelError> {
    for (k, v) in tags {
        if k.is_empty() || k.len() > 250 || v.len() > 5000 {
            return Err(ModelError::Invalid(format!(
                "tag {k:?}: keys are 1 to 250 characters, values at most 5000"
            )));
        }
    }
    Ok(())
}

/// An alias name: 1 to 64 of `a-z 0-9 _ -` (MLflow allows more; these are safe in URLs).
pub fn check_alias(alias: &str) -> Result<(), ModelError> {
    let ok = (1..=64).contains(&alias.len())
        && alias
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && !alias.starts_with('v');
    if ok {
        Ok(())
    } else {
        Err(ModelError::Invalid(format!(
            "invalid alias {alias:?}: use 1 to 64 of a-z, 0-9, '_' and '-', not starting with 'v' (v1, v2 name versions)"
        )))
    }
}

/// The facts a deployment to production was allowed on (the service checked them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Approval {
    /// The rbac approval request (kind `model_deployment`) that was granted.
    pub approval_id: String,
    /// Its distinct approvers.
    pub approvers: Vec<String>,
}
