//! Prometheus series (as remote write sends them) into minute summaries.
//!
//! Prometheus sends cumulative values: a request counter (`http_requests_total`, one series
//! per status code) and a latency histogram (`http_request_duration_seconds_bucket`, one
//! series per `le` bound). What happened in a minute is the increase between consecutive
//! samples of a series, attributed to the minute of the later sample; a value lower than
//! the one before is a counter reset (the increase is the new value, as `rate()` treats it).
//! The first sample of a series seen by this process has no predecessor and only sets the
//! baseline: after a restart of goose-sla, one scrape interval per series is not counted.
//!
//! Latencies from buckets are APPROXIMATE: the requests of a bucket `(lower, le]` are recorded
//! at `le`, its upper bound (the `+Inf` bucket at the highest finite bound). A percentile is
//! then the upper bound of the bucket holding it — never below the true value, so a latency
//! objective judged from buckets errs on the side of failing. Summaries made this way say so
//! (`approximate`), and so does every status computed from them. Exact percentiles need raw
//! samples (REST batches or NATS telemetry).

use super::measure::{encode, new_histogram, BadMeasurement, MinuteSummary, MAX_LATENCY_US};
use hdrhistogram::Histogram;
use std::collections::{BTreeMap, HashMap};

/// One series of a remote-write request.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Labels including `__name__`.
    pub labels: Vec<(String, String)>,
    /// (unix milliseconds, value), in time order.
    pub samples: Vec<(i64, f64)>,
}

impl Series {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Which series mean what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The request counter (one series per status code).
    pub requests_metric: String,
    /// The latency histogram's base name, in seconds (`<name>_bucket` is read).
    pub latency_metric: String,
    /// Labels naming the service, first present wins.
    pub service_labels: Vec<String>,
    /// Labels holding the HTTP status code, first present wins (5xx counts as an error).
    pub status_labels: Vec<String>,
    /// Labels naming the version that served the requests, first present wins: its
    /// summaries say it (what `performance_baseline_met` reads for a staged version).
    pub version_labels: Vec<String>,
}

impl Default for Mapping {
    fn default() -> Self {
        Self {
            requests_metric: "http_requests_total".into(),
            latency_metric: "http_request_duration_seconds".into(),
            service_labels: vec!["service".into(), "job".into()],
            status_labels: vec!["code".into(), "status".into()],
            version_labels: vec!["version".into()],
        }
    }
}

/// A series' identity: its sorted labels.
type Key = Vec<(String, String)>;

/// The last sample of each series seen: what the next increase is measured from.
#[derive(Debug, Default, Clone)]
pub struct CounterMemory {
    last: HashMap<Key, (i64, f64)>,
}

/// What one request converts to; [`CounterMemory::commit`] it once the summaries are recorded.
#[derive(Debug, Default)]
pub struct Conversion {
    /// Per service, its minute summaries (all `approximate`).
    pub summaries: BTreeMap<String, Vec<MinuteSummary>>,
    /// Series neither the request counter nor the latency buckets (not an error: Prometheus
    /// sends everything it scrapes unless `write_relabel_configs` filters it).
    pub ignored_series: usize,
    /// Series of ours without a service label, or with a bad `le` or status.
    pub unusable_series: usize,
    /// Samples older than or as old as the last one seen (a retry), skipped.
    pub stale_samples: usize,
    updates: Vec<(Key, (i64, f64))>,
}

#[derive(Default)]
struct Minute {
    count: u64,
    errors: u64,
    /// Per latency series group (labels without `le`): bound → increase.
    buckets: BTreeMap<Key, Vec<(f64, f64)>>,
    has_counter: bool,
}

impl CounterMemory {
    pub fn series(&self) -> usize {
        self.last.len()
    }

