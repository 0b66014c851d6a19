//! Raw samples become per-service, per-minute summaries: the number of requests, how many
//! failed, and their latencies as an HdrHistogram (1 µs to 1 h, 3 significant digits) in its
//! standard V2 serialization, base64 — what the chain records, so that every figure of a
//! report is re-derivable from it. Summaries of one minute add up (several batches may
//! cover a minute); percentiles over any window come from the merged histograms, within the
//! histogram's 0.1 % precision.

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Highest latency a histogram records, in microseconds (one hour); slower requests count
/// as one hour.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// One request as measured by the caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    /// When the request happened (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub at: time::OffsetDateTime,
    /// Its latency in milliseconds.
    pub latency_ms: f64,
    /// Its HTTP status; 5xx counts as an error (`ok` overrides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Whether it succeeded, when there is no HTTP status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
}

impl Sample {
    pub fn failed(&self) -> bool {
        match (self.ok, self.status) {
            (Some(ok), _) => !ok,
            (None, Some(s)) => s >= 500,
            (None, None) => false,
        }
    }
}

/// A minute of one service's requests, as recorded on the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MinuteSummary {
    pub service: String,
    /// Unix time (seconds) of the minute's start.
    pub minute: i64,
    pub count: u64,
    pub errors: u64,
    /// Latencies in microseconds: HdrHistogram V2 serialization, base64.
    pub latency_histogram: String,
    /// Latencies derived from Prometheus histogram buckets (each request at its bucket's
    /// upper bound, see [`super::prom`]), not measured one by one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approximate: bool,
    /// The version of the service that served these requests, when the sender said (what
    /// `performance_baseline_met` reads for a version about to be promoted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// A sample or summary that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadMeasurement(pub String);

impl crate::errors::Classified for BadMeasurement {
    fn kind(&self) -> crate::errors::ErrorKind {
        crate::errors::ErrorKind::Unprocessable
    }
}

/// An empty latency histogram, 3 significant digits, growing to the largest value recorded
/// (at most [`MAX_LATENCY_US`]): a minute of fast requests serialises — and decodes — small.
pub fn new_histogram() -> Result<Histogram<u64>, BadMeasurement> {
    Histogram::new(3).map_err(|e| BadMeasurement(format!("histogram: {e:?}")))
}

/// Summarises samples of one service by minute.
pub fn summarize(service: &str, samples: &[Sample]) -> Result<Vec<MinuteSummary>, BadMeasurement> {
    let mut minutes: BTreeMap<i64, (u64, u64, Histogram<u64>)> = BTreeMap::new();
    for (i, s) in samples.iter().enumerate() {
        if !s.latency_ms.is_finite() || s.latency_ms < 0.0 {
            return Err(BadMeasurement(format!(
                "samples[{i}].latency_ms: {} is not a duration in milliseconds",
                s.latency_ms
            )));
        }
        if let Some(st) = s.status {
            if !(100..=599).contains(&st) {
                return Err(BadMeasurement(format!(
                    "samples[{i}].status: {st} is not an HTTP status"
                )));
            }
        }
        let t = s.at.unix_timestamp();
        let minute = t - t.rem_euclid(60);
        let entry = match minutes.entry(minute) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => e.insert((0, 0, new_histogram()?)),
        };
        entry.0 += 1;
        entry.1 += u64::from(s.failed());
        let us = ((s.latency_ms * 1000.0).round() as u64).clamp(1, MAX_LATENCY_US);
        entry
            .2
            .record(us)
            .map_err(|e| BadMeasurement(format!("samples[{i}]: histogram: {e:?}")))?;
    }
    minutes
        .into_iter()
        .map(|(minute, (count, errors, h))| {
            Ok(MinuteSummary {
                service: service.to_owned(),
                minute,
                count,
                errors,
                latency_histogram: encode(&h)?,
                approximate: false,
                version: None,
            })
        })
        .collect()
}

pub fn encode(h: &Histogram<u64>) -> Result<String, BadMeasurement> {
    let mut buf = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut buf)
        .map_err(|e| BadMeasurement(format!("histogram: {e:?}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(buf))
}

pub fn decode(text: &str) -> Result<Histogram<u64>, BadMeasurement> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| BadMeasurement(format!("histogram: not base64: {e}")))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| {
            BadMeasurement(format!(
                "histogram: not an HdrHistogram V2 serialization: {e:?}"
            ))
        })
}

/// Adds up serialised histograms (V2, base64) without building each one.
///
/// Written here because `hdrhistogram` only deserialises into a new histogram: that allocates
/// and zeroes the whole counts array (tens of KiB) and `add` walks it again, which made an
/// SLO's status over 10M samples (10,080 minute summaries) take 350 ms. Reading the V2 payload
/// — zig-zag LEB128 counts, negative numbers being runs of empty buckets — and adding each
/// count at its bucket index costs a few microseconds per summary; the histogram is built once,
/// at the end. Histograms of another shape (not 3 digits from 1) go through the crate.
#[derive(Debug)]
pub struct Merge {
    /// Counts by bucket index, HdrHistogram's layout for 3 significant digits from 1.
    counts: Vec<u64>,
    /// What came in another shape.
    other: Histogram<u64>,
    /// Reused between summaries: the decoded bytes and the entries read from them.
    bytes: Vec<u8>,
    entries: Vec<(u64, u64)>,
}

