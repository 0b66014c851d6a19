//! `org-config.yaml` (seed 002 §1): resource limits per compliance mode, retention,
//! monitoring, packaging rules and evidence limits. Every error names the field and line.

use crate::yaml;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

/// Days evidence is kept when org-config says nothing (seed 003 §2.3: three years).
pub const DEFAULT_EVIDENCE_RETENTION_DAYS: u32 = 1095;
/// Largest evidence upload accepted when org-config says nothing.
pub const DEFAULT_MAX_EVIDENCE_BYTES: u64 = 64 * 1024 * 1024;

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
#[error("invalid org-config: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct Invalid(pub Vec<FieldError>);

/// Limits for services in one compliance mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModeLimits {
    pub cpu_millicores: u32,
    pub memory_mib: u32,
    pub max_replicas: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Modes {
    pub sandbox: ModeLimits,
    pub compliant: ModeLimits,
}

impl Modes {
    /// The limits a service in `mode` is deployed with.
    pub fn limits(&self, mode: crate::catalog::ComplianceMode) -> &ModeLimits {
        match mode {
            crate::catalog::ComplianceMode::Sandbox => &self.sandbox,
            crate::catalog::ComplianceMode::Compliant => &self.compliant,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Retention {
    /// Evidence blobs cannot be deleted before this many days.
    pub evidence_days: u32,
    /// How long audit exports and the event history must stay available.
    pub audit_log_days: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Monitoring {
    pub scrape_interval_seconds: u32,
    pub health_check_interval_seconds: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VersionScheme {
    Semver,
    Calver,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Packaging {
    pub version_scheme: VersionScheme,
    pub require_sbom: bool,
    pub require_signatures: bool,
    pub min_coverage_percent: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EvidenceLimits {
    pub max_upload_bytes: u64,
}

/// The org-config stream's one event type (aggregate `org_config`, id `default`), written by
/// registry; every service that enforces org-config reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum OrgConfigEvent {
    OrgConfigSet {
        config: OrgConfig,
        /// The file as submitted.
        source: String,
    },
}

impl OrgConfigEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::OrgConfigSet { .. } => "OrgConfigSet",
        }
    }
}

/// The org-config aggregate (`org_config/default`): the config in force, if one was set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgConfigState(pub Option<OrgConfig>);

impl OrgConfigState {
    pub fn apply(&mut self, e: &OrgConfigEvent) {
        let OrgConfigEvent::OrgConfigSet { config, .. } = e;
        self.0 = Some(config.clone());
    }

    /// Sets `config` (parsed from `source`); nothing is recorded when it is already in force.
    pub fn set(&self, config: &OrgConfig, source: &str) -> Vec<OrgConfigEvent> {
        if self.0.as_ref() == Some(config) {
            return Vec::new();
        }
        vec![OrgConfigEvent::OrgConfigSet {
            config: config.clone(),
            source: source.to_owned(),
        }]
    }
}

/// A validated org-config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrgConfig {
    pub organization: String,
    pub modes: Modes,
    pub retention: Retention,
    pub monitoring: Monitoring,
    pub packaging: Packaging,
    pub evidence: EvidenceLimits,
}

impl Default for OrgConfig {
    fn default() -> Self {
        Self {
            organization: "default".into(),
            modes: Modes {
                sandbox: ModeLimits {
                    cpu_millicores: 500,
                    memory_mib: 512,
                    max_replicas: 2,
                },
                compliant: ModeLimits {
                    cpu_millicores: 2000,
                    memory_mib: 4096,
                    max_replicas: 10,
                },
            },
            retention: Retention {
                evidence_days: DEFAULT_EVIDENCE_RETENTION_DAYS,
                audit_log_days: 2555,
            },
            monitoring: Monitoring {
                scrape_interval_seconds: 15,
                health_check_interval_seconds: 30,
            },
            packaging: Packaging {
                version_scheme: VersionScheme::Semver,
                require_sbom: true,
                require_signatures: true,
                min_coverage_percent: 80,
            },
            evidence: EvidenceLimits {
                max_upload_bytes: DEFAULT_MAX_EVIDENCE_BYTES,
            },
        }
    }
}

// The file as written: numbers carry their position for the range checks.
type N32 = Spanned<u32>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    organization: Spanned<String>,
    modes: RawModes,
    #[serde(default)]
    retention: Option<RawRetention>,
    #[serde(default)]
    monitoring: Option<RawMonitoring>,
    #[serde(default)]
    packaging: Option<RawPackaging>,
    #[serde(default)]
    evidence: Option<RawEvidence>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModes {
    sandbox: RawLimits,
    compliant: RawLimits,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    cpu_millicores: N32,
    memory_mib: N32,
    max_replicas: N32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    evidence_days: Option<N32>,
    audit_log_days: Option<N32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMonitoring {
    scrape_interval_seconds: Option<N32>,
    health_check_interval_seconds: Option<N32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPackaging {
    version_scheme: Option<VersionScheme>,
    require_sbom: Option<bool>,
    require_signatures: Option<bool>,
    min_coverage_percent: Option<N32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvidence {
    max_upload_bytes: Option<Spanned<u64>>,
}

struct Checker(Vec<FieldError>);

impl Checker {
    fn range<T: PartialOrd + Copy + std::fmt::Display>(
        &mut self,
        field: &str,
        v: &Spanned<T>,
        lo: T,
        hi: T,
    ) -> T {
        if v.value < lo || v.value > hi {
            self.0.push(FieldError {
                field: field.into(),
                line: Some(v.referenced.line()).filter(|l| *l > 0),
                message: format!("{} is out of range {lo}..={hi}", v.value),
            });
        }
        v.value
    }

    fn limits(&mut self, mode: &str, l: &RawLimits) -> ModeLimits {
        ModeLimits {
            cpu_millicores: self.range(
                &format!("modes.{mode}.cpu_millicores"),
                &l.cpu_millicores,
                1,
                1_000_000,
            ),
            memory_mib: self.range(
                &format!("modes.{mode}.memory_mib"),
                &l.memory_mib,
                1,
                16_777_216,
            ),
            max_replicas: self.range(
                &format!("modes.{mode}.max_replicas"),
                &l.max_replicas,
                1,
                10_000,
            ),
        }
    }
}

impl OrgConfig {
    /// Parses and validates a YAML (or JSON) org-config.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let raw: RawFile = yaml::from_str(text).map_err(|e| {
            Invalid(vec![FieldError {
                field: field_of(&e.message),
                line: e.line,
                message: e.message,
            }])
        })?;
        let d = Self::default();
        let mut c = Checker(Vec::new());
        let organization = raw.organization.value.trim().to_owned();
        if organization.is_empty() || organization.len() > 128 {
            c.0.push(FieldError {
                field: "organization".into(),
                line: Some(raw.organization.referenced.line()),
                message: "must be 1 to 128 characters".into(),
            });
        } else if organization.chars().any(char::is_control) {
            c.0.push(FieldError {
                field: "organization".into(),
                line: Some(raw.organization.referenced.line()),
                message: "must not contain control characters".into(),
            });
        }
        let modes = Modes {
            sandbox: c.limits("sandbox", &raw.modes.sandbox),
            compliant: c.limits("compliant", &raw.modes.compliant),
        };
        let retention = match raw.retention {
            None => d.retention.clone(),
            Some(r) => Retention {
                evidence_days: r
                    .evidence_days
                    .as_ref()
                    .map_or(d.retention.evidence_days, |v| {
                        c.range("retention.evidence_days", v, 1, 36_500)
                    }),
                audit_log_days: r
                    .audit_log_days
                    .as_ref()
                    .map_or(d.retention.audit_log_days, |v| {
                        c.range("retention.audit_log_days", v, 1, 36_500)
                    }),
            },
        };
        let monitoring = match raw.monitoring {
            None => d.monitoring.clone(),
            Some(m) => Monitoring {
                scrape_interval_seconds: m
                    .scrape_interval_seconds
                    .as_ref()
                    .map_or(d.monitoring.scrape_interval_seconds, |v| {
                        c.range("monitoring.scrape_interval_seconds", v, 1, 3600)
                    }),
                health_check_interval_seconds: m
                    .health_check_interval_seconds
                    .as_ref()
                    .map_or(d.monitoring.health_check_interval_seconds, |v| {
                        c.range("monitoring.health_check_interval_seconds", v, 1, 3600)
                    }),
            },
        };
        let packaging = match raw.packaging {
            None => d.packaging.clone(),
            Some(p) => Packaging {
                version_scheme: p.version_scheme.unwrap_or(d.packaging.version_scheme),
                require_sbom: p.require_sbom.unwrap_or(d.packaging.require_sbom),
                require_signatures: p
                    .require_signatures
                    .unwrap_or(d.packaging.require_signatures),
                min_coverage_percent: p
                    .min_coverage_percent
                    .as_ref()
                    .map_or(d.packaging.min_coverage_percent, |v| {
                        c.range("packaging.min_coverage_percent", v, 0, 100)
                    }),
            },
        };
        let evidence = match raw.evidence {
            None => d.evidence.clone(),
            Some(e) => EvidenceLimits {
                max_upload_bytes: e
                    .max_upload_bytes
                    .as_ref()
                    .map_or(d.evidence.max_upload_bytes, |v| {
                        c.range("evidence.max_upload_bytes", v, 1024, 1 << 30)
                    }),
            },
        };
        if !c.0.is_empty() {
            return Err(Invalid(c.0));
        }
        Ok(Self {
            organization,
            modes,
            retention,
            monitoring,
            packaging,
            evidence,
        })
    }
}

/// The field a parser message is about, when it names one (`unknown field `x``,
/// `missing field `y``).
fn field_of(message: &str) -> String {
    for marker in ["unknown field `", "missing field `"] {
        if let Some(rest) = message.split(marker).nth(1) {
            if let Some(name) = rest.split('`').next() {
                return name.to_owned();
            }
        }
    }
    "(document)".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "organization: acme
modes:
  sandbox: {cpu_millicores: 500, memory_mib: 512, max_replicas: 2}
  compliant:
    cpu_millicores: 2000
    memory_mib: 4096
    max_replicas: 10
retention:
  evidence_days: 1095
packaging:
  min_coverage_percent: 85
";

    #[test]
    fn a_good_file_parses_with_defaults_filled_in() {
        let c = OrgConfig::parse(GOOD).unwrap();
        assert_eq!(c.organization, "acme");
        let e = OrgConfig::parse(&GOOD.replace("organization: acme", "organization: \"ac\\0me\""))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("organization: must not contain control characters"),
            "{e}"
        );
        assert_eq!(c.modes.compliant.max_replicas, 10);
        assert_eq!(c.packaging.min_coverage_percent, 85);
        assert_eq!(c.evidence.max_upload_bytes, DEFAULT_MAX_EVIDENCE_BYTES);
        assert_eq!(c.monitoring.scrape_interval_seconds, 15);
    }

    #[test]
    fn range_errors_name_field_and_line() {
        let bad = GOOD
            .replace("max_replicas: 10", "max_replicas: 0")
            .replace("85", "150");
        let e = OrgConfig::parse(&bad).unwrap_err();
        assert_eq!(e.0.len(), 2, "{e}");
        assert_eq!(e.0[0].field, "modes.compliant.max_replicas");
        assert_eq!(e.0[0].line, Some(7));
        assert_eq!(e.0[1].field, "packaging.min_coverage_percent");
        assert_eq!(e.0[1].line, Some(11));
        assert!(
            e.to_string()
                .contains("line 7: modes.compliant.max_replicas: 0 is out of range"),
            "{e}"
        );
    }

    #[test]
    fn unknown_and_missing_fields_and_types_are_located() {
        let e = OrgConfig::parse(&GOOD.replace("retention:", "retension:")).unwrap_err();
        assert_eq!(e.0[0].field, "retension", "{e}");
        assert_eq!(e.0[0].line, Some(8), "{e}");
        let e = OrgConfig::parse("organization: x\n").unwrap_err();
        assert_eq!(e.0[0].field, "modes", "{e}");
        let e =
            OrgConfig::parse(&GOOD.replace("memory_mib: 4096", "memory_mib: lots")).unwrap_err();
        assert_eq!(e.0[0].line, Some(6), "{e}");
    }
}
