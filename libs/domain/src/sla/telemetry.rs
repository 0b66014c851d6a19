//! Raw samples at high volume (NATS `goose.telemetry.<service>`), folded into per-service,
//! per-minute accumulators and recorded as minute summaries once their minute has closed.
//!
//! The message body is a JSON array of `[unix_ms, latency_us, status]` triples — compact,
//! parsed at millions of samples a second, and written by any language without a schema
//! compiler. `status` is the HTTP status (5xx is an error) or 0 when there is none (success).
//! Latencies are exact (HdrHistogram, 3 significant digits), as with REST batches.
//! A `Goose-Version` message header names the version that served the samples (its
//! summaries say it, as REST batches' `version` does).

use super::measure::{encode, new_histogram, BadMeasurement, MinuteSummary, MAX_LATENCY_US};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;

/// The subject prefix: samples of service S are published on `goose.telemetry.S`.
pub const SUBJECT_PREFIX: &str = "goose.telemetry";

/// One sample as sent: unix milliseconds, latency in microseconds, HTTP status (0: none).
pub type Triple = (i64, u64, u16);

/// Parses a telemetry message.
pub fn parse(body: &[u8]) -> Result<Vec<Triple>, BadMeasurement> {
    serde_json::from_slice(body).map_err(|e| {
        BadMeasurement(format!(
            "telemetry: not a JSON array of [unix_ms, latency_us, status]: {e}"
        ))
    })
}

struct Minute {
    count: u64,
    errors: u64,
    latency: Histogram<u64>,
}

/// Samples not yet recorded, per service and minute.
#[derive(Default)]
pub struct Accumulator {
    /// (service, version, minute) → what arrived.
    minutes: BTreeMap<(String, Option<String>, i64), Minute>,
    samples: u64,
}

impl std::fmt::Debug for Accumulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accumulator")
            .field("minutes", &self.minutes.len())
            .field("samples", &self.samples)
            .finish()
    }
}

impl Accumulator {
    /// Samples held (not yet taken).
    pub fn pending_samples(&self) -> u64 {
        self.samples
    }

    /// Adds one message's samples of `service` (served by `version`, when the sender said); a
    /// sample with a status that is not HTTP's is refused with the whole message (nothing of
    /// it added).
    pub fn add(
        &mut self,
        service: &str,
        version: Option<&str>,
        samples: &[Triple],
    ) -> Result<(), BadMeasurement> {
        if let Some((i, s)) = samples
            .iter()
            .enumerate()
            .find(|(_, s)| s.2 != 0 && !(100..=599).contains(&s.2))
        {
            return Err(BadMeasurement(format!(
                "telemetry: sample {i}: status {} is not an HTTP status (or 0)",
                s.2
            )));
        }
        let mut current: Option<(i64, &mut Minute)> = None;
        for &(ms, us, status) in samples {
            let secs = ms.div_euclid(1000);
            let minute = secs - secs.rem_euclid(60);
            // Consecutive samples mostly share a minute: look the entry up once per run.
            let m = match current.take() {
                Some((k, m)) if k == minute => m,
                _ => match self.minutes.entry((
                    service.to_owned(),
                    version.map(str::to_owned),
                    minute,
                )) {
                    std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::btree_map::Entry::Vacant(e) => e.insert(Minute {
                        count: 0,
                        errors: 0,
                        latency: new_histogram()?,
                    }),
                },
            };
            m.count += 1;
            m.errors += u64::from(status >= 500);
            m.latency
                .record(us.clamp(1, MAX_LATENCY_US))
                .map_err(|e| BadMeasurement(format!("histogram: {e:?}")))?;
            current = Some((minute, m));
        }
        self.samples += samples.len() as u64;
        Ok(())
    }

    /// Takes the summaries of minutes that ended at or before `closed_before` (unix seconds),
    /// per service. Samples of a taken minute that arrive later start a new summary of it:
    /// summaries of one minute add up.
    pub fn take_closed(
        &mut self,
        closed_before: i64,
    ) -> Result<BTreeMap<String, Vec<MinuteSummary>>, BadMeasurement> {
        let keys: Vec<(String, Option<String>, i64)> = self
            .minutes
            .keys()
            .filter(|(_, _, minute)| minute + 60 <= closed_before)
            .cloned()
            .collect();
        let mut out: BTreeMap<String, Vec<MinuteSummary>> = BTreeMap::new();
        for key in keys {
            if let Some(m) = self.minutes.remove(&key) {
                self.samples -= m.count;
                out.entry(key.0.clone()).or_default().push(MinuteSummary {
                    service: key.0,
                    minute: key.2,
                    count: m.count,
                    errors: m.errors,
                    latency_histogram: encode(&m.latency)?,
                    approximate: false,
                    version: key.1,
                });
            }
        }
        Ok(out)
    }

    /// Puts back summaries that could not be recorded (they are taken again next time).
    pub fn restore(&mut self, summaries: Vec<MinuteSummary>) -> Result<(), BadMeasurement> {
        for s in summaries {
            let h = super::measure::decode(&s.latency_histogram)?;
            let m = match self
                .minutes
                .entry((s.service.clone(), s.version.clone(), s.minute))
            {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => e.insert(Minute {
                    count: 0,
                    errors: 0,
                    latency: new_histogram()?,
                }),
            };
            m.count += s.count;
            m.errors += s.errors;
            m.latency
                .add(&h)
                .map_err(|e| BadMeasurement(format!("histogram: {e:?}")))?;
            self.samples += s.count;
        }
        Ok(())
    }
}
