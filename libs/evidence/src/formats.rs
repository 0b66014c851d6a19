//! Reading evidence files into [`EvidenceSummary`]s.
//!
//! JSON formats are deserialised into views holding only the fields the summary needs
//! (serde skips the rest without allocating), XML is read as a stream of events
//! (quick-xml), LCOV record by record (the `lcov` crate): memory stays a small multiple of
//! the file however large it is. The typed crates for SARIF and CycloneDX materialise the
//! whole document, several times its size, which the ingestion budget (peak under 4x the
//! file) does not allow.

mod coverage;
mod junit;
mod model;
mod openapi;
pub mod openvex;
mod sarif;
mod sbom;

pub use sarif::is_advisory_id;

use crate::dsse::{self, TrustedKeys};
use goose_domain::evidence::{AttestationSummary, EvidenceKind, EvidenceSummary};
use quick_xml::events::BytesStart;
use serde::Deserialize;

/// Why a file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("declared {declared} but the file looks like {detected}")]
    Mismatch {
        declared: EvidenceKind,
        detected: EvidenceKind,
    },
    #[error("not valid {kind}: {reason}")]
    Malformed { kind: EvidenceKind, reason: String },
    #[error("{kind} attestation rejected: {reason}")]
    Untrusted { kind: EvidenceKind, reason: String },
}

fn malformed(kind: EvidenceKind, reason: impl Into<String>) -> FormatError {
    FormatError::Malformed {
        kind,
        reason: reason.into(),
    }
}

/// Guesses the format of `bytes` from its first bytes, for the mismatch message.
pub fn sniff(bytes: &[u8]) -> Option<EvidenceKind> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
    let has = |s: &str| head.contains(s);
    if has("openvex.dev/ns") {
        Some(EvidenceKind::Openvex)
    } else if has("\"openapi\"") || head.starts_with("openapi:") {
        Some(EvidenceKind::Openapi)
    } else if has("\"bomFormat\"") {
        Some(EvidenceKind::Cyclonedx)
    } else if has("\"spdxVersion\"") {
        Some(EvidenceKind::Spdx)
    } else if has("\"payloadType\"") {
        Some(EvidenceKind::InToto)
    } else if has("sarif") && has("\"runs\"") {
        Some(EvidenceKind::Sarif)
    } else if has("<testsuite") {
        Some(EvidenceKind::Junit)
    } else if has("<coverage") {
        Some(EvidenceKind::Cobertura)
    } else if head.lines().any(|l| l.starts_with("SF:")) {
        Some(EvidenceKind::Lcov)
    } else {
        None
    }
}

/// Parses `bytes` as `kind`.
pub fn summarize(
    kind: EvidenceKind,
    bytes: &[u8],
    keys: &TrustedKeys,
) -> Result<EvidenceSummary, FormatError> {
    let result = match kind {
        EvidenceKind::Sarif => sarif::sarif(bytes),
        EvidenceKind::Junit => junit::junit(bytes),
        EvidenceKind::Lcov => coverage::lcov_file(bytes),
        EvidenceKind::Cobertura => coverage::cobertura(bytes),
        EvidenceKind::Cyclonedx => sbom::cyclonedx(bytes),
        EvidenceKind::Spdx => sbom::spdx(bytes),
        EvidenceKind::InToto => in_toto(bytes, keys),
        EvidenceKind::Openvex => openvex::openvex(bytes),
        EvidenceKind::Openapi => openapi::openapi(bytes),
        EvidenceKind::ModelMetrics => model::metrics(bytes),
        EvidenceKind::ModelCard => model::card(bytes),
    };
    result.map_err(|e| match (&e, sniff(bytes)) {
        (FormatError::Malformed { .. }, Some(detected)) if detected != kind => {
            FormatError::Mismatch {
                declared: kind,
                detected,
            }
        }
        _ => e,
    })
}

// --- XML helpers ---------------------------------------------------------------------------

/// Deeper nesting than any real report has is refused rather than walked.
const MAX_XML_DEPTH: usize = 64;

fn attr(e: &BytesStart<'_>, name: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .and_then(|a| std::str::from_utf8(&a.value).ok().map(str::to_owned))
}

fn local(name: &[u8]) -> &[u8] {
    name.rsplit(|b| *b == b':').next().unwrap_or(name)
}

// --- in-toto Statement v1 in DSSE --------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Statement {
    #[serde(rename = "_type")]
    kind: String,
    subject: Vec<Subject>,
    predicate_type: String,
}

#[derive(Deserialize)]
struct Subject {
    #[serde(default)]
    name: String,
    digest: std::collections::BTreeMap<String, String>,
}

fn in_toto(bytes: &[u8], keys: &TrustedKeys) -> Result<EvidenceSummary, FormatError> {
    let k = EvidenceKind::InToto;
    let v = dsse::verify(bytes, keys).map_err(|reason| {
        if reason.starts_with("not a DSSE envelope") {
            malformed(k, reason)
        } else {
            FormatError::Untrusted { kind: k, reason }
        }
    })?;
    if v.payload_type != dsse::IN_TOTO_PAYLOAD_TYPE {
        return Err(malformed(
            k,
            format!(
                "payloadType {:?}, expected {}",
                v.payload_type,
                dsse::IN_TOTO_PAYLOAD_TYPE
            ),
        ));
    }
    let st: Statement =
        serde_json::from_slice(&v.payload).map_err(|e| malformed(k, format!("statement: {e}")))?;
    if st.kind != dsse::STATEMENT_V1 {
        return Err(malformed(
            k,
            format!("_type {:?}, expected {}", st.kind, dsse::STATEMENT_V1),
        ));
    }
    if st.subject.is_empty() || st.subject.iter().any(|s| s.digest.is_empty()) {
        return Err(malformed(
            k,
            "every statement needs at least one subject with a digest",
        ));
    }
    let subjects = st
        .subject
        .iter()
        .map(|s| {
            let (alg, d) = s
                .digest
                .get_key_value("sha256")
                .or_else(|| s.digest.iter().next())
                .map(|(a, d)| (a.clone(), d.clone()))
                .unwrap_or_default();
            (s.name.clone(), format!("{alg}:{d}"))
        })
        .collect();
    let mut out = EvidenceSummary::new(k);
    out.attestation = Some(AttestationSummary {
        predicate_type: st.predicate_type,
        subjects,
        signed_by: v.signed_by,
    });
    Ok(out)
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
