//! The model policy, `policies/model_gates.yaml`: per environment, what a version must have
//! been registered with and the evaluation metrics it must reach; and how many distinct
//! approvers a production deployment needs by the model's risk (at least: rbac's impact rules
//! for the approval request apply too).

use super::{Environment, Metric, ModelVersion};
use crate::approval::{ApprovalPolicy, ImpactLevel};
use crate::yaml::{self, YamlError};
use serde::{Deserialize, Serialize};

/// The policy shipped in `policies/model_gates.yaml`, used when none is given.
pub const DEFAULT_MODEL_POLICY_YAML: &str = include_str!("../../../../policies/model_gates.yaml");

/// Something a version must have been registered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Required {
    /// The artifact's SHA-256.
    Digest,
    ModelCard,
    TrainingData,
    /// At least one evaluation metric.
    Metrics,
}

impl Required {
    fn as_str(self) -> &'static str {
        match self {
            Self::Digest => "digest",
            Self::ModelCard => "model_card",
            Self::TrainingData => "training_data",
            Self::Metrics => "metrics",
        }
    }
}

/// Evidence a version must have in the evidence service (submitted with `model=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceRequired {
    /// A `model-metrics` file: its metrics are the ones the thresholds read.
    ModelMetrics,
    /// A `model-card` file.
    ModelCard,
    /// The serving image's SBOM (`cyclonedx` or `spdx`).
    Sbom,
}

impl EvidenceRequired {
    fn as_str(self) -> &'static str {
        match self {
            Self::ModelMetrics => "model_metrics",
            Self::ModelCard => "model_card",
            Self::Sbom => "sbom",
        }
    }
}

/// A piece of evidence a check cites.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EvidenceRef {
    /// The evidence record's id.
    pub id: String,
    /// SHA3-256 of the file.
    pub digest: String,
    /// When it was submitted.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub at: time::OffsetDateTime,
}

/// What the evidence service holds for one model version: the newest file of each kind.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VersionEvidence {
    /// The newest `model-metrics` file and what it measured.
    pub metrics: Option<(EvidenceRef, Vec<Metric>)>,
    pub model_card: Option<EvidenceRef>,
    pub sbom: Option<EvidenceRef>,
}

/// A metric threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    pub name: String,
    /// The metric must have been measured on this dataset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

impl Threshold {
    /// `name` or `name@dataset`.
    pub fn label(&self) -> String {
        match &self.dataset {
            Some(d) => format!("{}@{d}", self.name),
            None => self.name.clone(),
        }
    }

    /// Whether `m` is the metric this threshold reads.
    pub fn reads(&self, m: &Metric) -> bool {
        m.name == self.name && (self.dataset.is_none() || m.dataset == self.dataset)
    }

    /// Whether `v` is within the bounds.
    pub fn admits(&self, v: f64) -> bool {
        self.min.is_none_or(|a| v >= a) && self.max.is_none_or(|b| v <= b)
    }

    /// The bounds as written in a check's detail: `≥ 0.8`, `≤ 0.2`, `in [a, b]`.
    pub fn bounds(&self) -> String {
        match (self.min, self.max) {
            (Some(a), Some(b)) => format!("in [{a}, {b}]"),
            (Some(a), None) => format!("≥ {a}"),
            (None, Some(b)) => format!("≤ {b}"),
            (None, None) => String::new(),
        }
    }
}

/// One environment's gate.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    #[serde(default)]
    pub required: Vec<Required>,
    /// Evidence files the version must have in the evidence service.
    #[serde(default)]
    pub evidence: Vec<EvidenceRequired>,
    #[serde(default)]
    pub metrics: Vec<Threshold>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Gates {
    #[serde(default)]
    pub staging: Gate,
    #[serde(default)]
    pub production: Gate,
}

/// Distinct approvers by risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Approvers {
    pub low: u8,
    pub medium: u8,
    pub high: u8,
    pub critical: u8,
}

impl Default for Approvers {
    fn default() -> Self {
        let d = ApprovalPolicy::default();
        Self {
            low: d.low,
            medium: d.medium,
            high: d.high,
            critical: d.critical,
        }
    }
}

/// When the registry rolls production back by itself (see [`super::guard`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackPolicy {
    /// On an SLA-breach incident the sla service opens (or sees recur) for the model's serving
    /// service (model tag `goose.serving_service`) after the version went to production.
    #[serde(default)]
    pub on_sla_breach: bool,
    /// On a `model-metrics` file for the production version, submitted after it went to
    /// production, that measures a metric outside these bounds (drift: e.g. `psi` on `live`).
    #[serde(default)]
    pub on_drift: Vec<Threshold>,
}

/// The validated model policy.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelPolicy {
    #[serde(default)]
    pub gates: Gates,
    #[serde(default)]
    pub approvers: Approvers,
    #[serde(default)]
    pub rollback: RollbackPolicy,
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CheckResult {
    pub check: String,
    pub passed: bool,
    pub detail: String,
}

