//! The sla read model: SLOs (current version of each), every minute summary by service, and
//! the catalog (SLOs and measurements name catalog services).

use goose_domain::approval::ApprovalEvent;
use goose_domain::catalog::{Catalog, CatalogEvent};
use goose_domain::promotion::PromotionEvent;
use goose_domain::sla::incident::{IncidentEvent, IncidentReport, IncidentStatus};
use goose_domain::sla::measure::MinuteSummary;
use goose_domain::sla::openslo::Slo;
use goose_domain::sla::report::{Cite, Occurrence, ReportEvent, ReportLedger};
use goose_domain::sla::signals::{self, Signal};
use goose_domain::sla::{AlertEvent, AlertsState, MeasurementEvent, SloEvent};
use goose_domain::streams;
use goose_ledger::RecordedEvent;
use goose_platform::view::View;
use std::collections::BTreeMap;

/// An SLO as it stands, with its version (the stream version of its latest definition).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct SloEntry {
    pub version: u64,
    pub applied_by: String,
    /// Ledger position of the event that applied this version.
    pub position: u64,
    #[serde(flatten)]
    pub slo: Slo,
}

/// One step of an incident's timeline.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct TimelineEntry {
    /// Ledger position of the event.
    pub position: u64,
    pub event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When it was recorded (RFC 3339).
    pub at: String,
}

/// An incident as it stands.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct IncidentView {
    pub id: String,
    pub cause: String,
    #[serde(flatten)]
    pub report: IncidentReport,
    pub status: IncidentStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    pub opened_by: String,
    pub timeline: Vec<TimelineEntry>,
}

/// An SLO's firing alerts: (objective, alert) -> (`AlertFired` position, burn-rate factor).
pub type FiringAlerts = BTreeMap<(String, String), (u64, f64)>;

/// `firing` in a snapshot: each SLO's map as `[key, value]` pairs (its keys are tuples).
mod firing_pairs {
    use super::FiringAlerts;
    use serde::{Deserialize as _, Deserializer, Serialize as _, Serializer};
    use std::collections::BTreeMap;

    type Pairs = Vec<((String, String), (u64, f64))>;

    pub fn serialize<S: Serializer>(
        m: &BTreeMap<String, FiringAlerts>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let as_pairs: BTreeMap<&String, Pairs> = m
            .iter()
            .map(|(k, v)| (k, v.iter().map(|(a, b)| (a.clone(), *b)).collect()))
            .collect();
        as_pairs.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, FiringAlerts>, D::Error> {
        let as_pairs = BTreeMap::<String, Pairs>::deserialize(d)?;
        Ok(as_pairs
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().collect()))
            .collect())
    }
}

#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct SlaView {
    pub slos: BTreeMap<String, SloEntry>,
    pub summaries: BTreeMap<String, Vec<MinuteSummary>>,
    pub catalog: Catalog,
    /// Per SLO, the alerts recorded as firing.
    pub alerts: BTreeMap<String, AlertsState>,
    pub incidents: BTreeMap<String, IncidentView>,
    /// The open (not resolved) incident of each cause.
    pub open_by_cause: BTreeMap<String, String>,
    /// Per SLO, each firing alert's `AlertFired` position and burn-rate factor.
    #[serde(with = "firing_pairs")]
    pub firing: BTreeMap<String, FiringAlerts>,
    /// Per cause, the newest ledger position an incident of it cites.
    pub linked: BTreeMap<String, u64>,
    /// Other services' events that mean an incident, with their positions, not yet cited
    /// by one (the evaluator opens or recurs incidents for them).
    pub signals: Vec<(Signal, u64)>,
    /// What compliance reports are made of.
    pub report_ledger: ReportLedger,
    /// Per service, each summary's citation (in the order of `summaries`).
    pub summary_cites: BTreeMap<String, Vec<Cite>>,
    /// Per SLO, the citation of its current version.
    pub slo_cites: BTreeMap<String, Cite>,
    /// Issued reports by id.
    pub reports: BTreeMap<String, ReportEntry>,
    /// Recorded runbook runs by id (time-ordered ids: in the order they ran).
    pub runbook_runs: BTreeMap<String, crate::runbooks::RecordedRun>,
}

