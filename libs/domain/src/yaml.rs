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

pub(crate) fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    serde_saphyr::from_str(text).map_err(YamlError::from)
}

pub(crate) fn from_multiple<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, YamlError> {
    serde_saphyr::from_multiple(text).map_err(YamlError::from)
}
