//! [`Tables`]: every analytics table, fed one recorded event at a time in position order.
//! Pure: no I/O; the service's read model calls [`Tables::apply`] for each event it follows.

use crate::rows::*;
use crate::schema;
use crate::table::{AppendTable, ConvertError, KeyedTable, TableDef};
use datafusion::arrow::record_batch::RecordBatch;
use goose_domain::approval::ApprovalEvent;
use goose_domain::demotion::ComplianceEvent;
use goose_domain::evidence::EvidenceEvent;
use goose_domain::promotion::PromotionEvent;
use goose_domain::sla::incident::IncidentEvent;
use goose_domain::sla::openslo::{Indicator, Slo};
use goose_domain::sla::{MeasurementEvent, SloEvent};
use goose_domain::streams;
use goose_ledger::RecordedEvent;
use std::collections::HashMap;
use std::sync::Arc;
use time::OffsetDateTime;

/// Microseconds since the Unix epoch.
pub fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

/// A serde enum's wire name (`"compliance_ready"`, `"sast_results_clean"`).
fn tag<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(e) => format!("<{e}>"),
    }
}

fn ms(from: i64, to: i64) -> i64 {
    (to - from) / 1_000
}

/// The `events` row of a recorded event.
pub fn event_row(ev: &RecordedEvent) -> EventRow {
    EventRow {
        position: ev.position as i64,
        recorded_at: micros(ev.metadata.recorded_at),
        stream: ev.stream.to_string(),
        aggregate_type: ev.stream.aggregate_type().to_owned(),
        aggregate_id: ev.stream.aggregate_id().to_owned(),
        stream_version: ev.version as i64,
        event_id: ev.event_id.to_string(),
        event_type: ev.event_type.clone(),
        service: ev.key_id.split('+').next().unwrap_or_default().to_owned(),
        actor: ev.metadata.actor.clone(),
        digest: hex::encode(ev.digest),
        payload: String::from_utf8_lossy(&ev.payload).into_owned(),
    }
}

/// A table as the query engine takes it. The batches are shared: every query takes its
/// own copy of the snapshot to its threads, and a copy must not cost a pass over the table.
#[derive(Debug, Clone)]
pub struct TableData {
    pub def: TableDef,
    pub batches: Arc<[RecordBatch]>,
}

/// Every table, and how far into the ledger they reach.
#[derive(Debug)]
pub struct Tables {
    pub events: AppendTable<EventRow>,
    pub promotions: KeyedTable<PromotionRow>,
    pub promotion_targets: KeyedTable<TargetRow>,
    pub gate_evaluations: AppendTable<GateRow>,
    pub evidence: AppendTable<EvidenceRow>,
    pub approvals: KeyedTable<ApprovalRow>,
    pub compliance_transitions: AppendTable<TransitionRow>,
    pub incidents: KeyedTable<IncidentRow>,
    pub sla_windows: AppendTable<SlaWindowRow>,
    pub slo_objectives: KeyedTable<SloObjectiveRow>,
    /// Target keys of each promotion, in promotion order, with their dependencies in it.
    plans: HashMap<String, Vec<(String, Vec<String>)>>,
    /// One past the newest position applied.
    pub next_position: u64,
}

impl Default for Tables {
    fn default() -> Self {
        Self {
            events: AppendTable::new(schema::events()),
            promotions: KeyedTable::new(schema::promotions()),
            promotion_targets: KeyedTable::new(schema::promotion_targets()),
            gate_evaluations: AppendTable::new(schema::gate_evaluations()),
            evidence: AppendTable::new(schema::evidence()),
            approvals: KeyedTable::new(schema::approvals()),
            compliance_transitions: AppendTable::new(schema::compliance_transitions()),
            incidents: KeyedTable::new(schema::incidents()),
            sla_windows: AppendTable::new(schema::sla_windows()),
            slo_objectives: KeyedTable::new(schema::slo_objectives()),
            plans: HashMap::new(),
            next_position: 0,
        }
    }
}

/// An event whose payload did not decode as its stream's event type: its row is in `events`,
/// and no typed table has it.
#[derive(Debug, thiserror::Error)]
#[error("event at position {position} ({event_type}) does not decode: {reason}")]
pub struct Undecodable {
    pub position: u64,
    pub event_type: String,
    pub reason: String,
}

