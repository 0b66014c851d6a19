//! What a piece of evidence showed, as the gates will read it. Parsing the formats lives in
//! `goose-evidence`; these are the facts recorded on the chain.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use time::OffsetDateTime;

/// The formats accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EvidenceKind {
    /// SARIF 2.1.0 static analysis results.
    Sarif,
    /// JUnit XML test results.
    Junit,
    /// LCOV coverage.
    Lcov,
    /// Cobertura XML coverage.
    Cobertura,
    /// CycloneDX JSON SBOM.
    Cyclonedx,
    /// SPDX 2.x JSON SBOM.
    Spdx,
    /// An in-toto Statement v1 in a DSSE envelope.
    InToto,
}

impl EvidenceKind {
    pub const ALL: [EvidenceKind; 7] = [
        Self::Sarif,
        Self::Junit,
        Self::Lcov,
        Self::Cobertura,
        Self::Cyclonedx,
        Self::Spdx,
        Self::InToto,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sarif => "sarif",
            Self::Junit => "junit",
            Self::Lcov => "lcov",
            Self::Cobertura => "cobertura",
            Self::Cyclonedx => "cyclonedx",
            Self::Spdx => "spdx",
            Self::InToto => "in-toto",
        }
    }

    /// The folder of the seed's evidence layout (§3.1) this kind goes to.
    pub const fn layout_folder(self) -> &'static str {
        match self {
            Self::Sarif => "sast",
            Self::Junit => "tests",
            Self::Lcov | Self::Cobertura => "metrics",
            Self::Cyclonedx | Self::Spdx => "sbom",
            Self::InToto => "attestations",
        }
    }

    pub const fn file_extension(self) -> &'static str {
        match self {
            Self::Sarif => "sarif",
            Self::Junit | Self::Cobertura => "xml",
            Self::Lcov => "info",
            Self::Cyclonedx | Self::Spdx | Self::InToto => "json",
        }
    }
}

impl fmt::Display for EvidenceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EvidenceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!("unknown evidence kind {s:?} (sarif, junit, lcov, cobertura, cyclonedx, spdx, in-toto)")
            })
    }
}

/// Static analysis findings by severity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SastSummary {
    pub tools: Vec<String>,
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
    pub info: u64,
}

impl SastSummary {
    pub fn total(&self) -> u64 {
        self.critical + self.high + self.medium + self.low + self.info
    }
}

/// Test outcomes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TestSummary {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
}

/// Line coverage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CoverageSummary {
    pub lines_covered: u64,
    pub lines_total: u64,
    /// 0..=100, two decimals.
    pub line_percent: f64,
}

/// A software bill of materials.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SbomSummary {
    pub spec_version: String,
    pub components: u64,
    /// Components named by a vulnerability in the document.
    pub vulnerable_components: u64,
}

/// A verified attestation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttestationSummary {
    pub predicate_type: String,
    /// `name` → `sha256:<hex>` (or the first digest given).
    pub subjects: Vec<(String, String)>,
    /// Key ids whose signatures verified.
    pub signed_by: Vec<String>,
}

/// One accepted piece of evidence, as recorded in the `EvidenceAccepted` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EvidenceSummary {
    pub kind: EvidenceKind,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sast: Option<SastSummary>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tests: Option<TestSummary>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub coverage: Option<CoverageSummary>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sbom: Option<SbomSummary>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub attestation: Option<AttestationSummary>,
}

impl EvidenceSummary {
    pub fn new(kind: EvidenceKind) -> Self {
        Self {
            kind,
            sast: None,
            tests: None,
            coverage: None,
            sbom: None,
            attestation: None,
        }
    }
}

/// The fact recorded per accepted file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EvidenceRecord {
    pub id: String,
    pub service: String,
    pub version: String,
    pub kind: EvidenceKind,
    /// SHA3-256 of the file, hex: its address in the blob store.
    pub digest: String,
    pub size: u64,
    pub filename: String,
    pub summary: EvidenceSummary,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub submitted_at: OffsetDateTime,
    pub submitted_by: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub retain_until: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum EvidenceEvent {
    EvidenceAccepted(EvidenceRecord),
}

impl EvidenceEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::EvidenceAccepted(_) => "EvidenceAccepted",
        }
    }
}
