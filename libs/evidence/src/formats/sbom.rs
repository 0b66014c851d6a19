//! Software bills of materials: CycloneDX JSON (components, and the `vulnerabilities` a
//! scanner added, with their ratings) and SPDX 2.x JSON (packages, advisory references).

use super::{malformed, FormatError};
use goose_domain::evidence::{EvidenceKind, EvidenceSummary, SbomSummary, Severity, Vulnerability};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

// --- CycloneDX JSON --------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CdxBom {
    bom_format: String,
    spec_version: String,
    #[serde(default)]
    components: Vec<CdxComponent>,
    #[serde(default)]
    vulnerabilities: Vec<CdxVulnerability>,
}

#[derive(Deserialize)]
struct CdxComponent {
    #[serde(default, rename = "bom-ref")]
    bom_ref: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    purl: Option<String>,
    #[serde(default)]
    components: Vec<CdxComponent>,
}

impl CdxComponent {
    /// How a vulnerability names this component: its package URL, else `name@version`.
    fn label(&self) -> Option<String> {
        self.purl
            .clone()
            .or_else(|| match (&self.name, &self.version) {
                (Some(n), Some(v)) => Some(format!("{n}@{v}")),
                (Some(n), None) => Some(n.clone()),
                _ => None,
            })
    }
}

#[derive(Deserialize)]
struct CdxVulnerability {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    references: Vec<CdxReference>,
    #[serde(default)]
    ratings: Vec<CdxRating>,
    #[serde(default)]
    affects: Vec<CdxAffects>,
}

#[derive(Deserialize)]
struct CdxReference {
    id: String,
}

#[derive(Deserialize)]
struct CdxRating {
    #[serde(default)]
    score: Option<f64>,
    #[serde(default)]
    severity: Option<String>,
}

/// The highest of a vulnerability's ratings: its severity word, else its score's CVSS band.
/// No rating (or only `unknown`) is [`Severity::Unrated`].
fn rated(ratings: &[CdxRating]) -> Severity {
    ratings
        .iter()
        .filter_map(|r| {
            r.severity
                .as_deref()
                .and_then(Severity::parse)
                .filter(|s| *s != Severity::Unrated)
                .or_else(|| r.score.map(Severity::from_cvss))
        })
        .max()
        .unwrap_or(Severity::Unrated)
}

#[derive(Deserialize)]
struct CdxAffects {
    #[serde(rename = "ref")]
    reference: String,
}

/// Counts components (nested ones too), mapping each `bom-ref` to the component's label.
fn count_components(cs: &[CdxComponent], refs: &mut BTreeMap<String, String>) -> u64 {
    cs.iter()
        .map(|c| {
            if let Some(r) = &c.bom_ref {
                refs.insert(r.clone(), c.label().unwrap_or_else(|| r.clone()));
            }
            1 + count_components(&c.components, refs)
        })
        .sum()
}

pub(super) fn cyclonedx(bytes: &[u8]) -> Result<EvidenceSummary, FormatError> {
    let k = EvidenceKind::Cyclonedx;
    let bom: CdxBom = serde_json::from_slice(bytes).map_err(|e| malformed(k, e.to_string()))?;
    if bom.bom_format != "CycloneDX" {
        return Err(malformed(
            k,
            format!("bomFormat {:?}, expected CycloneDX", bom.bom_format),
        ));
    }
    if !bom.spec_version.starts_with("1.") {
        return Err(malformed(
            k,
            format!("specVersion {:?} is not 1.x", bom.spec_version),
        ));
    }
    let mut refs = BTreeMap::new();
    let components = count_components(&bom.components, &mut refs);
    let vulnerable: BTreeSet<&str> = bom
        .vulnerabilities
        .iter()
        .flat_map(|v| v.affects.iter().map(|a| a.reference.as_str()))
        .filter(|r| refs.contains_key(*r))
        .collect();
    let mut vulnerabilities = Vec::new();
    for (i, v) in bom.vulnerabilities.iter().enumerate() {
        let Some(id) = v.id.as_deref().map(str::trim).filter(|s| !s.is_empty()) else {
            return Err(malformed(k, format!("vulnerabilities[{i}] has no id")));
        };
        let mut affected: Vec<String> = v
            .affects
            .iter()
            .map(|a| {
                refs.get(&a.reference)
                    .cloned()
                    .unwrap_or_else(|| a.reference.clone())
            })
            .collect();
        affected.dedup();
        vulnerabilities.push(Vulnerability {
            id: id.to_owned(),
            aliases: v
                .references
                .iter()
                .map(|r| r.id.clone())
                .filter(|r| r != id)
                .collect(),
            severity: rated(&v.ratings),
            components: affected,
        });
    }
    let mut out = EvidenceSummary::new(k);
    out.sbom = Some(SbomSummary {
        spec_version: bom.spec_version,
        components,
        vulnerable_components: vulnerable.len() as u64,
        vulnerabilities,
    });
    Ok(out)
}

