//! The promotion policy, `policies/promotion_gates.yaml` (seed 001 §3.2, §3.4): which gates
//! run, their rules and thresholds, and how promotions are scheduled. Every error names the
//! field and, where the file has one, the line.

use crate::approval::ImpactLevel;
use crate::evidence::{EvidenceKind, Severity};
use crate::yaml;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

/// The policy shipped in `policies/promotion_gates.yaml`, used when none is given.
pub const DEFAULT_POLICY_YAML: &str = include_str!("../../../policies/promotion_gates.yaml");

/// One problem in the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{field}: {message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct FieldError {
    pub field: String,
    pub line: Option<u64>,
    pub message: String,
}

/// The file was refused; every problem found is listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid promotion policy: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct Invalid(pub Vec<FieldError>);

/// How a gate decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GateType {
    /// Decided from the facts; a failure stops the promotion.
    Blocking,
    /// Needs a person: an approval request in rbac, decided by someone other than the
    /// requester.
    Manual,
    /// The policy waives the gate; the waiver is what gets recorded.
    Automatic,
}

/// A group of evidence kinds, any one of which satisfies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceGroup {
    /// JUnit test results.
    Tests,
    /// SARIF static analysis.
    Sast,
    /// LCOV or Cobertura.
    Coverage,
    /// CycloneDX or SPDX.
    Sbom,
    /// An in-toto attestation.
    Attestation,
}

impl EvidenceGroup {
    pub const fn kinds(self) -> &'static [EvidenceKind] {
        match self {
            Self::Tests => &[EvidenceKind::Junit],
            Self::Sast => &[EvidenceKind::Sarif],
            Self::Coverage => &[EvidenceKind::Lcov, EvidenceKind::Cobertura],
            Self::Sbom => &[EvidenceKind::Cyclonedx, EvidenceKind::Spdx],
            Self::Attestation => &[EvidenceKind::InToto],
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Tests => "tests",
            Self::Sast => "sast",
            Self::Coverage => "coverage",
            Self::Sbom => "sbom",
            Self::Attestation => "attestation",
        }
    }
}

/// The validated policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Policy {
    pub dependency_check: GateType,
    pub evidence_collection: GateType,
    /// Evidence every version must have.
    pub required_evidence: Vec<EvidenceGroup>,
    pub approval_check: GateType,
    /// Impact level of the approval requests raised for promotions (decides how many
    /// approvers rbac requires) unless the request names one.
    pub approval_impact: ImpactLevel,
    pub rules: Rules,
    pub scheduling: Scheduling,
    /// What open incidents do to promotions.
    pub incidents: IncidentRules,
}

/// What a critical SLA breach (an open `sla_breach` incident of severity critical) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IncidentRules {
    /// Demote the service's compliant version to sandbox (the orchestrator does, citing the
    /// incident). Off by default: an SRE decides.
    pub demote_on_critical_sla_breach: bool,
    /// Promotions of the service's dependants fail their dependency check until the incident
    /// is resolved. On by default.
    pub block_dependants_on_critical_sla_breach: bool,
}

impl Default for IncidentRules {
    fn default() -> Self {
        Self {
            demote_on_critical_sla_breach: false,
            block_dependants_on_critical_sla_breach: true,
        }
    }
}

