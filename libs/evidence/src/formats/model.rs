//! Model evidence: evaluation metrics (JSON) and model cards (markdown).
//!
//! Metrics come in the shapes tools write: a flat object of numbers (what
//! `mlflow.evaluate(...).metrics` or a `json.dump(metrics)` gives), the same under `metrics`
//! with the `dataset` they were measured on, or a list of `{name, value, dataset}`. Every value
//! must be a finite number: a metric that cannot be compared with a threshold is refused, not
//! dropped.

use super::{malformed, FormatError};
use goose_domain::evidence::{
    EvidenceKind, EvidenceSummary, ModelCardSummary, ModelMetricsSummary,
};
use goose_domain::model::Metric;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Most metrics in one file.
const MAX_METRICS: usize = 1_000;
/// Longest metric or dataset name.
const MAX_NAME: usize = 200;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Listed {
    name: String,
    value: Value,
    #[serde(default)]
    dataset: Option<String>,
}

pub(super) fn metrics(bytes: &[u8]) -> Result<EvidenceSummary, FormatError> {
    let k = EvidenceKind::ModelMetrics;
    let bad = |r: String| malformed(k, r);
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    let Value::Object(mut top) = doc else {
        return Err(bad("expected a JSON object".into()));
    };
    let mut out = Vec::new();
    if top.contains_key("metrics") {
        let dataset = match top.remove("dataset") {
            None | Some(Value::Null) => None,
            Some(Value::String(d)) => Some(d),
            Some(_) => return Err(bad("dataset must be a string".into())),
        };
        if let Some(other) = top.keys().find(|key| *key != "metrics") {
            return Err(bad(format!(
                "unexpected field {other:?} next to metrics (only dataset is allowed)"
            )));
        }
        match top.remove("metrics") {
            Some(Value::Object(m)) => flat(m, dataset.as_deref(), &mut out)?,
            Some(Value::Array(items)) => {
                for (i, item) in items.into_iter().enumerate() {
                    let l: Listed = serde_json::from_value(item)
                        .map_err(|e| bad(format!("metrics[{i}]: {e}")))?;
                    let dataset = l.dataset.or_else(|| dataset.clone());
                    out.push(metric(l.name, dataset, &l.value)?);
                }
            }
            _ => return Err(bad("metrics must be an object or a list".into())),
        }
    } else {
        flat(top, None, &mut out)?;
    }
    if out.is_empty() {
        return Err(bad("no metrics in the file".into()));
    }
    if out.len() > MAX_METRICS {
        return Err(bad(format!("{} metrics; at most {MAX_METRICS}", out.len())));
    }
    let mut seen = std::collections::BTreeSet::new();
    for m in &out {
        if !seen.insert((m.name.as_str(), m.dataset.as_deref())) {
            return Err(bad(format!(
                "metric {:?}{} is given twice",
                m.name,
                m.dataset
                    .as_ref()
                    .map(|d| format!(" on {d:?}"))
                    .unwrap_or_default()
            )));
        }
    }
    let mut s = EvidenceSummary::new(k);
    s.model_metrics = Some(ModelMetricsSummary { metrics: out });
    Ok(s)
}

fn flat(
    m: Map<String, Value>,
    dataset: Option<&str>,
    out: &mut Vec<Metric>,
) -> Result<(), FormatError> {
    for (name, value) in m {
        out.push(metric(name, dataset.map(str::to_owned), &value)?);
    }
    Ok(())
}

fn metric(name: String, dataset: Option<String>, value: &Value) -> Result<Metric, FormatError> {
    let k = EvidenceKind::ModelMetrics;
    if name.trim().is_empty() || name.len() > MAX_NAME {
        return Err(malformed(
            k,
            format!("metric name {name:?}: 1 to {MAX_NAME} characters"),
        ));
    }
    if dataset
        .as_ref()
        .is_some_and(|d| d.trim().is_empty() || d.len() > MAX_NAME)
    {
        return Err(malformed(
            k,
            format!("metric {name:?}: dataset must be 1 to {MAX_NAME} characters"),
        ));
    }
    let value = value.as_f64().filter(|v| v.is_finite()).ok_or_else(|| {
        malformed(
            k,
            format!("metric {name:?}: {value} is not a finite number"),
        )
    })?;
    Ok(Metric {
        name,
        dataset,
        value,
    })
}

