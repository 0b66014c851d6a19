//! OpenAPI 3.x documents (JSON or YAML), read with the `oas3` crate's typed model: the
//! document must deserialize as OpenAPI, say `openapi: 3.0.x` or `3.1.x`, have a title and
//! version, and name every path from `/`.

use super::{malformed, FormatError};
use goose_domain::evidence::{ApiSummary, EvidenceKind, EvidenceSummary};

pub(super) fn openapi(bytes: &[u8]) -> Result<EvidenceSummary, FormatError> {
    let k = EvidenceKind::Openapi;
    let text = std::str::from_utf8(bytes).map_err(|e| malformed(k, format!("not UTF-8: {e}")))?;
    // YAML is a superset of JSON: JSON goes straight to the typed model (its errors carry
    // line and column), YAML through one JSON value.
    let json = if text.trim_start().starts_with('{') {
        text.to_owned()
    } else {
        let mut docs =
            goose_domain::yaml_documents(text).map_err(|e| malformed(k, e.to_string()))?;
        if docs.len() != 1 {
            return Err(malformed(
                k,
                format!("{} YAML documents, expected one", docs.len()),
            ));
        }
        docs.pop().map(|d| d.to_string()).unwrap_or_default()
    };
    let spec = oas3::from_json(&json).map_err(|e| malformed(k, e.to_string()))?;
    if !(spec.openapi.starts_with("3.0.") || spec.openapi.starts_with("3.1.")) {
        return Err(malformed(
            k,
            format!("openapi {:?}, expected 3.0.x or 3.1.x", spec.openapi),
        ));
    }
    if spec.info.title.trim().is_empty() || spec.info.version.trim().is_empty() {
        return Err(malformed(
            k,
            "info.title and info.version must not be empty",
        ));
    }
    let paths = spec.paths.as_ref().map(|p| p.len()).unwrap_or(0);
    if let Some(bad) = spec
        .paths
        .iter()
        .flat_map(|p| p.keys())
        .find(|p| !p.starts_with('/'))
    {
        return Err(malformed(
            k,
            format!("paths: {bad:?} does not start with /"),
        ));
    }
    let operations = spec
        .paths
        .iter()
        .flat_map(|p| p.values())
        .map(|item| item.methods().into_iter().count())
        .sum::<usize>();
    let mut out = EvidenceSummary::new(k);
    out.api = Some(ApiSummary {
        openapi: spec.openapi.clone(),
        title: spec.info.title.clone(),
        api_version: spec.info.version.clone(),
        paths: paths as u64,
        operations: operations as u64,
    });
    Ok(out)
}
