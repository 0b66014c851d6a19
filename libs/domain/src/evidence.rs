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
    /// An OpenVEX document: which known vulnerabilities do (not) affect the version.
    Openvex,
    /// An OpenAPI 3.x document describing the version's API.
    Openapi,
    /// A model version's evaluation metrics (JSON): `{"accuracy": 0.91, ...}`, or
    /// `{"dataset": "holdout", "metrics": {...}}`, or `{"metrics": [{name, value, dataset}]}`.
    ModelMetrics,
    /// A model card (markdown, with a `# ` title).
    ModelCard,
}

impl EvidenceKind {
    pub const ALL: [EvidenceKind; 11] = [
        Self::Sarif,
        Self::Junit,
        Self::Lcov,
        Self::Cobertura,
        Self::Cyclonedx,
        Self::Spdx,
        Self::InToto,
        Self::Openvex,
        Self::Openapi,
        Self::ModelMetrics,
        Self::ModelCard,
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
            Self::Openvex => "openvex",
            Self::Openapi => "openapi",
            Self::ModelMetrics => "model-metrics",
            Self::ModelCard => "model-card",
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
            Self::Openvex => "vex",
            Self::Openapi => "api",
            Self::ModelMetrics | Self::ModelCard => "model",
        }
    }

    pub const fn file_extension(self) -> &'static str {
        match self {
            Self::Sarif => "sarif",
            Self::Junit | Self::Cobertura => "xml",
            Self::Lcov => "info",
            Self::Cyclonedx
            | Self::Spdx
            | Self::InToto
            | Self::Openvex
            | Self::Openapi
            | Self::ModelMetrics => "json",
            Self::ModelCard => "md",
        }
    }

    /// Kinds that only a model version can have.
    pub const fn for_models_only(self) -> bool {
        matches!(self, Self::ModelMetrics | Self::ModelCard)
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
                let known: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
                format!("unknown evidence kind {s:?} ({})", known.join(", "))
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
    /// Results that report a known vulnerability (the rule id is an advisory id, as Trivy,
    /// Grype and osv-scanner write SARIF): not counted above, read by the
    /// `no_known_vulnerabilities` check, where VEX can answer them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vulnerabilities: Vec<Vulnerability>,
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
    /// The known vulnerabilities the document lists (CycloneDX `vulnerabilities`, SPDX
    /// advisory references), for the `no_known_vulnerabilities` check.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vulnerabilities: Vec<Vulnerability>,
}

/// How severe a known vulnerability is, as its ratings say. Ordered from least to most.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    None,
    Info,
    Low,
    Medium,
    High,
    Critical,
    /// The document gives no rating (pip-audit rates nothing). Gates treat it as failing:
    /// an unrated advisory is not known to be harmless.
    Unrated,
}

impl Severity {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
            Self::Unrated => "unrated",
        }
    }

    /// CVSS v3/v4 qualitative bands (FIRST): 9.0+ critical, 7.0+ high, 4.0+ medium, 0.1+ low.
    pub fn from_cvss(score: f64) -> Self {
        match score {
            s if s >= 9.0 => Self::Critical,
            s if s >= 7.0 => Self::High,
            s if s >= 4.0 => Self::Medium,
            s if s > 0.0 => Self::Low,
            _ => Self::None,
        }
    }

    /// A rating's severity word as CycloneDX and most scanners write it.
    pub fn parse(word: &str) -> Option<Self> {
        match word.to_ascii_lowercase().as_str() {
            "none" => Some(Self::None),
            "info" | "informational" => Some(Self::Info),
            "low" => Some(Self::Low),
            "medium" | "moderate" => Some(Self::Medium),
            "high" | "important" => Some(Self::High),
            "critical" => Some(Self::Critical),
            "unknown" | "unrated" => Some(Self::Unrated),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One known vulnerability a scanner reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Vulnerability {
    /// The advisory id as the scanner wrote it (CVE-…, GHSA-…, PYSEC-…).
    pub id: String,
    /// Other ids of the same advisory the document gives.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    pub severity: Severity,
    /// The affected components: package URLs where the document has them, else
    /// `name@version`, else the document's own reference.
    #[serde(default)]
    pub components: Vec<String>,
}

/// What an OpenVEX statement says of a vulnerability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VexStatus {
    NotAffected,
    Affected,
    Fixed,
    UnderInvestigation,
}

impl VexStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotAffected => "not_affected",
            Self::Affected => "affected",
            Self::Fixed => "fixed",
            Self::UnderInvestigation => "under_investigation",
        }
    }
}