impl CheckResult {
    /// `check: pass|fail (detail)`, as recorded in the deployment event.
    pub fn line(&self) -> String {
        format!(
            "{}: {} ({})",
            self.check,
            if self.passed { "pass" } else { "fail" },
            self.detail
        )
    }
}

/// Why the file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("invalid model policy: {0}")]
    Yaml(#[from] YamlError),
    #[error("invalid model policy: {0}")]
    Invalid(String),
}

impl ModelPolicy {
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let p: Self = yaml::from_str(text)?;
        for (env, ts) in [
            ("gates.staging.metrics", &p.gates.staging.metrics),
            ("gates.production.metrics", &p.gates.production.metrics),
            ("rollback.on_drift", &p.rollback.on_drift),
        ] {
            for t in ts {
                if t.name.trim().is_empty() {
                    return Err(PolicyError::Invalid(format!(
                        "{env}: a threshold needs a name"
                    )));
                }
                if t.min.is_none() && t.max.is_none() {
                    return Err(PolicyError::Invalid(format!(
                        "{env}.{}: give min, max or both",
                        t.name
                    )));
                }
                if t.min.zip(t.max).is_some_and(|(a, b)| a > b) {
                    return Err(PolicyError::Invalid(format!(
                        "{env}.{}: min is above max",
                        t.name
                    )));
                }
            }
        }
        let a = p.approvers;
        if [a.low, a.medium, a.high, a.critical]
            .iter()
            .any(|n| !(1..=9).contains(n))
        {
            return Err(PolicyError::Invalid(
                "approvers: each level needs 1 to 9".into(),
            ));
        }
        Ok(p)
    }

    /// Distinct approvers a production deployment of a model of `risk` needs.
    pub fn approvers(&self, risk: ImpactLevel) -> usize {
        usize::from(match risk {
            ImpactLevel::Low => self.approvers.low,
            ImpactLevel::Medium => self.approvers.medium,
            ImpactLevel::High => self.approvers.high,
            ImpactLevel::Critical => self.approvers.critical,
        })
    }

    /// Every check of `env`'s gate on `version`, with `evidence` its files in the evidence
    /// service. A threshold reads the metric from the newest `model-metrics` file when that
    /// measured it, else from what the version was registered with; the detail says which.
    pub fn evaluate(
        &self,
        env: Environment,
        version: &ModelVersion,
        evidence: &VersionEvidence,
    ) -> Vec<CheckResult> {
        let gate = match env {
            Environment::Staging => &self.gates.staging,
            Environment::Production => &self.gates.production,
        };
        let s = &version.spec;
        let mut out = Vec::new();
        for r in &gate.required {
            let passed = match r {
                Required::Digest => s.digest.is_some(),
                Required::ModelCard => s.model_card.as_ref().is_some_and(|c| !c.trim().is_empty()),
                Required::TrainingData => !s.training_data.is_empty(),
                Required::Metrics => !s.metrics.is_empty(),
            };
            out.push(CheckResult {
                check: format!("{env}.required.{}", r.as_str()),
                passed,
                detail: if passed { "present" } else { "missing" }.into(),
            });
        }
        for r in &gate.evidence {
            let found = match r {
                EvidenceRequired::ModelMetrics => evidence.metrics.as_ref().map(|(e, _)| e),
                EvidenceRequired::ModelCard => evidence.model_card.as_ref(),
                EvidenceRequired::Sbom => evidence.sbom.as_ref(),
            };
            out.push(CheckResult {
                check: format!("{env}.evidence.{}", r.as_str()),
                passed: found.is_some(),
                detail: match found {
                    Some(e) => format!("evidence {} (sha3-256 {})", e.id, e.digest),
                    None => "no such evidence submitted for this version".into(),
                },
            });
        }
        for t in &gate.metrics {
            let check = format!("{env}.metric.{}", t.label());
            let matches = |m: &&Metric| t.reads(m);
            let measured = evidence.metrics.as_ref().and_then(|(e, ms)| {
                ms.iter()
                    .find(matches)
                    .map(|m| (m.value, format!("measured: evidence {}", e.id)))
            });
            let found = measured.or_else(|| {
                s.metrics
                    .iter()
                    .find(matches)
                    .map(|m| (m.value, "registered".to_owned()))
            });
            let bounds = t.bounds();
            let (passed, detail) = match found {
                None => (false, format!("not reported; needs {bounds}")),
                Some((v, from)) => (t.admits(v), format!("{v} {bounds}; {from}")),
            };
            out.push(CheckResult {
                check,
                passed,
                detail,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Metric, VersionSpec};
    use time::macros::datetime;

    fn version(metrics: &[(&str, Option<&str>, f64)], card: bool) -> ModelVersion {
        ModelVersion {
            version: 1,
            spec: VersionSpec {
                artifact_uri: "s3://m".into(),
                digest: Some("00".repeat(32)),
                model_card: card.then(|| "# Churn".to_owned()),
                training_data: vec!["s3://data/churn/2026-11".into()],
                metrics: metrics
                    .iter()
                    .map(|(n, d, v)| Metric {
                        name: (*n).into(),
                        dataset: d.map(str::to_owned),
                        value: *v,
                    })
                    .collect(),
                ..VersionSpec::default()
            },
            registered_at: datetime!(2026-12-01 00:00 UTC),
            registered_by: "mia".into(),
            staged: false,
            deployed: Vec::new(),
            deprecated: None,
        }
    }

    #[test]
    fn the_shipped_policy_parses_and_gates() {
        let p = ModelPolicy::parse(DEFAULT_MODEL_POLICY_YAML).unwrap();
        assert_eq!(p.approvers(ImpactLevel::High), 2);
        let good = version(&[("accuracy", Some("holdout"), 0.91)], true);
        let r = |id: &str| EvidenceRef {
            id: id.into(),
            digest: "ab".repeat(32),
            at: datetime!(2026-12-02 00:00 UTC),
        };
        let files = VersionEvidence {
            metrics: Some((
                r("e1"),
                vec![Metric {
                    name: "accuracy".into(),
                    dataset: Some("holdout".into()),
                    value: 0.85,
                }],
            )),
            model_card: Some(r("e2")),
            sbom: Some(r("e3")),
        };
        let checks = p.evaluate(Environment::Production, &good, &files);
        assert!(checks.iter().all(|c| c.passed), "{checks:?}");
        let measured: Vec<_> = checks.iter().map(CheckResult::line).collect();
        assert!(
            measured.contains(
                &"production.metric.accuracy: pass (0.85 ≥ 0.8; measured: evidence e1)".to_owned()
            ),
            "the measured figure wins over the registered one: {measured:?}"
        );
        let none = VersionEvidence::default();
        let missing: Vec<_> = p
            .evaluate(Environment::Production, &good, &none)
            .into_iter()
            .filter(|c| !c.passed)
            .map(|c| c.check)
            .collect();
        assert_eq!(
            missing,
            vec![
                "production.evidence.model_metrics",
                "production.evidence.model_card",
                "production.evidence.sbom"
            ]
        );
        let mut worse = files.clone();
        worse.metrics.as_mut().unwrap().1[0].value = 0.5;
        assert!(
            !p.evaluate(Environment::Production, &good, &worse)
                .iter()
                .find(|c| c.check == "production.metric.accuracy")
                .unwrap()
                .passed,
            "a registered 0.91 does not hide a measured 0.5"
        );
        let weak = version(&[("accuracy", None, 0.75)], false);
        let staging = p.evaluate(Environment::Staging, &weak, &none);
        assert!(staging.iter().all(|c| c.passed), "{staging:?}");
        let failed: Vec<_> = p
            .evaluate(
                Environment::Production,
                &weak,
                &VersionEvidence {
                    metrics: None,
                    ..files.clone()
                },
            )
            .into_iter()
            .filter(|c| !c.passed)
            .map(|c| c.line())
            .collect();
        assert_eq!(
            failed,
            vec![
                "production.required.model_card: fail (missing)",
                "production.evidence.model_metrics: fail (no such evidence submitted for this version)",
                "production.metric.accuracy: fail (0.75 ≥ 0.8; registered)",
            ]
        );
        let none = version(&[], true);
        let line = p.evaluate(Environment::Staging, &none, &VersionEvidence::default())[1].line();
        assert_eq!(
            line,
            "staging.metric.accuracy: fail (not reported; needs ≥ 0.7)"
        );
    }

    #[test]
    fn datasets_bounds_and_bad_files() {
        let p = ModelPolicy::parse(
            "gates:\n  production:\n    metrics:\n      - {name: auc, dataset: holdout, min: 0.8, max: 1.0}\n",
        )
        .unwrap();
        let other = version(&[("auc", Some("train"), 0.99)], true);
        let no = VersionEvidence::default();
        assert!(!p.evaluate(Environment::Production, &other, &no)[0].passed);
        let right = version(&[("auc", Some("holdout"), 0.85)], true);
        assert!(p.evaluate(Environment::Production, &right, &no)[0].passed);
        for (bad, says) in [
            (
                "gates:\n  staging:\n    metrics:\n      - {name: auc}\n",
                "give min, max or both",
            ),
            (
                "gates:\n  staging:\n    metrics:\n      - {name: auc, min: 2, max: 1}\n",
                "min is above max",
            ),
            (
                "approvers: {low: 0, medium: 1, high: 2, critical: 3}\n",
                "1 to 9",
            ),
            ("gates:\n  stagin: {}\n", "line 2"),
            ("gates:\n  staging:\n    required: [sbom]\n", "line 3"),
        ] {
            let e = ModelPolicy::parse(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
