//! OpenVEX (<https://github.com/openvex/spec>): statements that a version is, or is not,
//! affected by known vulnerabilities. Both the v0.2.0 shape (`vulnerability: {name,
//! aliases}`, `products: [{"@id"}]`) and the earlier v0.0.x one (strings) are read.

use super::{malformed, FormatError};
use goose_domain::evidence::{EvidenceKind, EvidenceSummary, VexStatement, VexStatus, VexSummary};
use serde::Deserialize;

/// The justification labels of the OpenVEX spec for `not_affected`.
pub const JUSTIFICATIONS: [&str; 5] = [
    "component_not_present",
    "vulnerable_code_not_present",
    "vulnerable_code_not_in_execute_path",
    "vulnerable_code_cannot_be_controlled_by_adversary",
    "inline_mitigations_already_exist",
];

#[derive(Deserialize)]
struct Document {
    #[serde(rename = "@context")]
    context: String,
    #[serde(rename = "@id")]
    id: String,
    author: String,
    timestamp: String,
    statements: Vec<Statement>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum VulnRef {
    Name(String),
    Object {
        #[serde(default)]
        name: String,
        #[serde(default, rename = "@id")]
        id: Option<String>,
        #[serde(default)]
        aliases: Vec<String>,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Product {
    Id(String),
    Object {
        #[serde(default, rename = "@id")]
        id: Option<String>,
        #[serde(default)]
        identifiers: Option<Identifiers>,
    },
}

#[derive(Deserialize)]
struct Identifiers {
    #[serde(default)]
    purl: Option<String>,
}

#[derive(Deserialize)]
struct Statement {
    vulnerability: VulnRef,
    #[serde(default)]
    products: Vec<Product>,
    status: String,
    #[serde(default)]
    justification: Option<String>,
    #[serde(default)]
    impact_statement: Option<String>,
    #[serde(default)]
    action_statement: Option<String>,
}

fn status(s: &str) -> Option<VexStatus> {
    match s {
        "not_affected" => Some(VexStatus::NotAffected),
        "affected" => Some(VexStatus::Affected),
        "fixed" => Some(VexStatus::Fixed),
        "under_investigation" => Some(VexStatus::UnderInvestigation),
        _ => None,
    }
}

fn nonblank(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

pub(super) fn openvex(bytes: &[u8]) -> Result<EvidenceSummary, FormatError> {
    let k = EvidenceKind::Openvex;
    let doc: Document = serde_json::from_slice(bytes).map_err(|e| malformed(k, e.to_string()))?;
    if !doc.context.starts_with("https://openvex.dev/ns") {
        return Err(malformed(
            k,
            format!(
                "@context {:?}, expected https://openvex.dev/ns/v…",
                doc.context
            ),
        ));
    }
    for (field, v) in [("@id", &doc.id), ("author", &doc.author)] {
        if v.trim().is_empty() {
            return Err(malformed(k, format!("{field} must not be empty")));
        }
    }
    time::OffsetDateTime::parse(
        &doc.timestamp,
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|e| malformed(k, format!("timestamp {:?}: {e}", doc.timestamp)))?;
    if doc.statements.is_empty() {
        return Err(malformed(k, "statements must not be empty"));
    }
    let mut statements = Vec::with_capacity(doc.statements.len());
    for (i, st) in doc.statements.iter().enumerate() {
        let at = |field: &str, why: String| malformed(k, format!("statements[{i}].{field}: {why}"));
        let vulnerability: Vec<String> = match &st.vulnerability {
            VulnRef::Name(n) => vec![n.trim().to_owned()],
            VulnRef::Object { name, id, aliases } => std::iter::once(name.trim().to_owned())
                .chain(id.iter().cloned())
                .chain(aliases.iter().cloned())
                .filter(|s| !s.is_empty())
                .collect(),
        };
        if vulnerability.first().is_none_or(|n| n.is_empty()) {
            return Err(at("vulnerability.name", "must not be empty".into()));
        }
        let status = status(&st.status).ok_or_else(|| {
            at(
                "status",
                format!(
                    "{:?} is not one of not_affected, affected, fixed, under_investigation",
                    st.status
                ),
            )
        })?;
        let justification = nonblank(&st.justification);
        let impact_statement = nonblank(&st.impact_statement);
        if let Some(j) = &justification {
            if !JUSTIFICATIONS.contains(&j.as_str()) {
                return Err(at(
                    "justification",
                    format!("{j:?} is not one of {}", JUSTIFICATIONS.join(", ")),
                ));
            }
        }
        if status == VexStatus::NotAffected && justification.is_none() && impact_statement.is_none()
        {
            return Err(at(
                "justification",
                "a not_affected statement needs a justification or an impact_statement".into(),
            ));
        }
        if status == VexStatus::Affected && nonblank(&st.action_statement).is_none() {
            return Err(at(
                "action_statement",
                "an affected statement needs an action_statement".into(),
            ));
        }
        let products = st
            .products
            .iter()
            .filter_map(|p| match p {
                Product::Id(s) => Some(s.clone()),
                Product::Object { id, identifiers } => identifiers
                    .as_ref()
                    .and_then(|i| i.purl.clone())
                    .or_else(|| id.clone()),
            })
            .collect();
        statements.push(VexStatement {
            vulnerability,
            products,
            status,
            justification,
            impact_statement,
        });
    }
    let mut out = EvidenceSummary::new(k);
    out.vex = Some(VexSummary {
        id: doc.id,
        author: doc.author,
        statements,
    });
    Ok(out)
}