/// Sub-bucket half count magnitude of 3 significant digits (2,000 values at unit resolution
/// need 2,048 sub-buckets: 2^11, half 2^10).
const HALF_MAGNITUDE: u32 = 10;
/// The highest index the fast path accepts (values up to 2^53 µs).
const MAX_INDEX: u64 = ((53 - HALF_MAGNITUDE as u64) + 1) << HALF_MAGNITUDE;

/// The lowest value of bucket `index` (HdrHistogram's `value_for`, lowest value 1).
fn value_at_index(index: u64) -> u64 {
    let half_count = 1u64 << HALF_MAGNITUDE;
    let bucket = (index >> HALF_MAGNITUDE) as i64 - 1;
    if bucket < 0 {
        index & (half_count - 1)
    } else {
        ((index & (half_count - 1)) + half_count) << bucket
    }
}

impl Merge {
    pub fn new() -> Result<Self, BadMeasurement> {
        Ok(Self {
            counts: Vec::new(),
            other: new_histogram()?,
            bytes: Vec::new(),
            entries: Vec::new(),
        })
    }

    /// Adds what another merge gathered.
    pub fn absorb(&mut self, other: Merge) -> Result<(), BadMeasurement> {
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a = a.saturating_add(b);
        }
        self.other
            .add(other.other)
            .map_err(|e| BadMeasurement(format!("histogram: {e:?}")))
    }

    /// Adds one summary's histogram, whole or not at all.
    pub fn add_encoded(&mut self, text: &str) -> Result<(), BadMeasurement> {
        let mut bytes = std::mem::take(&mut self.bytes);
        let mut entries = std::mem::take(&mut self.entries);
        let read = indexed(text, &mut bytes, &mut entries);
        let added = self.add_entries(read, &entries, text);
        self.bytes = bytes;
        self.entries = entries;
        added
    }

    fn add_entries(
        &mut self,
        read: Result<bool, BadMeasurement>,
        entries: &[(u64, u64)],
        text: &str,
    ) -> Result<(), BadMeasurement> {
        match read {
            Err(e) => Err(e),
            Ok(true) => {
                for &(index, n) in entries {
                    let i = index as usize;
                    if i >= self.counts.len() {
                        self.counts.resize(i + 1, 0);
                    }
                    self.counts[i] = self.counts[i].saturating_add(n);
                }
                Ok(())
            }
            Ok(false) => self
                .other
                .add(decode(text)?)
                .map_err(|e| BadMeasurement(format!("histogram: {e:?}"))),
        }
    }

    /// The sum.
    pub fn finish(self) -> Result<Histogram<u64>, BadMeasurement> {
        let mut h = self.other;
        for (i, n) in self.counts.into_iter().enumerate() {
            if n > 0 {
                h.record_n(value_at_index(i as u64), n)
                    .map_err(|e| BadMeasurement(format!("histogram: {e:?}")))?;
            }
        }
        Ok(h)
    }
}

/// Reads the non-empty buckets of a serialised histogram as (index, count) into `out`;
/// false when it is not of the shape the fast path reads.
fn indexed(
    text: &str,
    bytes: &mut Vec<u8>,
    out: &mut Vec<(u64, u64)>,
) -> Result<bool, BadMeasurement> {
    bytes.clear();
    out.clear();
    base64::engine::general_purpose::STANDARD
        .decode_vec(text, bytes)
        .map_err(|e| BadMeasurement(format!("histogram: not base64: {e}")))?;
    let bytes = &*bytes;
    let bad = |what: &str| {
        BadMeasurement(format!(
            "histogram: not an HdrHistogram V2 serialization: {what}"
        ))
    };
    let be32 = |at: usize| -> Result<u32, BadMeasurement> {
        bytes
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
            .ok_or_else(|| bad("truncated header"))
    };
    let be64 = |at: usize| -> Result<u64, BadMeasurement> {
        bytes
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| bad("truncated header"))
    };
    const V2_COOKIE: u32 = 0x1c84_9303;
    let (cookie, payload_len, offset, digits, low) =
        (be32(0)?, be32(4)?, be32(8)?, be32(12)?, be64(16)?);
    let ratio = f64::from_bits(be64(32)?);
    if cookie != V2_COOKIE || offset != 0 || ratio != 1.0 || low != 1 || digits != 3 {
        return Ok(false);
    }
    let payload = bytes
        .get(40..40 + payload_len as usize)
        .ok_or_else(|| bad("truncated payload"))?;
    let mut index: u64 = 0;
    let mut at = 0;
    while at < payload.len() {
        let mut zz: u64 = 0;
        let mut shift = 0;
        loop {
            let b = *payload.get(at).ok_or_else(|| bad("truncated count"))?;
            at += 1;
            if shift == 56 {
                zz |= u64::from(b) << 56;
                break;
            }
            zz |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let n = ((zz >> 1) as i64) ^ -((zz & 1) as i64);
        if n < 0 {
            index = index.saturating_add(n.unsigned_abs());
            continue;
        }
        if n > 0 {
            if index >= MAX_INDEX {
                return Err(bad("a bucket beyond the highest latency"));
            }
            out.push((index, n as u64));
        }
        index += 1;
    }
    Ok(true)
}

