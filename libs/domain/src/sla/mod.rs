//! Service level objectives and what is measured against them (the sla service).
//!
//! - [`openslo`]: SLOs as OpenSLO v1 documents, validated into [`openslo::Slo`].
//! - [`measure`]: raw samples into per-minute summaries with HdrHistograms.
//! - [`prom`]: Prometheus remote-write series into (approximate) minute summaries.
//! - [`rules`]: Prometheus recording and alerting rules for the same SLOs.
//! - [`telemetry`]: raw samples from NATS, accumulated per minute until it closes.
//! - [`signals`]: other services' events that mean an incident (security findings, failed
//!   promotions, refused approval attempts).
//! - [`report`]: compliance reports for a period, every figure citing its events.
//! - [`access`]: bursts of refused requests (403s), counted per user.
//! - [`calendar`]: calendar-aligned windows (periods in an IANA time zone).
//! - [`status`]: attainment, error budget and burn-rate alerts at a moment.
//!
//! Streams: `slo/<name>` ([`SloEvent`]: each version of an SLO) and
//! `measurement/<service>:<batch id>` ([`MeasurementEvent`]: one batch's minute summaries,
//! appended at once — a batch is recorded whole or not at all, and a retried batch id is
//! recognised instead of counted twice), `slo_alert/<slo>` ([`AlertEvent`]: burn-rate alerts
//! that began or stopped firing — violations) and `incident/<cause>`
//! ([`incident::IncidentEvent`]).

pub mod access;
pub mod calendar;
#[cfg(test)]
mod calendar_tests;
pub mod incident;
pub mod measure;
pub mod openslo;
pub mod prom;
#[cfg(test)]
mod prom_tests;
pub mod report;
#[cfg(test)]
mod report_tests;
pub mod rules;
pub mod signals;
mod spans;
pub mod status;
pub mod telemetry;
#[cfg(test)]
mod tests;

use measure::MinuteSummary;
use openslo::Slo;
use serde::{Deserialize, Serialize};

/// Events of an SLO's stream: each applied version (the stream version is the SLO's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type")]
pub enum SloEvent {
    SloApplied {
        slo: Slo,
        /// The OpenSLO text it came from, as given.
        source: String,
        applied_by: String,
    },
}

impl SloEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::SloApplied { .. } => "SloApplied",
        }
    }
}

/// An SLO's aggregate: its current definition.
#[derive(Debug, Clone, Default)]
pub struct SloState {
    pub current: Option<Slo>,
}

impl SloState {
    pub fn apply(&mut self, e: &SloEvent) {
        match e {
            SloEvent::SloApplied { slo, .. } => self.current = Some(slo.clone()),
        }
    }

    /// A new version when the definition changed; nothing when it is the same.
    pub fn apply_definition(&self, slo: &Slo, source: &str, by: &str) -> Vec<SloEvent> {
        if self.current.as_ref() == Some(slo) {
            return Vec::new();
        }
        vec![SloEvent::SloApplied {
            slo: slo.clone(),
            source: source.to_owned(),
            applied_by: by.to_owned(),
        }]
    }
}

/// Events of `measurement/<service>:<batch id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type")]
pub enum MeasurementEvent {
    /// Requests of one minute (a batch's share of it; a minute's summaries add up).
    MinuteSummarized(MinuteSummary),
}

impl MeasurementEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::MinuteSummarized(_) => "MinuteSummarized",
        }
    }

    /// The stream id of a service's batch.
    pub fn stream_id(service: &str, batch: &str) -> String {
        format!("{service}:{batch}")
    }
}

/// A batch's aggregate: how many minute summaries it recorded.
#[derive(Debug, Clone, Default)]
pub struct BatchState {
    pub summaries: u64,
}

impl BatchState {
    pub fn apply(&mut self, _e: &MeasurementEvent) {
        self.summaries += 1;
    }

    /// The batch's events, or none when the batch id was recorded already (a retry).
    pub fn record(&self, summaries: &[MinuteSummary]) -> Vec<MeasurementEvent> {
        if self.summaries > 0 {
            return Vec::new();
        }
        summaries
            .iter()
            .cloned()
            .map(MeasurementEvent::MinuteSummarized)
            .collect()
    }
}

/// Events of `slo_alert/<slo>`: a burn-rate alert of an objective began or stopped firing
/// (a violation is the former).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type")]
pub enum AlertEvent {
    AlertFired {
        slo: String,
        service: String,
        objective: String,
        alert: String,
        factor: f64,
        long_burn_rate: Option<f64>,
        short_burn_rate: Option<f64>,
        /// Unix time (seconds) of the evaluation.
        at: i64,
    },
    AlertCleared {
        slo: String,
        objective: String,
        alert: String,
        at: i64,
    },
}

impl AlertEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::AlertFired { .. } => "AlertFired",
            Self::AlertCleared { .. } => "AlertCleared",
        }
    }
}

/// An SLO's alerts as recorded: which (objective, alert) pairs are firing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AlertsState {
    pub firing: std::collections::BTreeSet<(String, String)>,
}

impl AlertsState {
    pub fn apply(&mut self, e: &AlertEvent) {
        match e {
            AlertEvent::AlertFired {
                objective, alert, ..
            } => {
                self.firing.insert((objective.clone(), alert.clone()));
            }
            AlertEvent::AlertCleared {
                objective, alert, ..
            } => {
                self.firing.remove(&(objective.clone(), alert.clone()));
            }
        }
    }

    /// What changed since the recorded state, per an evaluation: alerts that began and
    /// stopped firing. Replicas evaluating the same moment decide the same.
    pub fn changes(&self, st: &status::SloStatus) -> Vec<AlertEvent> {
        let mut out = Vec::new();
        for o in &st.objectives {
            for a in &o.alerts {
                let key = (o.name.clone(), a.name.clone());
                match (a.firing, self.firing.contains(&key)) {
                    (true, false) => out.push(AlertEvent::AlertFired {
                        slo: st.slo.clone(),
                        service: st.service.clone(),
                        objective: o.name.clone(),
                        alert: a.name.clone(),
                        factor: a.factor,
                        long_burn_rate: a.long_burn_rate,
                        short_burn_rate: a.short_burn_rate,
                        at: st.at,
                    }),
                    (false, true) => out.push(AlertEvent::AlertCleared {
                        slo: st.slo.clone(),
                        objective: o.name.clone(),
                        alert: a.name.clone(),
                        at: st.at,
                    }),
                    _ => {}
                }
            }
        }
        out
    }
}