/// An issued report, as recorded.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ReportEntry {
    pub id: String,
    pub event: ReportEvent,
    pub cite: Cite,
    pub at: time::OffsetDateTime,
}

/// The citation of a recorded event.
pub fn cite(ev: &RecordedEvent) -> Cite {
    Cite {
        id: ev.event_id.to_string(),
        position: ev.position,
        digest: hex::encode(ev.digest),
    }
}

fn occurrence(ev: &RecordedEvent) -> Occurrence {
    Occurrence {
        cite: cite(ev),
        at: ev.metadata.recorded_at,
    }
}

impl SlaView {
    fn incident(&mut self, ev: &RecordedEvent, e: IncidentEvent) {
        let at = ev
            .metadata
            .recorded_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let entry = |event: &str, by: Option<&str>, note: Option<&str>| TimelineEntry {
            position: ev.position,
            event: event.to_owned(),
            by: by.map(str::to_owned),
            note: note.map(str::to_owned),
            at: at.clone(),
        };
        let kind = e.event_type();
        let cited = match &e {
            IncidentEvent::IncidentOpened { report, .. } => report.caused_by.iter().max(),
            IncidentEvent::IncidentRecurred { caused_by, .. } => caused_by.iter().max(),
            _ => None,
        };
        if let Some(p) = cited {
            let cause = match &e {
                IncidentEvent::IncidentOpened { cause, .. } => Some(cause.clone()),
                _ => self.incidents.get(e.id()).map(|i| i.cause.clone()),
            };
            if let Some(cause) = cause {
                let l = self.linked.entry(cause.clone()).or_default();
                *l = (*l).max(*p);
                let linked = *l;
                self.signals
                    .retain(|(sig, pos)| sig.cause != cause || *pos > linked);
            }
        }
        if let IncidentEvent::IncidentOpened {
            id,
            cause,
            report,
            by,
        } = &e
        {
            self.open_by_cause.insert(cause.clone(), id.clone());
            self.incidents.insert(
                id.clone(),
                IncidentView {
                    id: id.clone(),
                    cause: cause.clone(),
                    report: report.clone(),
                    status: IncidentStatus::Open,
                    assignee: None,
                    opened_by: by.clone(),
                    timeline: vec![entry(kind, Some(by), Some(&report.title))],
                },
            );
            return;
        }
        let Some(inc) = self.incidents.get_mut(e.id()) else {
            tracing::error!(
                position = ev.position,
                id = e.id(),
                "an incident event for an incident never opened"
            );
            return;
        };
        let step = match &e {
            IncidentEvent::IncidentOpened { .. } => return,
            IncidentEvent::IncidentRecurred {
                caused_by, note, ..
            } => {
                inc.report.caused_by.extend(caused_by.iter().copied());
                entry(kind, None, Some(note))
            }
            IncidentEvent::IncidentAcknowledged { by, .. } => {
                inc.status = IncidentStatus::Acknowledged;
                entry(kind, Some(by), None)
            }
            IncidentEvent::IncidentAssigned { assignee, by, .. } => {
                inc.assignee = Some(assignee.clone());
                entry(kind, Some(by), Some(assignee))
            }
            IncidentEvent::IncidentNoted { note, by, .. } => entry(kind, Some(by), Some(note)),
            IncidentEvent::IncidentMitigated { note, by, .. } => {
                inc.status = IncidentStatus::Mitigated;
                entry(kind, Some(by), Some(note))
            }
            IncidentEvent::IncidentResolved { note, by, .. } => {
                inc.status = IncidentStatus::Resolved;
                self.open_by_cause.remove(&inc.cause);
                entry(kind, Some(by), Some(note))
            }
            IncidentEvent::IncidentReopened { reason, by, .. } => {
                inc.status = IncidentStatus::Open;
                self.open_by_cause.insert(inc.cause.clone(), inc.id.clone());
                entry(kind, Some(by), Some(reason))
            }
        };
        inc.timeline.push(step);
    }
}

