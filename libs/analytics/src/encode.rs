//! An answer as JSON rows, CSV or an Arrow IPC stream.

use crate::query::Answer;
use datafusion::arrow::csv::WriterBuilder;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::json::ArrayWriter;

/// The formats an answer is returned in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Csv,
    Arrow,
}

impl Format {
    pub const fn media_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Csv => "text/csv; charset=utf-8",
            Self::Arrow => "application/vnd.apache.arrow.stream",
        }
    }
}

/// The rows as a JSON array of objects (timestamps as RFC 3339 strings, nulls kept).
pub fn json_rows(answer: &Answer) -> Result<serde_json::Value, ArrowError> {
    let mut w = ArrayWriter::new(Vec::new());
    for b in &answer.batches {
        w.write(b)?;
    }
    w.finish()?;
    let bytes = w.into_inner();
    if bytes.is_empty() {
        return Ok(serde_json::Value::Array(Vec::new()));
    }
    serde_json::from_slice(&bytes).map_err(|e| ArrowError::JsonError(e.to_string()))
}

/// The rows as CSV with a header line.
pub fn csv(answer: &Answer) -> Result<Vec<u8>, ArrowError> {
    let mut w = WriterBuilder::new().with_header(true).build(Vec::new());
    if answer.batches.is_empty() {
        // A header even without rows.
        let empty = datafusion::arrow::record_batch::RecordBatch::new_empty(answer.schema.clone());
        w.write(&empty)?;
    }
    for b in &answer.batches {
        w.write(b)?;
    }
    Ok(w.into_inner())
}

/// The answer as an Arrow IPC stream (schema, then each batch).
pub fn arrow_ipc(answer: &Answer) -> Result<Vec<u8>, ArrowError> {
    let mut w = StreamWriter::try_new(Vec::new(), &answer.schema)?;
    for b in &answer.batches {
        w.write(b)?;
    }
    w.finish()?;
    w.into_inner()
}