/// Summaries per decoding thread below which a window is decoded on one thread.
const PARALLEL_FROM: usize = 512;

/// What a window of summaries adds up to.
#[derive(Debug, Clone)]
pub struct Window {
    pub count: u64,
    pub errors: u64,
    pub latency: Histogram<u64>,
    /// Some of its latencies come from histogram buckets (approximate).
    pub approximate: bool,
}

impl Window {
    /// The summaries whose minute starts in `[from, to)`; summaries that do not decode are
    /// skipped and counted in the second value.
    pub fn of<'a>(
        summaries: impl IntoIterator<Item = &'a MinuteSummary>,
        from: i64,
        to: i64,
    ) -> Result<(Self, usize), BadMeasurement> {
        Self::gather(summaries, from, to, true)
    }

    /// Counts only (no latency histogram): what ratio objectives need, without decoding.
    pub fn counts<'a>(
        summaries: impl IntoIterator<Item = &'a MinuteSummary>,
        from: i64,
        to: i64,
    ) -> Result<Self, BadMeasurement> {
        Ok(Self::gather(summaries, from, to, false)?.0)
    }

    fn gather<'a>(
        summaries: impl IntoIterator<Item = &'a MinuteSummary>,
        from: i64,
        to: i64,
        latency: bool,
    ) -> Result<(Self, usize), BadMeasurement> {
        let mut w = Window {
            count: 0,
            errors: 0,
            latency: new_histogram()?,
            approximate: false,
        };
        let chosen: Vec<&MinuteSummary> = summaries
            .into_iter()
            .filter(|s| s.minute >= from && s.minute < to)
            .collect();
        if !latency {
            for s in chosen {
                w.count += s.count;
                w.errors += s.errors.min(s.count);
            }
            return Ok((w, 0));
        }
        // Decoding is the cost: large windows are split over the machine's cores.
        let threads = std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .min(chosen.len() / PARALLEL_FROM + 1);
        let part = |slice: &[&MinuteSummary]| -> Result<(Merge, Window, usize), BadMeasurement> {
            let mut merge = Merge::new()?;
            let mut w = Window {
                count: 0,
                errors: 0,
                latency: new_histogram()?,
                approximate: false,
            };
            let mut undecodable = 0;
            for s in slice {
                if merge.add_encoded(&s.latency_histogram).is_err() {
                    undecodable += 1;
                    continue;
                }
                w.count += s.count;
                w.errors += s.errors.min(s.count);
                w.approximate |= s.approximate;
            }
            Ok((merge, w, undecodable))
        };
        let parts: Vec<Result<(Merge, Window, usize), BadMeasurement>> = if threads <= 1 {
            vec![part(&chosen)]
        } else {
            let size = chosen.len().div_ceil(threads);
            std::thread::scope(|scope| {
                let handles: Vec<_> = chosen
                    .chunks(size)
                    .map(|c| scope.spawn(move || part(c)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(BadMeasurement(
                                "histogram: a decoding thread panicked".into(),
                            ))
                        })
                    })
                    .collect()
            })
        };
        let mut merge = Merge::new()?;
        let mut undecodable = 0;
        for p in parts {
            let (m, pw, u) = p?;
            merge.absorb(m)?;
            w.count += pw.count;
            w.errors += pw.errors;
            w.approximate |= pw.approximate;
            undecodable += u;
        }
        w.latency = merge.finish()?;
        Ok((w, undecodable))
    }

    /// The latency at quantile `q` (0..=1) in milliseconds, None without samples.
    pub fn percentile_ms(&self, q: f64) -> Option<f64> {
        (!self.latency.is_empty()).then(|| self.latency.value_at_quantile(q) as f64 / 1000.0)
    }

    /// Requests whose latency satisfies `op threshold_ms`, at the histogram's precision: a
    /// request within 0.1 % above the threshold may count as at it (HdrHistogram's
    /// `count_between`, whose buckets end at their highest equivalent value).
    pub fn satisfying(&self, op: super::openslo::Op, threshold_ms: f64) -> u64 {
        use super::openslo::Op;
        let t = ((threshold_ms * 1000.0).round() as u64).min(MAX_LATENCY_US);
        let at_most = |v: u64| self.latency.count_between(0, v);
        let total = self.latency.len();
        match op {
            Op::Lte => at_most(t),
            Op::Lt => t.checked_sub(1).map_or(0, at_most),
            Op::Gt => total - at_most(t).min(total),
            Op::Gte => total - t.checked_sub(1).map_or(0, at_most).min(total),
        }
    }
}