impl View for SlaView {
    const FOLLOWS: &'static [&'static str] = &[
        streams::SLO,
        streams::MEASUREMENT,
        streams::CATALOG,
        streams::SLO_ALERT,
        streams::INCIDENT,
        streams::PROMOTION,
        streams::APPROVAL,
        streams::REPORT,
        streams::COMPLIANCE,
        streams::RUNBOOK_RUN,
    ];

    fn apply(&mut self, ev: &RecordedEvent) {
        match ev.stream.aggregate_type() {
            streams::SLO => {
                if let Some(SloEvent::SloApplied {
                    slo, applied_by, ..
                }) = goose_platform::decoded::<SloEvent>(ev)
                {
                    self.slo_cites.insert(slo.name.clone(), cite(ev));
                    self.slos.insert(
                        slo.name.clone(),
                        SloEntry {
                            version: ev.version,
                            applied_by,
                            position: ev.position,
                            slo,
                        },
                    );
                }
            }
            streams::MEASUREMENT => {
                if let Some(MeasurementEvent::MinuteSummarized(s)) =
                    goose_platform::decoded::<MeasurementEvent>(ev)
                {
                    self.summary_cites
                        .entry(s.service.clone())
                        .or_default()
                        .push(cite(ev));
                    self.summaries.entry(s.service.clone()).or_default().push(s);
                }
            }
            streams::SLO_ALERT => {
                if let Some(e) = goose_platform::decoded::<AlertEvent>(ev) {
                    let slo = match &e {
                        AlertEvent::AlertFired { slo, .. }
                        | AlertEvent::AlertCleared { slo, .. } => slo.clone(),
                    };
                    let firing = self.firing.entry(slo.clone()).or_default();
                    match &e {
                        AlertEvent::AlertFired {
                            objective,
                            alert,
                            factor,
                            ..
                        } => {
                            firing
                                .insert((objective.clone(), alert.clone()), (ev.position, *factor));
                        }
                        AlertEvent::AlertCleared {
                            objective, alert, ..
                        } => {
                            firing.remove(&(objective.clone(), alert.clone()));
                        }
                    }
                    self.report_ledger.alert(&e, occurrence(ev));
                    self.alerts.entry(slo).or_default().apply(&e);
                }
            }
            streams::INCIDENT => {
                if let Some(e) = goose_platform::decoded::<IncidentEvent>(ev) {
                    self.report_ledger.incident(&e, occurrence(ev));
                    self.incident(ev, e);
                }
            }
            streams::PROMOTION => {
                if let Some(e) = goose_platform::decoded::<PromotionEvent>(ev) {
                    let id = ev.stream.aggregate_id();
                    self.report_ledger.promotion(id, &e, occurrence(ev));
                    if let Some(sig) = signals::from_promotion(id, &e) {
                        self.signals.push((sig, ev.position));
                    }
                }
            }
            streams::APPROVAL => {
                if let Some(e) = goose_platform::decoded::<ApprovalEvent>(ev) {
                    let id = ev.stream.aggregate_id();
                    self.report_ledger.approval(id, &e, occurrence(ev));
                    if let Some(sig) = signals::from_approval(id, &e) {
                        self.signals.push((sig, ev.position));
                    }
                }
            }
            streams::COMPLIANCE => {
                if let Some(e) =
                    goose_platform::decoded::<goose_domain::demotion::ComplianceEvent>(ev)
                {
                    self.report_ledger.compliance(&e, occurrence(ev));
                }
            }
            streams::REPORT => {
                if let Some(e) = goose_platform::decoded::<ReportEvent>(ev) {
                    let id = ev.stream.aggregate_id().to_owned();
                    self.reports.insert(
                        id.clone(),
                        ReportEntry {
                            id,
                            event: e,
                            cite: cite(ev),
                            at: ev.metadata.recorded_at,
                        },
                    );
                }
            }
            streams::RUNBOOK_RUN => {
                if let Some(goose_domain::runbook::RunbookEvent::RunbookRunRecorded {
                    id,
                    run_by,
                    run,
                }) = goose_platform::decoded(ev)
                {
                    let at = ev
                        .metadata
                        .recorded_at
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default();
                    self.runbook_runs.insert(
                        id.clone(),
                        crate::runbooks::RecordedRun {
                            id,
                            run_by,
                            at,
                            position: ev.position,
                            run,
                        },
                    );
                }
            }
            _ => {
                if let Some(e) = goose_platform::decoded::<CatalogEvent>(ev) {
                    self.catalog.apply(&e);
                }
            }
        }
    }
}
