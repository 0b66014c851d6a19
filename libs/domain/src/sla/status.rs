//! An SLO's status at a moment, from the recorded minute summaries: per objective the
//! attainment over the SLO's window, the error budget left, and each burn-rate alert
//! (multi-window, multi-burn-rate, as in the Google SRE workbook: it fires when the budget
//! burns `factor` times faster than sustainable over both its long and its short window);
//! and the latency percentiles over the window.

use super::measure::{BadMeasurement, MinuteSummary, Window};
use super::openslo::{Indicator, Slo};
use serde::{Deserialize, Serialize};

/// One burn-rate alert's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertState {
    pub name: String,
    pub factor: f64,
    pub long_seconds: u64,
    pub short_seconds: u64,
    /// Burn rates over the long and short windows (None: no requests in it).
    pub long_burn_rate: Option<f64>,
    pub short_burn_rate: Option<f64>,
    pub firing: bool,
}

/// One objective's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ObjectiveStatus {
    pub name: String,
    pub target: f64,
    /// Good / total over the window (None: no requests).
    pub attainment: Option<f64>,
    /// The share of the window's error budget left: 1 untouched, 0 spent, below 0 overspent.
    pub budget_remaining: Option<f64>,
    pub good: u64,
    pub total: u64,
    pub alerts: Vec<AlertState>,
    /// Met (attainment ≥ target) over the window; None without requests.
    pub met: Option<bool>,
}

/// An SLO's state at `at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SloStatus {
    pub slo: String,
    pub service: String,
    /// Unix time (seconds) the status is for; the window is `[window_start, at)`.
    pub at: i64,
    /// `at - window_seconds` for a rolling window; the current period's start for a
    /// calendar window.
    #[serde(default)]
    pub window_start: i64,
    pub window_seconds: u64,
    pub requests: u64,
    pub errors: u64,
    /// Latency percentiles over the window, milliseconds (HdrHistogram, 0.1 % precision).
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Some latencies of the window come from Prometheus histogram buckets: percentiles and
    /// latency objectives are then approximate (bucket upper bounds, never below the truth).
    #[serde(default)]
    pub approximate_latency: bool,
    pub objectives: Vec<ObjectiveStatus>,
    /// Summaries that could not be read (counted, left out).
    pub undecodable_summaries: usize,
}

/// Good and total requests of `window` for an objective of `slo`.
pub(crate) fn good_total(slo: &Slo, objective: usize, w: &Window) -> (u64, u64) {
    match (&slo.indicator, &slo.objectives[objective]) {
        (Indicator::Ratio, _) => (w.count - w.errors.min(w.count), w.count),
        (Indicator::Latency { op, threshold_ms }, o) => {
            let op = o.op.unwrap_or(*op);
            let t = o.threshold_ms.unwrap_or(*threshold_ms);
            (w.satisfying(op, t).min(w.count), w.count)
        }
    }
}

/// The burn rate of a window: its error ratio over the ratio the target allows.
pub fn burn_rate(good: u64, total: u64, target: f64) -> Option<f64> {
    if total == 0 {
        return None;
    }
    let bad = (total - good.min(total)) as f64 / total as f64;
    let allowed = 1.0 - target;
    Some(if allowed <= 0.0 {
        if bad > 0.0 {
            f64::INFINITY
        } else {
            0.0
        }
    } else {
        bad / allowed
    })
}

/// Unix time the window of `slo` at `at` starts: `at - window` for a rolling window, the
/// start of the current period for a calendar window.
pub fn window_start(slo: &Slo, at: i64) -> Result<i64, BadMeasurement> {
    match &slo.calendar {
        None => Ok(at - slo.window_seconds as i64),
        Some(c) => c.period_start(at).map_err(|e| BadMeasurement(e.0)),
    }
}

/// The status of `slo` at unix time `at` from the service's summaries.
pub fn status(
    slo: &Slo,
    summaries: &[MinuteSummary],
    at: i64,
) -> Result<SloStatus, BadMeasurement> {
    let start = window_start(slo, at)?;
    let (whole, undecodable) = Window::of(summaries, start, at)?;
    // Ratio objectives need counts only; latency ones the histograms.
    let latency = matches!(slo.indicator, Indicator::Latency { .. });
    let span = |seconds: u64| -> Result<Window, BadMeasurement> {
        let from = at - seconds as i64;
        if latency {
            Ok(Window::of(summaries, from, at)?.0)
        } else {
            Window::counts(summaries, from, at)
        }
    };
    let mut objectives = Vec::new();
    for (k, o) in slo.objectives.iter().enumerate() {
        let (good, total) = good_total(slo, k, &whole);
        let attainment = (total > 0).then(|| good as f64 / total as f64);
        let budget_remaining = burn_rate(good, total, o.target).map(|b| 1.0 - b);
        let mut alerts = Vec::new();
        for a in &slo.alerts {
            let long = span(a.long_seconds)?;
            let short = span(a.short_seconds)?;
            let (lg, lt) = good_total(slo, k, &long);
            let (sg, st) = good_total(slo, k, &short);
            let long_burn_rate = burn_rate(lg, lt, o.target);
            let short_burn_rate = burn_rate(sg, st, o.target);
            let firing = matches!((long_burn_rate, short_burn_rate), (Some(l), Some(s)) if l > a.factor && s > a.factor);
            alerts.push(AlertState {
                name: a.name.clone(),
                factor: a.factor,
                long_seconds: a.long_seconds,
                short_seconds: a.short_seconds,
                long_burn_rate,
                short_burn_rate,
                firing,
            });
        }
        objectives.push(ObjectiveStatus {
            name: o.name.clone(),
            target: o.target,
            met: attainment.map(|a| a >= o.target),
            attainment,
            budget_remaining,
            good,
            total,
            alerts,
        });
    }
    Ok(SloStatus {
        slo: slo.name.clone(),
        service: slo.service.clone(),
        at,
        window_start: start,
        window_seconds: slo.window_seconds,
        requests: whole.count,
        errors: whole.errors,
        p50_ms: whole.percentile_ms(0.50),
        p95_ms: whole.percentile_ms(0.95),
        p99_ms: whole.percentile_ms(0.99),
        approximate_latency: whole.approximate,
        objectives,
        undecodable_summaries: undecodable,
    })
}
