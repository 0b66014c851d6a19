//! Prometheus recording and alerting rules for SLOs (in the manner of Sloth): the same
//! objectives and burn-rate conditions the sla service evaluates, for teams that alert from
//! their own Prometheus on the series they already scrape.
//!
//! Per SLO objective, one recording rule per window the alerts need (and the SLO's whole
//! window): `goose_slo:sli_error:ratio_rate<window>`, the error ratio over that window —
//! 5xx over all requests for availability, requests slower than the threshold (from the
//! histogram bucket whose `le` is the threshold) over all requests for latency. Then
//! `goose_slo:objective:ratio` (the target), `goose_slo:error_budget:remaining` and one alert
//! per burn-rate condition firing when both its windows burn faster than `factor`.

use super::openslo::{Indicator, Op, Slo};
use super::prom::Mapping;
use serde::Serialize;
use std::collections::BTreeMap;

/// A rules file (`groups:`), as Prometheus loads it.
#[derive(Debug, Serialize)]
pub struct RuleFile {
    pub groups: Vec<Group>,
}

#[derive(Debug, Serialize)]
pub struct Group {
    pub name: String,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Serialize)]
pub struct Rule {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    pub expr: String,
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A PromQL duration for whole seconds: the largest unit that divides it.
pub fn duration(seconds: u64) -> String {
    for (unit, s) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if seconds >= s && seconds.is_multiple_of(s) {
            return format!("{}{unit}", seconds / s);
        }
    }
    format!("{seconds}s")
}

/// A label matcher for `le` equal to `ms` milliseconds however the client library writes the
/// bound (`0.25`, `0.250`, `1`, `1.0`, `+Inf`).
fn le_matcher(ms: f64) -> String {
    let secs = ms / 1000.0;
    let text = format!("{secs}");
    if text.contains('.') {
        format!("le=~\"{}0*\"", text.replace('.', "\\\\."))
    } else {
        format!("le=~\"{text}(\\\\.0*)?\"")
    }
}

/// A ratio as PromQL text, without binary floating-point noise (0.001, not
/// 0.0010000000000000009).
fn number(x: f64) -> String {
    let r = (x * 1e12).round() / 1e12;
    format!("{r}")
}

/// Escapes a label value for a PromQL string.
fn quoted(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The error ratio of one objective over `window` (a PromQL duration).
fn error_ratio(slo: &Slo, objective: usize, m: &Mapping, window: &str) -> String {
    let label = m.service_labels.first().map_or("service", String::as_str);
    let svc = format!("{label}={}", quoted(&slo.service));
    let code = m.status_labels.first().map_or("code", String::as_str);
    match &slo.indicator {
        Indicator::Ratio => format!(
            "(sum(rate({req}{{{svc},{code}=~\"5..\"}}[{window}])) or vector(0)) / sum(rate({req}{{{svc}}}[{window}]))",
            req = m.requests_metric
        ),
        Indicator::Latency { op, threshold_ms } => {
            let o = &slo.objectives[objective];
            let op = o.op.unwrap_or(*op);
            let t = o.threshold_ms.unwrap_or(*threshold_ms);
            let within = format!(
                "sum(rate({}_bucket{{{svc},{}}}[{window}]))",
                m.latency_metric,
                le_matcher(t)
            );
            let all = format!("sum(rate({}_count{{{svc}}}[{window}]))", m.latency_metric);
            match op {
                // Good: at or under the bound (a `lt` bound is read as `le`, as buckets are).
                Op::Lte | Op::Lt => format!("1 - ({within} / {all})"),
                Op::Gt | Op::Gte => format!("{within} / {all}"),
            }
        }
    }
}

/// The rules for `slos`, one group per SLO; `runbook` is the runbook URL the alerts carry.
pub fn rules(slos: &[Slo], m: &Mapping, runbook: &str) -> RuleFile {
    let mut groups = Vec::new();
    for slo in slos {
        let mut rules = Vec::new();
        for (k, o) in slo.objectives.iter().enumerate() {
            let mut labels = BTreeMap::new();
            labels.insert("goose_slo".to_owned(), slo.name.clone());
            labels.insert("goose_objective".to_owned(), o.name.clone());
            labels.insert("service".to_owned(), slo.service.clone());
            let selector = format!(
                "goose_slo={},goose_objective={}",
                quoted(&slo.name),
                quoted(&o.name)
            );
            let mut windows: Vec<u64> = slo
                .alerts
                .iter()
                .flat_map(|a| [a.short_seconds, a.long_seconds])
                .chain([slo.window_seconds])
                .collect();
            windows.sort_unstable();
            windows.dedup();
            for w in &windows {
                let d = duration(*w);
                rules.push(Rule {
                    record: Some(format!("goose_slo:sli_error:ratio_rate{d}")),
                    alert: None,
                    expr: error_ratio(slo, k, m, &d),
                    for_: None,
                    labels: labels.clone(),
                    annotations: BTreeMap::new(),
                });
            }
            rules.push(Rule {
                record: Some("goose_slo:objective:ratio".into()),
                alert: None,
                expr: format!("vector({})", number(o.target)),
                for_: None,
                labels: labels.clone(),
                annotations: BTreeMap::new(),
            });
            let allowed = number(1.0 - o.target);
            rules.push(Rule {
                record: Some("goose_slo:error_budget:remaining".into()),
                alert: None,
                expr: format!(
                    "1 - (goose_slo:sli_error:ratio_rate{}{{{selector}}} / {allowed})",
                    duration(slo.window_seconds)
                ),
                for_: None,
                labels: labels.clone(),
                annotations: BTreeMap::new(),
            });
            for a in &slo.alerts {
                let threshold = number(a.factor * (1.0 - o.target));
                let mut l = labels.clone();
                l.insert("severity".into(), severity(a.factor).into());
                let mut ann = BTreeMap::new();
                ann.insert(
                    "summary".into(),
                    format!(
                        "{}: {} burns its error budget {}x faster than sustainable",
                        slo.name, o.name, a.factor
                    ),
                );
                ann.insert(
                    "description".into(),
                    format!(
                        "Error ratio above {threshold} over {} and over {} (target {}, window {}).",
                        duration(a.long_seconds),
                        duration(a.short_seconds),
                        o.target,
                        slo.window
                    ),
                );
                ann.insert("runbook_url".into(), runbook.to_owned());
                rules.push(Rule {
                    record: None,
                    alert: Some(a.name.clone()),
                    expr: format!(
                        "(goose_slo:sli_error:ratio_rate{long}{{{selector}}} > {threshold}) and (goose_slo:sli_error:ratio_rate{short}{{{selector}}} > {threshold})",
                        long = duration(a.long_seconds),
                        short = duration(a.short_seconds),
                    ),
                    for_: None,
                    labels: l,
                    annotations: ann,
                });
            }
        }
        groups.push(Group {
            name: format!("goose-slo-{}", slo.name),
            rules,
        });
    }
    RuleFile { groups }
}

/// The severity of a burn-rate alert of `factor` (the SRE workbook's split): fast burns
/// (6x and more) page, slow ones open a ticket.
pub fn severity(factor: f64) -> &'static str {
    if factor >= 6.0 {
        "page"
    } else {
        "ticket"
    }
}