/// Thresholds of the evidence and audit-trail rules. A disabled rule is recorded as waived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rules {
    pub all_tests_passing: Option<TestsRule>,
    pub sast_results_clean: Option<SastRule>,
    pub no_known_vulnerabilities: Option<VulnerabilityRule>,
    pub test_coverage_threshold: Option<CoverageRule>,
    pub performance_baseline_met: Option<PerformanceRule>,
    pub evidence_chain_valid: bool,
    pub signatures_verified: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TestsRule {
    /// Fewer passing tests than this is a failure (an empty suite proves nothing).
    pub min_passed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SastRule {
    pub max_critical: u64,
    pub max_high: u64,
    /// No limit when absent.
    pub max_medium: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VulnerabilityRule {
    /// Known vulnerabilities rated this or worse (and unrated ones) fail the check.
    pub fail_at: Severity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CoverageRule {
    pub min_line_percent: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PerformanceRule {
    /// Attestation source: the in-toto predicate type of the performance harness's signed
    /// statement that the version met its baseline. None with the `sla` source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicate_type: Option<String>,
    /// SLA source: the version's own measurements (batches naming the version) over the
    /// staging window before the gate must meet every objective of the service's SLOs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<SlaBaseline>,
}

/// What the `sla` source of `performance_baseline_met` asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SlaBaseline {
    /// How far back from the gate the version's measurements count.
    pub window_seconds: u64,
    /// Fewer requests than this in the window is missing data, not a verdict.
    pub min_requests: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Scheduling {
    /// Services of one promotion in flight at once (independent ones run concurrently).
    pub max_parallel: u32,
    /// How long a blocking gate waits for missing data before it fails.
    pub missing_data_timeout_seconds: u64,
    /// How long a manual gate waits for its decision before it fails.
    pub approval_timeout_seconds: u64,
}

// --- the file as written -------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    gates: RawGates,
    #[serde(default)]
    rules: RawRules,
    #[serde(default)]
    scheduling: RawScheduling,
    #[serde(default)]
    incidents: RawIncidents,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIncidents {
    demote_on_critical_sla_breach: Option<bool>,
    block_dependants_on_critical_sla_breach: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGates {
    dependency_check: RawGate,
    evidence_collection: RawEvidenceGate,
    approval_check: RawApprovalGate,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGate {
    #[serde(rename = "type")]
    kind: Spanned<GateType>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvidenceGate {
    #[serde(rename = "type")]
    kind: Spanned<GateType>,
    #[serde(default)]
    required: Vec<EvidenceGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApprovalGate {
    #[serde(rename = "type")]
    kind: Spanned<GateType>,
    #[serde(default)]
    impact: Option<ImpactLevel>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRules {
    all_tests_passing: Option<RawTests>,
    sast_results_clean: Option<RawSast>,
    no_known_vulnerabilities: Option<RawVulnerabilities>,
    test_coverage_threshold: Option<RawCoverage>,
    performance_baseline_met: Option<RawPerformance>,
    evidence_chain_valid: Option<RawToggle>,
    signatures_verified: Option<RawToggle>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToggle {
    #[serde(default = "yes")]
    enabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTests {
    #[serde(default = "yes")]
    enabled: bool,
    min_passed: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSast {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    max_critical: u64,
    #[serde(default)]
    max_high: u64,
    max_medium: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVulnerabilities {
    #[serde(default = "yes")]
    enabled: bool,
    fail_at: Option<Spanned<Severity>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCoverage {
    #[serde(default = "yes")]
    enabled: bool,
    min_line_percent: Spanned<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPerformance {
    #[serde(default = "yes")]
    enabled: bool,
    /// `attestation` (default when predicate_type is given) or `sla`.
    source: Option<Spanned<String>>,
    predicate_type: Option<Spanned<String>>,
    /// sla: e.g. `1h`, `30m`, `2d`.
    staging_window: Option<Spanned<String>>,
    min_requests: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawScheduling {
    max_parallel: Option<Spanned<u32>>,
    missing_data_timeout_seconds: Option<Spanned<u64>>,
    approval_timeout_seconds: Option<Spanned<u64>>,
}

fn line_of<T>(v: &Spanned<T>) -> Option<u64> {
    Some(v.referenced.line()).filter(|l| *l > 0)
}

impl Policy {
    /// The shipped default policy.
    pub fn default_policy() -> Self {
        #[allow(clippy::expect_used)] // the shipped file is tested below
        Self::parse(DEFAULT_POLICY_YAML).expect("the shipped policy parses")
    }

    /// Parses and validates a policy file (YAML, or JSON).
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let raw: RawFile = yaml::from_str(text).map_err(|e| {
            Invalid(vec![FieldError {
                field: "policy".into(),
                line: e.line,
                message: e.message,
            }])
        })?;
        let mut errors = Vec::new();
        let mut err = |field: &str, line: Option<u64>, message: String| {
            errors.push(FieldError {
                field: field.into(),
                line,
                message,
            });
        };
        let g = &raw.gates;
        if g.dependency_check.kind.value == GateType::Manual {
            err(
                "gates.dependency_check.type",
                line_of(&g.dependency_check.kind),
                "must be blocking or automatic".into(),
            );
        }
        if g.evidence_collection.kind.value == GateType::Manual {
            err(
                "gates.evidence_collection.type",
                line_of(&g.evidence_collection.kind),
                "must be blocking or automatic".into(),
            );
        }
        if g.approval_check.kind.value == GateType::Blocking {
            err(
                "gates.approval_check.type",
                line_of(&g.approval_check.kind),
                "must be manual or automatic".into(),
            );
        }
        let mut required = g.evidence_collection.required.clone();
        required.dedup();
        let r = &raw.rules;
        let tests = match &r.all_tests_passing {
            Some(t) if !t.enabled => None,
            Some(t) => Some(TestsRule {
                min_passed: t.min_passed.as_ref().map_or(1, |v| v.value),
            }),
            None => Some(TestsRule { min_passed: 1 }),
        };
        let sast = match &r.sast_results_clean {
            Some(s) if !s.enabled => None,
            Some(s) => Some(SastRule {
                max_critical: s.max_critical,
                max_high: s.max_high,
                max_medium: s.max_medium,
            }),
            None => Some(SastRule {
                max_critical: 0,
                max_high: 0,
                max_medium: None,
            }),
        };
        let vulnerabilities = match &r.no_known_vulnerabilities {
            Some(v) if !v.enabled => None,
            Some(v) => {
                let fail_at = v.fail_at.as_ref().map_or(Severity::High, |s| {
                    if matches!(s.value, Severity::None | Severity::Unrated) {
                        err(
                            "rules.no_known_vulnerabilities.fail_at",
                            line_of(s),
                            format!(
                                "{} is not a threshold (info, low, medium, high or critical)",
                                s.value
                            ),
                        );
                    }
                    s.value
                });
                Some(VulnerabilityRule { fail_at })
            }
            None => Some(VulnerabilityRule {
                fail_at: Severity::High,
            }),
        };
        let coverage = match &r.test_coverage_threshold {
            Some(c) if !c.enabled => None,
            Some(c) => {
                let v = c.min_line_percent.value;
                if !(0.0..=100.0).contains(&v) {
                    err(
                        "rules.test_coverage_threshold.min_line_percent",
                        line_of(&c.min_line_percent),
                        format!("{v} is out of range 0..=100"),
                    );
                }
                Some(CoverageRule {
                    min_line_percent: v,
                })
            }
            None => Some(CoverageRule {
                min_line_percent: 80.0,
            }),
        };
        let performance = match &r.performance_baseline_met {
            Some(p) if p.enabled && p.source.as_ref().is_some_and(|s| s.value == "sla") => {
                let window = match &p.staging_window {
                    None => Some(3_600),
                    Some(w) => match crate::sla::openslo::duration_seconds(&w.value) {
                        Ok(secs) if (60..=30 * 86_400).contains(&secs) => Some(secs),
                        Ok(secs) => {
                            err(
                                "rules.performance_baseline_met.staging_window",
                                line_of(w),
                                format!("{secs} s is out of range 1m..=30d"),
                            );
                            None
                        }
                        Err(e) => {
                            err(
                                "rules.performance_baseline_met.staging_window",
                                line_of(w),
                                e,
                            );
                            None
                        }
                    },
                };
                window.map(|window_seconds| PerformanceRule {
                    predicate_type: None,
                    sla: Some(SlaBaseline {
                        window_seconds,
                        min_requests: p.min_requests.as_ref().map_or(100, |m| m.value),
                    }),
                })
            }
            Some(p) if p.enabled && p.source.as_ref().is_some_and(|s| s.value != "attestation") => {
                let s = p.source.as_ref().map(|s| (s.value.clone(), line_of(s)));
                if let Some((v, line)) = s {
                    err(
                        "rules.performance_baseline_met.source",
                        line,
                        format!("{v:?}: expected sla or attestation"),
                    );
                }
                None
            }
            Some(p) if p.enabled => match &p.predicate_type {
                Some(t) if !t.value.trim().is_empty() => Some(PerformanceRule {
                    predicate_type: Some(t.value.trim().to_owned()),
                    sla: None,
                }),
                Some(t) => {
                    err(
                        "rules.performance_baseline_met.predicate_type",
                        line_of(t),
                        "must not be empty".into(),
                    );
                    None
                }
                None => {
                    err(
                        "rules.performance_baseline_met.predicate_type",
                        None,
                        "is required when the rule is enabled".into(),
                    );
                    None
                }
            },
            _ => None,
        };
        let s = &raw.scheduling;
        let max_parallel = s.max_parallel.as_ref().map_or(16, |v| {
            if !(1..=10_000).contains(&v.value) {
                err(
                    "scheduling.max_parallel",
                    line_of(v),
                    format!("{} is out of range 1..=10000", v.value),
                );
            }
            v.value
        });
        let mut seconds = |field: &str, v: &Option<Spanned<u64>>, default: u64| {
            v.as_ref().map_or(default, |v| {
                if !(1..=31_536_000).contains(&v.value) {
                    err(
                        field,
                        line_of(v),
                        format!("{} is out of range 1..=31536000", v.value),
                    );
                }
                v.value
            })
        };
        let missing = seconds(
            "scheduling.missing_data_timeout_seconds",
            &s.missing_data_timeout_seconds,
            300,
        );
        let approval_timeout = seconds(
            "scheduling.approval_timeout_seconds",
            &s.approval_timeout_seconds,
            7 * 24 * 3600,
        );
        if !errors.is_empty() {
            return Err(Invalid(errors));
        }
        let defaults = IncidentRules::default();
        let incidents = IncidentRules {
            demote_on_critical_sla_breach: raw
                .incidents
                .demote_on_critical_sla_breach
                .unwrap_or(defaults.demote_on_critical_sla_breach),
            block_dependants_on_critical_sla_breach: raw
                .incidents
                .block_dependants_on_critical_sla_breach
                .unwrap_or(defaults.block_dependants_on_critical_sla_breach),
        };
        Ok(Self {
            incidents,
            dependency_check: g.dependency_check.kind.value,
            evidence_collection: g.evidence_collection.kind.value,
            required_evidence: required,
            approval_check: g.approval_check.kind.value,
            approval_impact: g.approval_check.impact.unwrap_or(ImpactLevel::Medium),
            rules: Rules {
                all_tests_passing: tests,
                sast_results_clean: sast,
                no_known_vulnerabilities: vulnerabilities,
                test_coverage_threshold: coverage,
                performance_baseline_met: performance,
                evidence_chain_valid: r.evidence_chain_valid.as_ref().is_none_or(|t| t.enabled),
                signatures_verified: r.signatures_verified.as_ref().is_none_or(|t| t.enabled),
            },
            scheduling: Scheduling {
                max_parallel,
                missing_data_timeout_seconds: missing,
                approval_timeout_seconds: approval_timeout,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_policy_parses() {
        let p = Policy::parse(DEFAULT_POLICY_YAML).unwrap();
        assert_eq!(p.dependency_check, GateType::Blocking);
        assert_eq!(p.evidence_collection, GateType::Blocking);
        assert_eq!(p.approval_check, GateType::Manual);
        assert!(p.required_evidence.contains(&EvidenceGroup::Tests));
        assert!(p.rules.evidence_chain_valid && p.rules.signatures_verified);
    }

    #[test]
    fn errors_name_field_and_line() {
        let e = Policy::parse(
            "gates:\n  dependency_check: {type: blocking}\n  evidence_collection: {type: manual}\n  approval_check: {type: manual}\nrules:\n  test_coverage_threshold:\n    min_line_percent: 140\nscheduling:\n  max_parallel: 0\n",
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("line 3: gates.evidence_collection.type: must be blocking or automatic"),
            "{text}"
        );
        assert!(
            text.contains(
                "line 7: rules.test_coverage_threshold.min_line_percent: 140 is out of range"
            ),
            "{text}"
        );
        assert!(
            text.contains("line 9: scheduling.max_parallel: 0 is out of range"),
            "{text}"
        );
    }

    #[test]
    fn unknown_fields_are_refused_with_their_line() {
        let e = Policy::parse(
            "gates:\n  dependency_check: {type: blocking}\n  evidence_collection: {type: blocking}\n  approval_check: {type: manual, approvers: 2}\n",
        )
        .unwrap_err();
        assert_eq!(e.0[0].line, Some(4), "{e}");
        assert!(e.to_string().contains("approvers"), "{e}");
    }

    #[test]
    fn disabled_rules_and_defaults() {
        let p = Policy::parse(
            "gates:\n  dependency_check: {type: blocking}\n  evidence_collection: {type: blocking, required: [tests]}\n  approval_check: {type: automatic}\nrules:\n  sast_results_clean: {enabled: false}\n  performance_baseline_met: {predicate_type: 'https://example.com/perf/v1'}\n",
        )
        .unwrap();
        assert_eq!(p.rules.sast_results_clean, None);
        assert_eq!(
            p.rules
                .performance_baseline_met
                .unwrap()
                .predicate_type
                .unwrap(),
            "https://example.com/perf/v1"
        );
        assert_eq!(p.scheduling.max_parallel, 16);
        assert_eq!(p.approval_impact, ImpactLevel::Medium);
        let e = Policy::parse(
            "gates:\n  dependency_check: {type: blocking}\n  evidence_collection: {type: blocking}\n  approval_check: {type: manual}\nrules:\n  performance_baseline_met: {enabled: true}\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("predicate_type: is required"), "{e}");
    }
}
