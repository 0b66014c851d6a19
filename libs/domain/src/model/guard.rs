//! Automatic rollback: the model policy's `rollback` section applied to what the registry
//! knows about a model in production — the sla service's SLA-breach incidents on its serving
//! service and the drift its newest `model-metrics` evidence measured. Pure: the registry's
//! guard task feeds it and records the [`RegisteredModel::rollback`] it asks for.
//!
//! Only signals that arrived after the current version went to production count: a breach or
//! a drift reading of an earlier deployment does not roll back the one that replaced it, and a
//! version put back later is judged afresh.

use super::policy::{RollbackPolicy, VersionEvidence};
use super::{Environment, RegisteredModel};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The model tag naming the catalog service that serves the model: its SLOs are the model
/// deployment's SLOs.
pub const SERVING_SERVICE_TAG: &str = "goose.serving_service";

/// The newest SLA-breach incident (opened or recurred) of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breach {
    pub incident: String,
    pub title: String,
    pub at: OffsetDateTime,
}

/// When the version in production now went there (deployment or rollback).
pub fn in_production_since(model: &RegisteredModel) -> Option<(u32, OffsetDateTime)> {
    let version = model.deployed(Environment::Production)?;
    model
        .history
        .iter()
        .rev()
        .find(|d| d.environment == Environment::Production)
        .filter(|d| d.version == version)
        .map(|d| (version, d.at))
}

/// Why `model` must be rolled back now under `policy`, if it must: `breach` is the newest
/// SLA breach of its serving service, `evidence` the production version's newest evidence.
pub fn rollback_reason(
    policy: &RollbackPolicy,
    model: &RegisteredModel,
    breach: Option<&Breach>,
    evidence: &VersionEvidence,
) -> Option<String> {
    let (version, since) = in_production_since(model)?;
    if policy.on_sla_breach {
        if let (Some(b), Some(service)) = (breach, model.tags.get(SERVING_SERVICE_TAG)) {
            if b.at > since {
                return Some(format!(
                    "automatic (model policy rollback.on_sla_breach): the serving service {service} breached its SLO after version {version} went to production: incident {} ({})",
                    b.incident, b.title
                ));
            }
        }
    }
    let (file, metrics) = evidence.metrics.as_ref().filter(|(e, _)| e.at > since)?;
    policy.on_drift.iter().find_map(|t| {
        let m = metrics.iter().find(|m| t.reads(m))?;
        (!t.admits(m.value)).then(|| {
            format!(
                "automatic (model policy rollback.on_drift): {} = {} of version {version} is outside {} (evidence {}, sha3-256 {})",
                t.label(),
                m.value,
                t.bounds(),
                file.id,
                file.digest
            )
        })
    })
}

#[cfg(test)]
#[path = "guard_tests.rs"]
mod tests;