    /// Converts a request's series without changing the memory.
    pub fn convert(
        &self,
        series: &[Series],
        mapping: &Mapping,
    ) -> Result<Conversion, BadMeasurement> {
        let bucket_name = format!("{}_bucket", mapping.latency_metric);
        let mut out = Conversion::default();
        let mut minutes: BTreeMap<(String, Option<String>, i64), Minute> = BTreeMap::new();
        for s in series {
            let name = s.label("__name__").unwrap_or_default();
            let is_counter = name == mapping.requests_metric;
            let is_bucket = name == bucket_name;
            if !is_counter && !is_bucket {
                out.ignored_series += 1;
                continue;
            }
            let Some(service) = mapping.service_labels.iter().find_map(|l| s.label(l)) else {
                out.unusable_series += 1;
                continue;
            };
            let version = mapping
                .version_labels
                .iter()
                .find_map(|l| s.label(l))
                .map(str::to_owned);
            let failed = if is_counter {
                match mapping.status_labels.iter().find_map(|l| s.label(l)) {
                    None => false,
                    Some(code) => match code.parse::<u16>() {
                        Ok(c) => c >= 500,
                        Err(_) => {
                            out.unusable_series += 1;
                            continue;
                        }
                    },
                }
            } else {
                false
            };
            let le = if is_bucket {
                match s.label("le").map(str::parse::<f64>) {
                    Some(Ok(le)) if !le.is_nan() && le >= 0.0 => Some(le),
                    _ => {
                        out.unusable_series += 1;
                        continue;
                    }
                }
            } else {
                None
            };
            let mut key: Key = s.labels.clone();
            key.sort();
            let mut prev = self.last.get(&key).copied();
            for &(t, v) in &s.samples {
                if !v.is_finite() || v < 0.0 {
                    out.stale_samples += 1;
                    continue;
                }
                if let Some((pt, _)) = prev {
                    if t <= pt {
                        out.stale_samples += 1;
                        continue;
                    }
                }
                let increase = match prev {
                    None => None,
                    Some((_, pv)) if v >= pv => Some(v - pv),
                    Some(_) => Some(v),
                };
                prev = Some((t, v));
                let Some(inc) = increase else { continue };
                let secs = t.div_euclid(1000);
                let minute = secs - secs.rem_euclid(60);
                let m = minutes
                    .entry((service.to_owned(), version.clone(), minute))
                    .or_default();
                if let Some(le) = le {
                    let group: Key = key.iter().filter(|(n, _)| n != "le").cloned().collect();
                    m.buckets.entry(group).or_default().push((le, inc));
                } else {
                    let n = inc.round() as u64;
                    m.has_counter = true;
                    m.count += n;
                    if failed {
                        m.errors += n;
                    }
                }
            }
            if let Some(p) = prev {
                out.updates.push((key, p));
            }
        }
        for ((service, version, minute), m) in minutes {
            let mut h = new_histogram()?;
            for mut bounds in m.buckets.into_values() {
                record_buckets(&mut h, &mut bounds)?;
            }
            let count = if m.has_counter { m.count } else { h.len() };
            if count == 0 && h.is_empty() {
                continue;
            }
            out.summaries
                .entry(service.clone())
                .or_default()
                .push(MinuteSummary {
                    service,
                    minute,
                    count,
                    errors: m.errors.min(count),
                    latency_histogram: encode(&h)?,
                    approximate: true,
                    version,
                });
        }
        Ok(out)
    }

    /// Remembers the last samples of a conversion whose summaries were recorded.
    pub fn commit(&mut self, c: Conversion) {
        for (k, v) in c.updates {
            match self.last.get(&k) {
                Some((t, _)) if *t >= v.0 => {}
                _ => {
                    self.last.insert(k, v);
                }
            }
        }
    }
}

/// Adds one histogram's bucket increases (cumulative per `le`, summed over the samples of
/// the minute) to `h`, each bucket's requests at its upper bound.
fn record_buckets(h: &mut Histogram<u64>, bounds: &mut [(f64, f64)]) -> Result<(), BadMeasurement> {
    // The same bound may come from several samples of the minute: add them up first.
    bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut merged: Vec<(f64, f64)> = Vec::new();
    for &(le, inc) in bounds.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == le => last.1 += inc,
            _ => merged.push((le, inc)),
        }
    }
    let highest_finite = merged
        .iter()
        .rev()
        .find(|(le, _)| le.is_finite())
        .map_or(MAX_LATENCY_US as f64 / 1e6, |(le, _)| *le);
    let mut below = 0.0_f64;
    for (le, cumulative) in merged {
        // Cumulative buckets: this bucket's own requests are the increase over the bound below
        // (never negative: buckets of one scrape may land in different minutes).
        let own = (cumulative - below).max(0.0);
        below = below.max(cumulative);
        let n = own.round() as u64;
        if n == 0 {
            continue;
        }
        let at = if le.is_finite() { le } else { highest_finite };
        let us = ((at * 1e6).round() as u64).clamp(1, MAX_LATENCY_US);
        h.record_n(us, n)
            .map_err(|e| BadMeasurement(format!("histogram: {e:?}")))?;
    }
    Ok(())
}