/// One OpenVEX statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VexStatement {
    /// The vulnerability's name (and any aliases given).
    pub vulnerability: Vec<String>,
    /// Products (package URLs) the statement is about; empty means the whole version.
    #[serde(default)]
    pub products: Vec<String>,
    pub status: VexStatus,
    /// For not_affected: one of OpenVEX's justification labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact_statement: Option<String>,
}

/// An OpenVEX document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VexSummary {
    pub id: String,
    pub author: String,
    pub statements: Vec<VexStatement>,
}

/// An OpenAPI document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiSummary {
    /// `openapi` as written (3.0.x or 3.1.x).
    pub openapi: String,
    pub title: String,
    pub api_version: String,
    pub paths: u64,
    pub operations: u64,
}

/// A model version's evaluation metrics, as measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelMetricsSummary {
    pub metrics: Vec<crate::model::Metric>,
}

/// A model card.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelCardSummary {
    /// The `# ` heading.
    pub title: String,
    /// The `## ` headings, in order.
    pub sections: Vec<String>,
}

/// What a piece of evidence is about: a version of a service in the catalog (the default,
/// and every record before models existed), or a registered version of a model.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    #[default]
    Service,
    Model,
}

impl Subject {
    pub fn is_service(&self) -> bool {
        *self == Self::Service
    }

    /// The evidence stream id of `name`@`version` (`evidence/<service>@<version>`,
    /// `evidence/model:<name>@<version>`).
    pub fn stream_id(self, name: &str, version: &str) -> String {
        match self {
            Self::Service => format!("{name}@{version}"),
            Self::Model => format!("model:{name}@{version}"),
        }
    }
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
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub vex: Option<VexSummary>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub api: Option<ApiSummary>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub model_metrics: Option<ModelMetricsSummary>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub model_card: Option<ModelCardSummary>,
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
            vex: None,
            api: None,
            model_metrics: None,
            model_card: None,
        }
    }
}

/// The fact recorded per accepted file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EvidenceRecord {
    pub id: String,
    /// What `service` names: a service (left out) or a model.
    #[serde(default, skip_serializing_if = "Subject::is_service")]
    pub subject: Subject,
    /// The service's name, or the model's when `subject` is `model`.
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

/// A download of a stored evidence file: who, which, when (seed 003: access to the WORM store
/// is audited). Recorded before the bytes are served; a download that cannot be recorded is
/// refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BlobDownload {
    /// SHA3-256 of the file (its address).
    pub digest: String,
    pub by: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub at: OffsetDateTime,
    /// The evidence records with these bytes.
    pub records: Vec<String>,
}

// Events are decoded one at a time and never kept in bulk as this enum: boxing the record
// would only add an allocation per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum EvidenceEvent {
    EvidenceAccepted(EvidenceRecord),
    BlobDownloaded(BlobDownload),
}

impl EvidenceEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::EvidenceAccepted(_) => "EvidenceAccepted",
            Self::BlobDownloaded(_) => "BlobDownloaded",
        }
    }

    /// The stream of a file's downloads (`evidence/download:<digest>`; evidence files are
    /// `evidence/<service>@<version>`).
    pub fn download_stream(digest: &str) -> String {
        format!("download:{digest}")
    }
}
