//! YAML input with positions in errors. serde-saphyr because serde_yaml is deprecated and
//! serde_yml has an advisory (RUSTSEC-2025-0068); it reports line and column for every error
//! and offers `Spanned` values for checks that come after parsing.

use serde::de::DeserializeOwned;

/// A YAML (or JSON — YAML's subset) document that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct YamlError {
    pub line: Option<u64>,
    pub message: String,
}

impl From<serde_saphyr::Error> for YamlError {
    fn from(e: serde_saphyr::Error) -> Self {
        let line = e.location().map(|l| l.line()).filter(|l| *l > 0);
        // The crate's Display repeats the position and may draw a snippet: keep the first line.
        let text = e.to_string();
        let message = text
            .lines()
            .next()
            .unwrap_or("invalid YAML")
            .trim()
            .to_owned();
        Self { line, message }
    }
}

// YAML 1.2 booleans only: under YAML 1.1 rules a service called `y`, `no` or `on` would
// silently become a boolean (the "Norway problem").
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! { strict_booleans: true }
}

pub(crate) fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    serde_saphyr::from_str_with_options(text, options()).map_err(YamlError::from)
}

pub(crate) fn from_multiple<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, YamlError> {
    serde_saphyr::from_multiple_with_options(text, options()).map_err(YamlError::from)
}

/// Every document of a YAML stream, as JSON values (null documents dropped).
pub fn documents(text: &str) -> Result<Vec<serde_json::Value>, YamlError> {
    Ok(from_multiple::<serde_json::Value>(text)?
        .into_iter()
        .filter(|d| !d.is_null())
        .collect())
}