// --- SPDX JSON -------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpdxDocument {
    spdx_version: String,
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    #[serde(default)]
    packages: Vec<SpdxPackage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpdxPackage {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    version_info: Option<String>,
    #[serde(default)]
    external_refs: Vec<SpdxExternalRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpdxExternalRef {
    reference_category: String,
    reference_type: String,
    #[serde(default)]
    reference_locator: String,
}

impl SpdxExternalRef {
    fn is_advisory(&self) -> bool {
        self.reference_category
            .replace('_', "-")
            .eq_ignore_ascii_case("SECURITY")
            && self.reference_type.eq_ignore_ascii_case("advisory")
    }
}

impl SpdxPackage {
    /// The package's purl reference if it has one, else `name@versionInfo`.
    fn label(&self) -> String {
        self.external_refs
            .iter()
            .find(|r| r.reference_type == "purl")
            .map(|r| r.reference_locator.clone())
            .unwrap_or_else(|| match (&self.name, &self.version_info) {
                (Some(n), Some(v)) => format!("{n}@{v}"),
                (Some(n), None) => n.clone(),
                _ => "unnamed package".into(),
            })
    }
}

/// An advisory's id from its locator: the last path segment of the URL
/// (`https://nvd.nist.gov/vuln/detail/CVE-2020-1234` → `CVE-2020-1234`).
fn advisory_id(locator: &str) -> String {
    locator
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or(locator)
        .to_owned()
}

/// Vulnerable packages: those with a SECURITY external reference of type `advisory`
/// (SPDX 2.3 has no vulnerability section; advisories are how scanners annotate packages).
/// SPDX carries no rating, so its advisories are [`Severity::Unrated`].
pub(super) fn spdx(bytes: &[u8]) -> Result<EvidenceSummary, FormatError> {
    let k = EvidenceKind::Spdx;
    let doc: SpdxDocument =
        serde_json::from_slice(bytes).map_err(|e| malformed(k, e.to_string()))?;
    if !doc.spdx_version.starts_with("SPDX-2.") {
        return Err(malformed(
            k,
            format!("spdxVersion {:?}, expected SPDX-2.x", doc.spdx_version),
        ));
    }
    if doc.spdx_id != "SPDXRef-DOCUMENT" {
        return Err(malformed(
            k,
            format!("SPDXID {:?}, expected SPDXRef-DOCUMENT", doc.spdx_id),
        ));
    }
    let vulnerable = doc
        .packages
        .iter()
        .filter(|p| p.external_refs.iter().any(SpdxExternalRef::is_advisory))
        .count() as u64;
    let mut vulnerabilities: Vec<Vulnerability> = Vec::new();
    for p in &doc.packages {
        for r in p.external_refs.iter().filter(|r| r.is_advisory()) {
            let id = advisory_id(&r.reference_locator);
            match vulnerabilities.iter_mut().find(|v| v.id == id) {
                Some(v) => v.components.push(p.label()),
                None => vulnerabilities.push(Vulnerability {
                    id,
                    aliases: Vec::new(),
                    severity: Severity::Unrated,
                    components: vec![p.label()],
                }),
            }
        }
    }
    let mut out = EvidenceSummary::new(k);
    out.sbom = Some(SbomSummary {
        spec_version: doc.spdx_version,
        components: doc.packages.len() as u64,
        vulnerable_components: vulnerable,
        vulnerabilities,
    });
    Ok(out)
}