fn target_key(promotion: &str, service: &str) -> String {
    format!("{promotion}/{service}")
}

impl Tables {
    /// Every table definition, in the order they are documented.
    pub fn defs() -> Vec<TableDef> {
        vec![
            schema::events(),
            schema::promotions(),
            schema::promotion_targets(),
            schema::gate_evaluations(),
            schema::evidence(),
            schema::approvals(),
            schema::compliance_transitions(),
            schema::incidents(),
            schema::sla_windows(),
            schema::slo_objectives(),
            schema::chain(),
        ]
    }

    /// The `chain` table holding `row` (the service's chain watch), or empty without one.
    pub fn chain_table(row: Option<&ChainRow>) -> Result<TableData, ConvertError> {
        let def = schema::chain();
        let batches = match row {
            Some(r) => vec![def.batch(std::slice::from_ref(r))?],
            None => Vec::new(),
        };
        Ok(TableData {
            def,
            batches: batches.into(),
        })
    }

    /// Row counts by table.
    pub fn row_counts(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("events", self.events.rows()),
            ("promotions", self.promotions.rows()),
            ("promotion_targets", self.promotion_targets.rows()),
            ("gate_evaluations", self.gate_evaluations.rows()),
            ("evidence", self.evidence.rows()),
            ("approvals", self.approvals.rows()),
            ("compliance_transitions", self.compliance_transitions.rows()),
            ("incidents", self.incidents.rows()),
            ("sla_windows", self.sla_windows.rows()),
            ("slo_objectives", self.slo_objectives.rows()),
            ("chain", 0),
        ]
    }

    /// Every table's current batches (cheap: frozen batches are shared).
    pub fn snapshot(&self) -> Result<Vec<TableData>, ConvertError> {
        Ok(vec![
            data(self.events.def(), self.events.batches()?),
            data(self.promotions.def(), self.promotions.batches()?),
            data(
                self.promotion_targets.def(),
                self.promotion_targets.batches()?,
            ),
            data(
                self.gate_evaluations.def(),
                self.gate_evaluations.batches()?,
            ),
            data(self.evidence.def(), self.evidence.batches()?),
            data(self.approvals.def(), self.approvals.batches()?),
            data(
                self.compliance_transitions.def(),
                self.compliance_transitions.batches()?,
            ),
            data(self.incidents.def(), self.incidents.batches()?),
            data(self.sla_windows.def(), self.sla_windows.batches()?),
            data(self.slo_objectives.def(), self.slo_objectives.batches()?),
            Self::chain_table(None)?,
        ])
    }

    /// Applies one event (in position order). The `events` row is always added; an event
    /// that does not decode is reported and leaves the typed tables as they were.
    pub fn apply(&mut self, ev: &RecordedEvent) -> Result<(), Undecodable> {
        self.next_position = ev.position + 1;
        let at = micros(ev.metadata.recorded_at);
        self.events.push(event_row(ev));
        let undecodable = |e: goose_ledger::Error| Undecodable {
            position: ev.position,
            event_type: ev.event_type.clone(),
            reason: e.to_string(),
        };
        let id = ev.stream.aggregate_id();
        match ev.stream.aggregate_type() {
            streams::PROMOTION => self.promotion(ev, id, at, ev.payload_as().map_err(undecodable)?),
            streams::EVIDENCE => {
                if let EvidenceEvent::EvidenceAccepted(r) = ev.payload_as().map_err(undecodable)? {
                    self.evidence.push(EvidenceRow {
                        position: ev.position as i64,
                        evidence_id: r.id,
                        service: r.service,
                        version: r.version,
                        kind: r.kind.as_str().to_owned(),
                        filename: r.filename,
                        size_bytes: i64::try_from(r.size).unwrap_or(i64::MAX),
                        digest: r.digest,
                        submitted_at: micros(r.submitted_at),
                        submitted_by: r.submitted_by,
                        retain_until: micros(r.retain_until),
                        subject: match r.subject {
                            goose_domain::evidence::Subject::Service => "service",
                            goose_domain::evidence::Subject::Model => "model",
                        }
                        .to_owned(),
                    });
                }
            }
            streams::APPROVAL => self.approval(ev, id, at, ev.payload_as().map_err(undecodable)?),
            streams::COMPLIANCE => {
                let ComplianceEvent::VersionDemoted {
                    service,
                    version,
                    from,
                    to,
                    reason,
                    demoted_by,
                    ..
                } = ev.payload_as().map_err(undecodable)?;
                self.compliance_transitions.push(TransitionRow {
                    position: ev.position as i64,
                    at,
                    service,
                    version,
                    from_state: from.as_str().to_owned(),
                    to_state: to.as_str().to_owned(),
                    kind: "demotion".into(),
                    promotion_id: None,
                    actor: demoted_by,
                    reason: Some(reason),
                });
            }
            streams::INCIDENT => self.incident(ev, at, ev.payload_as().map_err(undecodable)?),
            streams::MEASUREMENT => {
                let MeasurementEvent::MinuteSummarized(m) = ev.payload_as().map_err(undecodable)?;
                self.sla_windows.push(SlaWindowRow {
                    position: ev.position as i64,
                    service: m.service,
                    version: m.version,
                    minute: m.minute.saturating_mul(1_000_000),
                    requests: i64::try_from(m.count).unwrap_or(i64::MAX),
                    errors: i64::try_from(m.errors).unwrap_or(i64::MAX),
                    approximate: m.approximate,
                });
            }
            streams::SLO => {
                let SloEvent::SloApplied {
                    slo, applied_by, ..
                } = ev.payload_as().map_err(undecodable)?;
                self.slo(ev, at, &slo, &applied_by);
            }
            _ => {}
        }
        Ok(())
    }

    fn promotion(&mut self, ev: &RecordedEvent, id: &str, at: i64, e: PromotionEvent) {
        match e {
            PromotionEvent::PromotionRequested(r) => {
                let requested_at = micros(r.requested_at);
                let mut plan = Vec::new();
                for t in &r.targets {
                    let deps = t.must_be_compliant();
                    self.promotion_targets.insert(
                        target_key(id, &t.service),
                        TargetRow {
                            promotion_id: id.to_owned(),
                            service: t.service.clone(),
                            version: t.version.clone(),
                            dependencies: deps.iter().copied().collect::<Vec<_>>().join(","),
                            requested_at,
                            started_at: None,
                            ended_at: None,
                            outcome: None,
                            already_compliant: false,
                            failed_check: None,
                            reason: None,
                            duration_ms: None,
                        },
                    );
                    plan.push((
                        t.service.clone(),
                        deps.into_iter().map(str::to_owned).collect(),
                    ));
                }
                self.plans.insert(id.to_owned(), plan);
                self.promotions.insert(
                    id.to_owned(),
                    PromotionRow {
                        promotion_id: id.to_owned(),
                        position: ev.position as i64,
                        requested_at,
                        requester: r.requester.clone(),
                        package: r.package.clone(),
                        impact: r.impact.as_str().to_owned(),
                        reason: r.reason.clone(),
                        policy_digest: r.policy_digest.clone(),
                        targets: r.targets.len() as i64,
                        completed_at: None,
                        outcome: None,
                        promoted: None,
                        failed: None,
                        blocked: None,
                        duration_ms: None,
                        first_started_at: None,
                        wall_ms: None,
                        critical_path_ms: None,
                        serial_ms: None,
                    },
                );
            }
            PromotionEvent::TargetStarted {
                service,
                at: started,
                ..
            } => {
                let started = micros(started);
                self.promotion_targets
                    .update(&target_key(id, &service), |t| t.started_at = Some(started));
                self.promotions.update(id, |p| {
                    p.first_started_at =
                        Some(p.first_started_at.map_or(started, |s| s.min(started)));
                });
            }
            PromotionEvent::GateEvaluated {
                service,
                version,
                gate,
                outcome,
                checks,
            } => {
                for c in checks {
                    self.gate_evaluations.push(GateRow {
                        position: ev.position as i64,
                        evaluated_at: at,
                        promotion_id: id.to_owned(),
                        service: service.clone(),
                        version: version.clone(),
                        gate: gate.as_str().to_owned(),
                        gate_outcome: tag(&outcome),
                        check: c.check.as_str().to_owned(),
                        outcome: tag(&c.outcome),
                        detail: c.detail,
                    });
                }
            }
            PromotionEvent::TargetTransitioned {
                service,
                version,
                from,
                to,
                ..
            } => self.compliance_transitions.push(TransitionRow {
                position: ev.position as i64,
                at,
                service,
                version,
                from_state: from.as_str().to_owned(),
                to_state: to.as_str().to_owned(),
                kind: "promotion".into(),
                promotion_id: Some(id.to_owned()),
                actor: ev.metadata.actor.clone(),
                reason: None,
            }),
            PromotionEvent::TargetPromoted {
                service,
                already_compliant,
                ..
            } => self.end_target(id, &service, at, "promoted", None, None, already_compliant),
            PromotionEvent::TargetFailed {
                service,
                check,
                reason,
                ..
            } => self.end_target(
                id,
                &service,
                at,
                "failed",
                check.map(|c| c.as_str().to_owned()),
                Some(reason),
                false,
            ),
            PromotionEvent::TargetBlocked {
                service, reason, ..
            } => self.end_target(id, &service, at, "blocked", None, Some(reason), false),
            PromotionEvent::PromotionCompleted {
                outcome,
                promoted,
                failed,
                blocked,
            } => {
                let (wall, critical, serial) = self.parallelism(id);
                self.promotions.update(id, |p| {
                    p.completed_at = Some(at);
                    p.outcome = Some(tag(&outcome));
                    p.promoted = Some(promoted.len() as i64);
                    p.failed = Some(failed.len() as i64);
                    p.blocked = Some(blocked.len() as i64);
                    p.duration_ms = Some(ms(p.requested_at, at));
                    p.wall_ms = wall;
                    p.critical_path_ms = critical;
                    p.serial_ms = serial;
                });
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn end_target(
        &mut self,
        id: &str,
        service: &str,
        at: i64,
        outcome: &str,
        check: Option<String>,
        reason: Option<String>,
        already_compliant: bool,
    ) {
        self.promotion_targets
            .update(&target_key(id, service), |t| {
                t.ended_at = Some(at);
                t.outcome = Some(outcome.to_owned());
                t.failed_check = check;
                t.reason = reason;
                t.already_compliant = already_compliant;
                t.duration_ms = t.started_at.map(|s| ms(s, at));
            });
    }

    /// Wall time of a promotion's targets (first start to last end), its critical path (the
    /// longest chain of target durations along dependencies within the promotion) and the sum
    /// of the durations. Efficiency = critical path / wall: 1.0 is as parallel as the
    /// dependencies allow.
    fn parallelism(&self, id: &str) -> (Option<i64>, Option<i64>, Option<i64>) {
        let Some(plan) = self.plans.get(id) else {
            return (None, None, None);
        };
        let mut finish: HashMap<&str, i64> = HashMap::new();
        let (mut first, mut last, mut serial) = (i64::MAX, i64::MIN, 0i64);
        // Targets are recorded in promotion order: dependencies before dependants.
        for (service, deps) in plan {
            let Some(t) = self.promotion_targets.get(&target_key(id, service)) else {
                continue;
            };
            let own = t.duration_ms.unwrap_or(0);
            serial += own;
            if let (Some(s), Some(e)) = (t.started_at, t.ended_at) {
                first = first.min(s);
                last = last.max(e);
            }
            let before = deps
                .iter()
                .filter_map(|d| finish.get(d.as_str()))
                .max()
                .copied()
                .unwrap_or(0);
            finish.insert(service, before + own);
        }
        let critical = finish.values().max().copied();
        let wall = (first <= last).then(|| ms(first, last));
        (wall, critical, Some(serial))
    }

    fn approval(&mut self, ev: &RecordedEvent, id: &str, at: i64, e: ApprovalEvent) {
        match e {
            ApprovalEvent::Requested {
                kind,
                subject,
                impact,
                requester,
                required_approvers,
                ..
            } => {
                self.approvals.insert(
                    id.to_owned(),
                    ApprovalRow {
                        approval_id: id.to_owned(),
                        position: ev.position as i64,
                        kind: tag(&kind),
                        subject,
                        impact: impact.as_str().to_owned(),
                        requester,
                        required_approvers: i64::from(required_approvers),
                        requested_at: at,
                        status: "pending".into(),
                        grants: 0,
                        approvers: String::new(),
                        refused_attempts: 0,
                        decided_at: None,
                        decided_by: None,
                        wait_ms: None,
                    },
                );
            }
            ApprovalEvent::Granted { approver, .. } => {
                self.approvals.update(id, |a| {
                    a.grants += 1;
                    if !a.approvers.is_empty() {
                        a.approvers.push(',');
                    }
                    a.approvers.push_str(&approver);
                });
            }
            ApprovalEvent::Approved { approvers } => {
                self.approvals.update(id, |a| {
                    a.status = "approved".into();
                    a.decided_at = Some(at);
                    a.decided_by = approvers.last().cloned();
                    a.wait_ms = Some(ms(a.requested_at, at));
                });
            }
            ApprovalEvent::Rejected { approver, .. } => {
                self.approvals.update(id, |a| {
                    a.status = "rejected".into();
                    a.decided_at = Some(at);
                    a.decided_by = Some(approver);
                    a.wait_ms = Some(ms(a.requested_at, at));
                });
            }
            ApprovalEvent::Refused { .. } => {
                self.approvals.update(id, |a| a.refused_attempts += 1);
            }
        }
    }

    /// An SLO (re)applied: its objectives replace the ones it had.
    fn slo(&mut self, ev: &RecordedEvent, at: i64, slo: &Slo, applied_by: &str) {
        let indicator = match slo.indicator {
            Indicator::Ratio => "ratio",
            Indicator::Latency { .. } => "latency",
        };
        for o in &slo.objectives {
            let row = SloObjectiveRow {
                slo: slo.name.clone(),
                objective: o.name.clone(),
                service: slo.service.clone(),
                indicator: indicator.into(),
                target: o.target,
                window_seconds: i64::try_from(slo.window_seconds).unwrap_or(i64::MAX),
                applied_at: at,
                applied_by: applied_by.to_owned(),
                position: ev.position as i64,
            };
            let key = format!("{}/{}", slo.name, o.name);
            if !self.slo_objectives.update(&key, |r| *r = row.clone()) {
                self.slo_objectives.insert(key, row);
            }
        }
    }

    fn incident(&mut self, ev: &RecordedEvent, at: i64, e: IncidentEvent) {
        let id = e.id().to_owned();
        let acknowledge = |i: &mut IncidentRow| {
            if i.time_to_acknowledge_ms.is_none() {
                i.time_to_acknowledge_ms = Some(ms(i.opened_at, at));
            }
        };
        match e {
            IncidentEvent::IncidentOpened {
                cause, report, by, ..
            } => {
                self.incidents.insert(
                    id.clone(),
                    IncidentRow {
                        incident_id: id,
                        position: ev.position as i64,
                        cause,
                        kind: tag(&report.kind),
                        severity: tag(&report.severity),
                        service: report.service,
                        title: report.title,
                        opened_by: by,
                        opened_at: at,
                        acknowledged_at: None,
                        mitigated_at: None,
                        resolved_at: None,
                        status: "open".into(),
                        recurrences: 0,
                        reopened: 0,
                        time_to_acknowledge_ms: None,
                        time_to_restore_ms: None,
                    },
                );
            }
            IncidentEvent::IncidentRecurred { .. } => {
                self.incidents.update(&id, |i| i.recurrences += 1);
            }
            IncidentEvent::IncidentAcknowledged { .. } => {
                self.incidents.update(&id, |i| {
                    i.acknowledged_at.get_or_insert(at);
                    if i.status == "open" {
                        i.status = "acknowledged".into();
                    }
                    acknowledge(i);
                });
            }
            IncidentEvent::IncidentAssigned { .. } | IncidentEvent::IncidentNoted { .. } => {}
            IncidentEvent::IncidentMitigated { .. } => {
                self.incidents.update(&id, |i| {
                    i.mitigated_at.get_or_insert(at);
                    i.status = "mitigated".into();
                    acknowledge(i);
                });
            }
            IncidentEvent::IncidentResolved { .. } => {
                self.incidents.update(&id, |i| {
                    i.resolved_at = Some(at);
                    i.status = "resolved".into();
                    acknowledge(i);
                    // Time to restore: to the first resolution (a reopening does not move it).
                    if i.time_to_restore_ms.is_none() {
                        i.time_to_restore_ms = Some(ms(i.opened_at, at));
                    }
                });
            }
            IncidentEvent::IncidentReopened { .. } => {
                self.incidents.update(&id, |i| {
                    i.status = "open".into();
                    i.reopened += 1;
                });
            }
        }
    }
}

fn data(def: &TableDef, batches: Vec<RecordBatch>) -> TableData {
    TableData {
        def: def.clone(),
        batches: batches.into(),
    }
}
