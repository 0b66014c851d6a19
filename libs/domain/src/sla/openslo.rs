//! OpenSLO v1 (github.com/OpenSLO/OpenSLO) as users write it: `kind: SLO` with an inline or
//! referenced `SLI` (ratio or threshold), a rolling `timeWindow`, `objectives` with targets,
//! and `AlertPolicy` / `AlertCondition` burn rates. Latency percentiles need no shorthand: a
//! threshold SLI with `op: lte, value: 250, target: 0.95` is "P95 ≤ 250 ms".
//!
//! Measurements come from Golden Goose itself (REST batches, later NATS and Prometheus
//! remote-write): an SLI's `metricSource.type` is `golden-goose` with `spec.signal`
//! `requests` (a ratio: good = requests that did not fail, total = all) or `latency` (a
//! threshold on milliseconds). Errors name the document, the field and, where the parser
//! knows it, the line.

use crate::yaml::YamlError;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use std::collections::BTreeMap;

/// What an SLO measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Indicator {
    /// Good requests over all requests (availability; its complement is the error rate).
    Ratio,
    /// Requests whose latency satisfies `op value` milliseconds.
    Latency { op: Op, threshold_ms: f64 },
}

/// A comparison of OpenSLO's threshold objectives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Lt,
    Lte,
    Gt,
    Gte,
}

impl Op {
    pub fn holds(self, x: f64, value: f64) -> bool {
        match self {
            Op::Lt => x < value,
            Op::Lte => x <= value,
            Op::Gt => x > value,
            Op::Gte => x >= value,
        }
    }
}

/// One objective: the fraction of good events (or time slices) to reach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Objective {
    pub name: String,
    /// In (0, 1].
    pub target: f64,
    /// For latency: the threshold this objective uses (`value`, milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<Op>,
}

/// A burn-rate condition: alert when the error budget burns `factor` times faster than
/// sustainable over `long_seconds` and over `short_seconds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BurnCondition {
    pub name: String,
    pub factor: f64,
    pub long_seconds: u64,
    pub short_seconds: u64,
}

/// A validated SLO, as recorded on the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Slo {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The catalog service it is about.
    pub service: String,
    /// The window's duration, e.g. `30d` (rolling) or `1M` (calendar).
    pub window: String,
    /// A rolling window's length; a calendar window's nominal length (30 days a month, 91 a
    /// quarter, 365 a year), which its burn-rate alert windows scale with.
    pub window_seconds: u64,
    /// Set for a calendar-aligned window: statuses cover the current period so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<super::calendar::Calendar>,
    pub indicator: Indicator,
    pub objectives: Vec<Objective>,
    /// The alert conditions (the SRE workbook's multi-window set, scaled to the window, when
    /// the SLO names no alert policy).
    pub alerts: Vec<BurnCondition>,
}

/// A document that is not a valid SLO.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("document {document}{}: {field}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
pub struct Invalid {
    /// 1-based document number in the stream.
    pub document: usize,
    pub line: Option<u64>,
    pub field: String,
    pub message: String,
}