pub(super) fn card(bytes: &[u8]) -> Result<EvidenceSummary, FormatError> {
    let k = EvidenceKind::ModelCard;
    let text =
        std::str::from_utf8(bytes).map_err(|e| malformed(k, format!("not UTF-8 text: {e}")))?;
    if text.contains('\0') {
        return Err(malformed(k, "a NUL byte: not a markdown file"));
    }
    let mut title = None;
    let mut sections = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        if let Some(h) = line.strip_prefix("# ") {
            title.get_or_insert_with(|| h.trim().to_owned());
        } else if let Some(h) = line.strip_prefix("## ") {
            sections.push(h.trim().to_owned());
        }
    }
    let title = title
        .filter(|t| !t.is_empty())
        .ok_or_else(|| malformed(k, "no title: a model card starts with a `# ` heading"))?;
    let mut s = EvidenceSummary::new(k);
    s.model_card = Some(ModelCardSummary { title, sections });
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &EvidenceSummary) -> Vec<(String, Option<String>, f64)> {
        s.model_metrics
            .as_ref()
            .unwrap()
            .metrics
            .iter()
            .map(|m| (m.name.clone(), m.dataset.clone(), m.value))
            .collect()
    }

    #[test]
    fn metric_shapes() {
        let flat = metrics(br#"{"accuracy": 0.91, "f1": 0.88}"#).unwrap();
        assert_eq!(
            names(&flat),
            vec![("accuracy".into(), None, 0.91), ("f1".into(), None, 0.88)]
        );
        let on = metrics(br#"{"dataset": "holdout", "metrics": {"auc": 0.9}}"#).unwrap();
        assert_eq!(
            names(&on),
            vec![("auc".into(), Some("holdout".into()), 0.9)]
        );
        let listed = metrics(
            br#"{"dataset": "holdout", "metrics": [{"name": "auc", "value": 0.9},
                 {"name": "auc", "value": 0.7, "dataset": "drifted"}]}"#,
        )
        .unwrap();
        assert_eq!(
            listed.model_metrics.unwrap().metrics[1].dataset.as_deref(),
            Some("drifted")
        );
    }

    #[test]
    fn bad_metrics_are_refused_with_the_reason() {
        for (bad, says) in [
            (&b"[1, 2]"[..], "a JSON object"),
            (b"{}", "no metrics"),
            (br#"{"accuracy": "high"}"#, "not a finite number"),
            (br#"{"accuracy": null}"#, "not a finite number"),
            (
                br#"{"metrics": {"a": 1}, "model": "x"}"#,
                "unexpected field \"model\"",
            ),
            (br#"{"metrics": 3}"#, "an object or a list"),
            (
                br#"{"metrics": [{"name": "a", "value": 1}, {"name": "a", "value": 2}]}"#,
                "given twice",
            ),
            (br#"{"metrics": [{"name": "a", "valu": 1}]}"#, "metrics[0]"),
            (br#"{"": 1}"#, "metric name"),
            (b"not json", "expected"),
        ] {
            let e = metrics(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{}: {e}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn cards() {
        let c = card(b"# Churn v3\n\nPredicts churn.\n\n## Intended use\n```\n# not a title\n## nor a section\n```\n## Limitations\n").unwrap();
        let c = c.model_card.unwrap();
        assert_eq!(c.title, "Churn v3");
        assert_eq!(c.sections, vec!["Intended use", "Limitations"]);
        assert!(card(b"just text")
            .unwrap_err()
            .to_string()
            .contains("no title"));
        assert!(card(&[0xff, 0xfe])
            .unwrap_err()
            .to_string()
            .contains("UTF-8"));
    }
}
