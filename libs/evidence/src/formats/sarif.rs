//! SARIF 2.1.0: static analysis findings by severity, and the known vulnerabilities that
//! dependency scanners (Trivy, Grype, osv-scanner) report as SARIF results.

use super::{malformed, FormatError};
use goose_domain::evidence::{EvidenceKind, EvidenceSummary, SastSummary, Severity, Vulnerability};
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Deserialize)]
struct SarifLog {
    version: String,
    runs: Vec<SarifRun>,
}

#[derive(Deserialize)]
struct SarifRun {
    tool: SarifTool,
    #[serde(default)]
    results: Vec<SarifResult>,
}

#[derive(Deserialize)]
struct SarifTool {
    driver: SarifDriver,
}

#[derive(Deserialize)]
struct SarifDriver {
    name: String,
    #[serde(default)]
    rules: Vec<SarifRule>,
}

#[derive(Deserialize)]
struct SarifRule {
    id: String,
    #[serde(default, rename = "defaultConfiguration")]
    default_configuration: Option<SarifConfig>,
    #[serde(default)]
    properties: Option<SarifProperties>,
}

#[derive(Deserialize)]
struct SarifConfig {
    #[serde(default)]
    level: Option<String>,
}

#[derive(Deserialize)]
struct SarifProperties {
    #[serde(default, rename = "security-severity")]
    security_severity: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct SarifResult {
    #[serde(default, rename = "ruleId")]
    rule_id: Option<String>,
    #[serde(default)]
    level: Option<String>,
    #[serde(default, rename = "message")]
    _message: IgnoredAny,
    #[serde(default)]
    locations: Vec<SarifLocation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SarifLocation {
    #[serde(default)]
    physical_location: Option<SarifPhysical>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SarifPhysical {
    #[serde(default)]
    artifact_location: Option<SarifArtifact>,
}

#[derive(Deserialize)]
struct SarifArtifact {
    #[serde(default)]
    uri: Option<String>,
}

/// Whether a rule id names a published advisory (so the result is a known vulnerability of a
/// dependency, not a weakness in the code): the id schemes of the CVE, GitHub, OSV and
/// distribution databases.
pub fn is_advisory_id(id: &str) -> bool {
    const SCHEMES: [&str; 14] = [
        "CVE-", "GHSA-", "PYSEC-", "RUSTSEC-", "GO-", "OSV-", "GSD-", "SNYK-", "DLA-", "DSA-",
        "RHSA-", "ALSA-", "USN-", "MAL-",
    ];
    SCHEMES.iter().any(|p| id.starts_with(p)) && id.len() > 6
}

/// Severity of a result: the rule's `security-severity` (CVSS, as GitHub code scanning reads
/// it) when present, else the SARIF level (error → high, warning → medium, note → low).
/// Results whose rule id is an advisory id are known vulnerabilities, kept apart (one per id,
/// with every location it was found at).
pub(super) fn sarif(bytes: &[u8]) -> Result<EvidenceSummary, FormatError> {
    let k = EvidenceKind::Sarif;
    let log: SarifLog = serde_json::from_slice(bytes).map_err(|e| malformed(k, e.to_string()))?;
    if log.version != "2.1.0" {
        return Err(malformed(
            k,
            format!("version {:?}, expected 2.1.0", log.version),
        ));
    }
    let mut s = SastSummary::default();
    let mut vulns: Vec<Vulnerability> = Vec::new();
    for run in &log.runs {
        if !s.tools.contains(&run.tool.driver.name) {
            s.tools.push(run.tool.driver.name.clone());
        }
        let rules: HashMap<&str, &SarifRule> = run
            .tool
            .driver
            .rules
            .iter()
            .map(|r| (r.id.as_str(), r))
            .collect();
        for r in &run.results {
            let rule = r.rule_id.as_deref().and_then(|id| rules.get(id));
            let cvss = rule
                .and_then(|r| r.properties.as_ref())
                .and_then(|p| p.security_severity.as_ref())
                .and_then(|v| {
                    v.as_f64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                });
            let level = r
                .level
                .as_deref()
                .or_else(|| {
                    rule.and_then(|r| r.default_configuration.as_ref())
                        .and_then(|c| c.level.as_deref())
                })
                .unwrap_or("warning");
            let severity = match (cvss, level) {
                (Some(c), _) => Severity::from_cvss(c),
                (None, "error") => Severity::High,
                (None, "warning") => Severity::Medium,
                (None, "note") => Severity::Low,
                (None, _) => Severity::Info,
            };
            if let Some(id) = r.rule_id.as_deref().filter(|id| is_advisory_id(id)) {
                let at = r.locations.iter().filter_map(|l| {
                    l.physical_location
                        .as_ref()?
                        .artifact_location
                        .as_ref()?
                        .uri
                        .clone()
                });
                // Without a security-severity the level says little about an advisory.
                let severity = if cvss.is_some() {
                    severity
                } else {
                    Severity::Unrated
                };
                match vulns.iter_mut().find(|v| v.id == id) {
                    Some(v) => {
                        v.severity = v.severity.max(severity);
                        for uri in at {
                            if !v.components.contains(&uri) {
                                v.components.push(uri);
                            }
                        }
                    }
                    None => vulns.push(Vulnerability {
                        id: id.to_owned(),
                        aliases: Vec::new(),
                        severity,
                        components: at.collect(),
                    }),
                }
                continue;
            }
            match severity {
                Severity::Critical => s.critical += 1,
                Severity::High => s.high += 1,
                Severity::Medium => s.medium += 1,
                Severity::Low => s.low += 1,
                Severity::None | Severity::Info | Severity::Unrated => s.info += 1,
            }
        }
    }
    s.vulnerabilities = vulns;
    let mut out = EvidenceSummary::new(k);
    out.sast = Some(s);
    Ok(out)
}