impl crate::errors::Classified for Invalid {
    fn kind(&self) -> crate::errors::ErrorKind {
        crate::errors::ErrorKind::Unprocessable
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    api_version: Spanned<String>,
    kind: Spanned<String>,
    metadata: Metadata,
    #[serde(default)]
    spec: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    name: Spanned<String>,
    #[serde(default)]
    display_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SloSpec {
    #[serde(default)]
    description: Option<String>,
    service: String,
    #[serde(default)]
    indicator: Option<serde_json::Value>,
    #[serde(default)]
    indicator_ref: Option<String>,
    #[serde(default)]
    budgeting_method: Option<String>,
    time_window: Vec<TimeWindow>,
    objectives: Vec<ObjectiveSpec>,
    #[serde(default)]
    alert_policies: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TimeWindow {
    duration: String,
    #[serde(default)]
    is_rolling: bool,
    #[serde(default)]
    calendar: Option<CalendarSpec>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CalendarSpec {
    start_time: String,
    time_zone: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectiveSpec {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    op: Option<Op>,
    #[serde(default)]
    value: Option<f64>,
    #[serde(default)]
    target: Option<f64>,
    #[serde(default)]
    target_percent: Option<f64>,
}

/// The kinds a stream may hold (`Service` and `DataSource` documents are accepted and
/// ignored: the catalog is the registry's, the data is ours).
const KINDS: [&str; 6] = [
    "SLO",
    "SLI",
    "AlertPolicy",
    "AlertCondition",
    "Service",
    "DataSource",
];

/// Parses an OpenSLO v1 stream (YAML, several documents) into its SLOs.
pub fn parse(text: &str) -> Result<Vec<Slo>, Invalid> {
    let docs: Vec<Doc> = crate::yaml::from_multiple(text).map_err(|e: YamlError| Invalid {
        document: 0,
        line: e.line,
        field: "(document)".into(),
        message: e.message,
    })?;
    let mut slis: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut conditions: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut policies: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for (i, d) in docs.iter().enumerate() {
        let at = |field: &str, line: u64, message: String| Invalid {
            document: i + 1,
            line: Some(line),
            field: field.into(),
            message,
        };
        if d.api_version.value != "openslo/v1" {
            return Err(at(
                "apiVersion",
                d.api_version.referenced.line(),
                format!("{:?}: expected openslo/v1", d.api_version.value),
            ));
        }
        if !KINDS.contains(&d.kind.value.as_str()) {
            return Err(at(
                "kind",
                d.kind.referenced.line(),
                format!("{:?}: expected one of {}", d.kind.value, KINDS.join(", ")),
            ));
        }
        let name = d.metadata.name.value.clone();
        let table = match d.kind.value.as_str() {
            "SLI" => &mut slis,
            "AlertCondition" => &mut conditions,
            "AlertPolicy" => &mut policies,
            _ => continue,
        };
        table.insert(name, d.spec.clone());
    }
    let trees = super::spans::parse(text);
    let mut out = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        if d.kind.value == "SLO" {
            let line = |field: &str| match trees.get(i) {
                Some(t) => Some(super::spans::line_of(t, field)),
                None => Some(d.kind.referenced.line()),
            };
            out.push(slo(i + 1, d, &line, &slis, &policies, &conditions)?);
        }
    }
    let mut names: Vec<&str> = out.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(Invalid {
            document: 0,
            line: None,
            field: "metadata.name".into(),
            message: format!("SLO {:?} is defined twice", w[0]),
        });
    }
    Ok(out)
}

fn slo(
    document: usize,
    d: &Doc,
    line_of: &dyn Fn(&str) -> Option<u64>,
    slis: &BTreeMap<String, serde_json::Value>,
    policies: &BTreeMap<String, serde_json::Value>,
    conditions: &BTreeMap<String, serde_json::Value>,
) -> Result<Slo, Invalid> {
    let bad = |field: &str, message: String| Invalid {
        document,
        line: line_of(field),
        field: field.into(),
        message,
    };
    let name = d.metadata.name.value.clone();
    if crate::catalog::ServiceName::parse(&name).is_err() {
        return Err(Invalid {
            document,
            line: Some(d.metadata.name.referenced.line()),
            field: "metadata.name".into(),
            message: format!("{name:?}: lowercase letters, digits and '-', 1 to 63 characters"),
        });
    }
    let spec: SloSpec =
        serde_json::from_value(d.spec.clone()).map_err(|e| bad("spec", e.to_string()))?;
    let _ = spec.description;
    if let Err(m) = crate::catalog::ServiceName::parse(&spec.service) {
        return Err(bad("spec.service", m));
    }
    if let Some(m) = spec.budgeting_method.as_deref() {
        if m != "Occurrences" {
            return Err(bad(
                "spec.budgetingMethod",
                format!("{m:?}: only Occurrences is supported (every request counts)"),
            ));
        }
    }
    let [window] = spec.time_window.as_slice() else {
        return Err(bad("spec.timeWindow", "exactly one time window".into()));
    };
    let (window_seconds, calendar) = if window.is_rolling {
        if window.calendar.is_some() {
            return Err(bad(
                "spec.timeWindow[0].calendar",
                "a rolling window has no calendar (isRolling: false for a calendar window)".into(),
            ));
        }
        let seconds = duration_seconds(&window.duration)
            .map_err(|m| bad("spec.timeWindow[0].duration", m))?;
        (seconds, None)
    } else {
        let Some(c) = &window.calendar else {
            return Err(bad(
                "spec.timeWindow[0].calendar",
                "a calendar window (isRolling: false) needs calendar: {startTime, timeZone}".into(),
            ));
        };
        let (cal, seconds) =
            super::calendar::Calendar::parse(&window.duration, &c.start_time, &c.time_zone)
                .map_err(|(f, m)| {
                    let field = if f == "duration" {
                        "spec.timeWindow[0].duration".to_owned()
                    } else {
                        "spec.timeWindow[0].calendar".to_owned()
                    };
                    bad(&field, m)
                })?;
        (seconds, Some(cal))
    };
    let sli = match (&spec.indicator, &spec.indicator_ref) {
        (Some(inline), None) => inline.get("spec").cloned().unwrap_or_default(),
        (None, Some(r)) => slis.get(r).cloned().ok_or_else(|| {
            bad(
                "spec.indicatorRef",
                format!("no SLI named {r:?} in this stream"),
            )
        })?,
        _ => {
            return Err(bad(
                "spec.indicator",
                "give exactly one of indicator and indicatorRef".into(),
            ))
        }
    };
    let latency =
        indicator_kind(&sli).map_err(|(f, m)| bad(&format!("spec.indicator.spec.{f}"), m))?;
    if spec.objectives.is_empty() {
        return Err(bad("spec.objectives", "at least one objective".into()));
    }
    let mut objectives = Vec::new();
    for (k, o) in spec.objectives.iter().enumerate() {
        let field = |f: &str| format!("spec.objectives[{k}].{f}");
        let target = match (o.target, o.target_percent) {
            (Some(t), None) => t,
            (None, Some(p)) => p / 100.0,
            _ => {
                return Err(bad(
                    &field("target"),
                    "give exactly one of target and targetPercent".into(),
                ))
            }
        };
        if !(target > 0.0 && target <= 1.0) {
            return Err(bad(
                &field("target"),
                format!("{target}: must be in (0, 1] (targetPercent in (0, 100])"),
            ));
        }
        let (op, threshold) =
            match (latency, o.op, o.value) {
                (true, Some(op), Some(v)) if v.is_finite() && v >= 0.0 => (Some(op), Some(v)),
                (true, _, _) => return Err(bad(
                    &field("value"),
                    "a latency objective needs op (lt, lte, gt, gte) and value (milliseconds, ≥ 0)"
                        .into(),
                )),
                (false, None, None) => (None, None),
                (false, _, _) => {
                    return Err(bad(
                        &field("op"),
                        "a ratio objective has no op or value".into(),
                    ))
                }
            };
        objectives.push(Objective {
            name: o
                .display_name
                .clone()
                .unwrap_or_else(|| format!("objective-{k}")),
            target,
            threshold_ms: threshold,
            op,
        });
    }
    let indicator = match (latency, &objectives[0]) {
        (
            true,
            Objective {
                op: Some(op),
                threshold_ms: Some(t),
                ..
            },
        ) => Indicator::Latency {
            op: *op,
            threshold_ms: *t,
        },
        _ => Indicator::Ratio,
    };
    let alerts = alerts(&spec.alert_policies, policies, conditions, window_seconds)
        .map_err(|(f, m)| bad(&format!("spec.alertPolicies{f}"), m))?;
    Ok(Slo {
        name,
        display_name: d.metadata.display_name.clone(),
        service: spec.service,
        window: window.duration.clone(),
        window_seconds,
        calendar,
        indicator,
        objectives,
        alerts,
    })
}

/// Whether an SLI spec is a latency threshold (true) or a request ratio (false).
fn indicator_kind(sli: &serde_json::Value) -> Result<bool, (String, String)> {
    let source = |v: &serde_json::Value, at: &str| -> Result<String, (String, String)> {
        let ty = v["metricSource"]["type"].as_str().unwrap_or_default();
        if ty != "golden-goose" {
            return Err((
                format!("{at}.metricSource.type"),
                format!(
                    "{ty:?}: expected golden-goose (measurements submitted to the sla service)"
                ),
            ));
        }
        Ok(v["metricSource"]["spec"]["signal"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    };
    if let Some(t) = sli.get("thresholdMetric") {
        let signal = source(t, "thresholdMetric")?;
        if signal != "latency" {
            return Err((
                "thresholdMetric.metricSource.spec.signal".into(),
                format!("{signal:?}: a threshold SLI measures latency"),
            ));
        }
        return Ok(true);
    }
    if let Some(r) = sli.get("ratioMetric") {
        for part in ["good", "bad", "total"] {
            if let Some(p) = r.get(part) {
                let signal = source(p, &format!("ratioMetric.{part}"))?;
                if signal != "requests" {
                    return Err((
                        format!("ratioMetric.{part}.metricSource.spec.signal"),
                        format!("{signal:?}: a ratio SLI counts requests"),
                    ));
                }
            }
        }
        if r.get("total").is_none() || (r.get("good").is_none() == r.get("bad").is_none()) {
            return Err((
                "ratioMetric".into(),
                "needs total and exactly one of good and bad".into(),
            ));
        }
        return Ok(false);
    }
    Err((
        "(SLI)".into(),
        "needs ratioMetric or thresholdMetric".into(),
    ))
}

/// The SRE workbook's multi-window, multi-burn-rate alerts for a 30-day window, scaled to
/// `window_seconds`: 14.4x over 1 h and 5 m, 6x over 6 h and 30 m, 1x over 3 d and 6 h.
pub fn workbook_alerts(window_seconds: u64) -> Vec<BurnCondition> {
    const THIRTY_DAYS: f64 = 30.0 * 86_400.0;
    let scale = window_seconds as f64 / THIRTY_DAYS;
    let s = |secs: u64| ((secs as f64 * scale).round() as u64).max(60);
    [
        ("page-fast", 14.4, 3_600, 300),
        ("page-slow", 6.0, 21_600, 1_800),
        ("ticket", 1.0, 259_200, 21_600),
    ]
    .into_iter()
    .map(|(name, factor, long, short)| BurnCondition {
        name: name.into(),
        factor,
        long_seconds: s(long),
        short_seconds: s(short),
    })
    .collect()
}

fn alerts(
    refs: &[serde_json::Value],
    policies: &BTreeMap<String, serde_json::Value>,
    conditions: &BTreeMap<String, serde_json::Value>,
    window_seconds: u64,
) -> Result<Vec<BurnCondition>, (String, String)> {
    if refs.is_empty() {
        return Ok(workbook_alerts(window_seconds));
    }
    let mut out = Vec::new();
    for (i, r) in refs.iter().enumerate() {
        let at = |f: &str| format!("[{i}]{f}");
        let policy = match r {
            serde_json::Value::String(name) => policies
                .get(name)
                .cloned()
                .ok_or_else(|| (at(""), format!("no AlertPolicy named {name:?}")))?,
            v => v.get("spec").cloned().unwrap_or_default(),
        };
        let Some(conds) = policy["conditions"].as_array() else {
            return Err((
                at(".spec.conditions"),
                "an AlertPolicy needs conditions".into(),
            ));
        };
        for (k, c) in conds.iter().enumerate() {
            let (name, spec) = match c.get("conditionRef").and_then(|v| v.as_str()) {
                Some(name) => (
                    name.to_owned(),
                    conditions.get(name).cloned().ok_or_else(|| {
                        (
                            at(&format!(".conditions[{k}]")),
                            format!("no AlertCondition named {name:?}"),
                        )
                    })?,
                ),
                None => (
                    c["metadata"]["name"]
                        .as_str()
                        .unwrap_or("condition")
                        .to_owned(),
                    c.get("spec").cloned().unwrap_or_default(),
                ),
            };
            let cond = &spec["condition"];
            let field = at(&format!(".conditions[{k}].condition"));
            if cond["kind"].as_str() != Some("burnrate") {
                return Err((
                    format!("{field}.kind"),
                    "only burnrate conditions are supported".into(),
                ));
            }
            let factor = cond["threshold"]
                .as_f64()
                .filter(|f| *f > 0.0)
                .ok_or_else(|| (format!("{field}.threshold"), "a burn rate > 0".into()))?;
            let long = cond["lookbackWindow"]
                .as_str()
                .ok_or_else(|| (format!("{field}.lookbackWindow"), "missing".into()))
                .and_then(|d| {
                    duration_seconds(d).map_err(|m| (format!("{field}.lookbackWindow"), m))
                })?;
            // OpenSLO has one window per condition; the short window that keeps the alert from
            // firing long after recovery is a twelfth of it, as in the SRE workbook.
            out.push(BurnCondition {
                name,
                factor,
                long_seconds: long,
                short_seconds: (long / 12).max(60),
            });
        }
    }
    Ok(out)
}

/// OpenSLO's duration shorthand for rolling windows: a number and m, h, d or w.
pub fn duration_seconds(text: &str) -> Result<u64, String> {
    let unit = text.chars().last().unwrap_or(' ');
    let n: u64 = text[..text.len() - unit.len_utf8().min(text.len())]
        .parse()
        .map_err(|_| format!("{text:?}: expected a number and a unit (m, h, d, w), e.g. 30d"))?;
    let per = match unit {
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        'w' => 604_800,
        _ => {
            return Err(format!(
                "{text:?}: the unit must be m, h, d or w for a rolling window"
            ))
        }
    };
    if n == 0 || n.checked_mul(per).is_none_or(|s| s > 400 * 86_400) {
        return Err(format!("{text:?}: between one minute and 400 days"));
    }
    Ok(n * per)
}
