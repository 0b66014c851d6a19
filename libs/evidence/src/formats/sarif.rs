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
    /// Absent means the tool produced no results at all (it failed), unlike `[]` (SARIF
    /// §3.14.23): refused, so a run that did not happen cannot pass for a clean one.
    #[serde(default)]
    results: Option<Vec<SarifResult>>,
    #[serde(default)]
    invocations: Vec<SarifInvocation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SarifInvocation {
    execution_successful: bool,
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
    #[serde(default)]
    kind: Option<String>,
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

/// The SARIF levels (§3.27.10); anything else is refused rather than read as harmless.
const LEVELS: [&str; 4] = ["none", "note", "warning", "error"];
/// The SARIF result kinds (§3.27.9); only `fail` is a finding.
const KINDS: [&str; 6] = [
    "pass",
    "open",
    "informational",
    "notApplicable",
    "review",
    "fail",
];

/// A rule's `security-severity`: a CVSS score from 0.0 to 10.0, as a number or a string.
fn security_severity(rule: &SarifRule) -> Result<Option<f64>, String> {
    let Some(v) = rule
        .properties
        .as_ref()
        .and_then(|p| p.security_severity.as_ref())
    else {
        return Ok(None);
    };
    let score = v
        .as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse::<f64>().ok()))
        .ok_or_else(|| format!("rule {:?}: security-severity {v} is not a number", rule.id))?;
    if !(0.0..=10.0).contains(&score) {
        return Err(format!(
            "rule {:?}: security-severity {score} is outside the CVSS range 0.0 to 10.0",
            rule.id
        ));
    }
    Ok(Some(score))
}

/// Severity of a result: the rule's `security-severity` (CVSS, as GitHub code scanning reads
/// it) when present, else the SARIF level (error → high, warning → medium, note → low).
/// Results whose rule id is an advisory id are known vulnerabilities, kept apart (one per id,
/// with every location it was found at). Results of a kind other than `fail` (passes,
/// informational notes) are not findings.
///
/// Refused, with the reason, rather than read as fewer findings: a run without a `results`
/// array or whose invocation did not succeed (the tool did not finish), no runs at all, two
/// rules with one id, a level or kind SARIF does not define, a security-severity that is not a
/// CVSS score, and a result that calls itself a pass at level `error` or `warning`.
pub(super) fn sarif(bytes: &[u8]) -> Result<EvidenceSummary, FormatError> {
    let k = EvidenceKind::Sarif;
    let log: SarifLog = serde_json::from_slice(bytes).map_err(|e| malformed(k, e.to_string()))?;
    if log.version != "2.1.0" {
        return Err(malformed(
            k,
            format!("version {:?}, expected 2.1.0", log.version),
        ));
    }
    if log.runs.is_empty() {
        return Err(malformed(k, "no runs: no tool reported anything"));
    }
    let mut s = SastSummary::default();
    let mut vulns: Vec<Vulnerability> = Vec::new();
    for (n, run) in log.runs.iter().enumerate() {
        let tool = &run.tool.driver.name;
        let Some(results) = &run.results else {
            return Err(malformed(
                k,
                format!("run {n} ({tool}) has no results array: the tool did not report (an empty array means no findings)"),
            ));
        };
        if run.invocations.iter().any(|i| !i.execution_successful) {
            return Err(malformed(
                k,
                format!("run {n} ({tool}) says its execution did not succeed: its results are incomplete"),
            ));
        }
        if !s.tools.contains(tool) {
            s.tools.push(tool.clone());
        }
        let mut rules: HashMap<&str, (&SarifRule, Option<f64>)> = HashMap::new();
        for rule in &run.tool.driver.rules {
            if let Some(level) = rule
                .default_configuration
                .as_ref()
                .and_then(|c| c.level.as_deref())
            {
                if !LEVELS.contains(&level) {
                    return Err(malformed(
                        k,
                        format!("rule {:?}: level {level:?} is not a SARIF level (none, note, warning, error)", rule.id),
                    ));
                }
            }
            let cvss = security_severity(rule).map_err(|e| malformed(k, e))?;
            if rules.insert(rule.id.as_str(), (rule, cvss)).is_some() {
                return Err(malformed(
                    k,
                    format!("run {n} ({tool}) defines rule {:?} twice", rule.id),
                ));
            }
        }
        for (i, r) in results.iter().enumerate() {
            let rule = r.rule_id.as_deref().and_then(|id| rules.get(id));
            let cvss = rule.and_then(|(_, cvss)| *cvss);
            let kind = r.kind.as_deref().unwrap_or("fail");
            if !KINDS.contains(&kind) {
                return Err(malformed(
                    k,
                    format!("run {n} result {i}: kind {kind:?} is not a SARIF result kind"),
                ));
            }
            if let Some(level) = r.level.as_deref() {
                if !LEVELS.contains(&level) {
                    return Err(malformed(
                        k,
                        format!("run {n} result {i}: level {level:?} is not a SARIF level (none, note, warning, error)"),
                    ));
                }
                if kind != "fail" && level != "none" {
                    return Err(malformed(
                        k,
                        format!("run {n} result {i}: kind {kind:?} with level {level:?} contradicts itself (only a failure has a level)"),
                    ));
                }
            }
            if kind != "fail" {
                continue;
            }
            let level = r
                .level
                .as_deref()
                .or_else(|| {
                    rule.and_then(|(r, _)| r.default_configuration.as_ref())
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
