//! Compliance reports for a period `[from, to)`: promotions (requested, outcomes, lead
//! times), approvals (who, whether segregation of duties held), SLA attainment per SLO,
//! violations, demotions, incidents (MTTA, MTTR) — each figure citing the ledger events it came from, so
//! a reader holding inclusion proofs of those events can re-check it.
//!
//! [`ReportLedger`] is fed every relevant event with its citation and time (the sla service's
//! read model does that); [`ReportLedger::build`] is a pure function of what it holds, the
//! period and the SLO sections the caller computed with [`sla_section`]. Only events recorded
//! before `to` count: a report of a past period does not change as the log grows.
//!
//! Definitions (docs/sla.md, "Compliance reports"):
//! - lead time: `PromotionRequested` to `PromotionCompleted`, for promotions requested and
//!   completed in the period;
//! - time to acknowledge: `IncidentOpened` to the first acknowledgement, mitigation or
//!   resolution (whichever comes first); time to resolve: to the first `IncidentResolved`;
//!   MTTA / MTTR are their means over the incidents opened in the period that got there
//!   before `to`;
//! - segregation of duties held: no approver of a request is its requester, and an approved
//!   request has as many distinct approvers as it required.

use super::incident::{IncidentEvent, IncidentStatus};
use super::measure::{BadMeasurement, MinuteSummary, Window};
use super::openslo::Slo;
use super::AlertEvent;
use crate::approval::ApprovalEvent;
use crate::promotion::{PromotionEvent, PromotionOutcome};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;

/// The report's schema name.
pub const SCHEMA: &str = "golden-goose/compliance-report/v1";
/// The DSSE payload type of a signed report.
pub const PAYLOAD_TYPE: &str = "application/vnd.golden-goose.compliance-report+json";

/// A ledger event a figure rests on: its id, position and record digest (hex), what an
/// inclusion proof is checked against.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
pub struct Cite {
    pub id: String,
    pub position: u64,
    pub digest: String,
}

/// A cited event and when it was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Occurrence {
    pub cite: Cite,
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PromotionRecord {
    requester: String,
    targets: Vec<String>,
    requested: Occurrence,
    completed: Option<(PromotionOutcome, Occurrence)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ApprovalRecord {
    kind: String,
    subject: String,
    requester: String,
    impact: String,
    required: u8,
    requested: Occurrence,
    grants: Vec<(String, Occurrence)>,
    decision: Option<(String, Occurrence)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct IncidentRecord {
    kind: String,
    severity: String,
    title: String,
    service: Option<String>,
    opened: Occurrence,
    /// Every later step: (new status, when).
    steps: Vec<(IncidentStatus, Occurrence)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Refusal {
    request: String,
    actor: String,
    action: String,
    reason: String,
    at: Occurrence,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Demotion {
    service: String,
    version: String,
    from: String,
    to: String,
    reason: String,
    by: String,
    at: Occurrence,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Violation {
    slo: String,
    service: String,
    objective: String,
    alert: String,
    factor: f64,
    at: Occurrence,
}

/// The events reports are made of, as recorded (kept in read-model snapshots: serde).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReportLedger {
    promotions: BTreeMap<String, PromotionRecord>,
    approvals: BTreeMap<String, ApprovalRecord>,
    refusals: Vec<Refusal>,
    violations: Vec<Violation>,
    incidents: BTreeMap<String, IncidentRecord>,
    demotions: Vec<Demotion>,
}

impl ReportLedger {
    /// An event of promotion `id`.
    pub fn promotion(&mut self, id: &str, e: &PromotionEvent, o: Occurrence) {
        match e {
            PromotionEvent::PromotionRequested(r) => {
                self.promotions.insert(
                    id.to_owned(),
                    PromotionRecord {
                        requester: r.requester.clone(),
                        targets: r
                            .targets
                            .iter()
                            .map(|t| format!("{}@{}", t.service, t.version))
                            .collect(),
                        requested: o,
                        completed: None,
                    },
                );
            }
            PromotionEvent::PromotionCompleted { outcome, .. } => {
                if let Some(p) = self.promotions.get_mut(id) {
                    p.completed = Some((*outcome, o));
                }
            }
            _ => {}
        }
    }

    /// An event of approval request `id`.
    pub fn approval(&mut self, id: &str, e: &ApprovalEvent, o: Occurrence) {
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
                    ApprovalRecord {
                        kind: json_name(kind),
                        subject: subject.clone(),
                        requester: requester.clone(),
                        impact: json_name(impact),
                        required: *required_approvers,
                        requested: o,
                        grants: Vec::new(),
                        decision: None,
                    },
                );
            }
            ApprovalEvent::Granted { approver, .. } => {
                if let Some(a) = self.approvals.get_mut(id) {
                    a.grants.push((approver.clone(), o));
                }
            }
            ApprovalEvent::Approved { .. } => {
                if let Some(a) = self.approvals.get_mut(id) {
                    a.decision = Some(("approved".to_owned(), o));
                }
            }
            ApprovalEvent::Rejected { approver, .. } => {
                if let Some(a) = self.approvals.get_mut(id) {
                    a.grants.push((approver.clone(), o.clone()));
                    a.decision = Some(("rejected".to_owned(), o));
                }
            }
            ApprovalEvent::Refused {
                actor,
                action,
                reason,
            } => self.refusals.push(Refusal {
                request: id.to_owned(),
                actor: actor.clone(),
                action: action.clone(),
                reason: reason.clone(),
                at: o,
            }),
        }
    }

    /// A compliance event (a demotion).
    pub fn compliance(&mut self, e: &crate::demotion::ComplianceEvent, o: Occurrence) {
        let crate::demotion::ComplianceEvent::VersionDemoted {
            service,
            version,
            from,
            to,
            reason,
            demoted_by,
            ..
        } = e;
        self.demotions.push(Demotion {
            service: service.clone(),
            version: version.clone(),
            from: json_name(from),
            to: json_name(to),
            reason: reason.clone(),
            by: demoted_by.clone(),
            at: o,
        });
    }

    /// An SLO alert event: a firing one is a violation.
    pub fn alert(&mut self, e: &AlertEvent, o: Occurrence) {
        if let AlertEvent::AlertFired {
            slo,
            service,
            objective,
            alert,
            factor,
            ..
        } = e
        {
            self.violations.push(Violation {
                slo: slo.clone(),
                service: service.clone(),
                objective: objective.clone(),
                alert: alert.clone(),
                factor: *factor,
                at: o,
            });
        }
    }

    /// An incident event.
    pub fn incident(&mut self, e: &IncidentEvent, o: Occurrence) {
        let step = match e {
            IncidentEvent::IncidentOpened { id, report, .. } => {
                self.incidents.insert(
                    id.clone(),
                    IncidentRecord {
                        kind: json_name(&report.kind),
                        severity: json_name(&report.severity),
                        title: report.title.clone(),
                        service: report.service.clone(),
                        opened: o,
                        steps: Vec::new(),
                    },
                );
                return;
            }
            IncidentEvent::IncidentAcknowledged { .. } => IncidentStatus::Acknowledged,
            IncidentEvent::IncidentMitigated { .. } => IncidentStatus::Mitigated,
            IncidentEvent::IncidentResolved { .. } => IncidentStatus::Resolved,
            IncidentEvent::IncidentReopened { .. } => IncidentStatus::Open,
            IncidentEvent::IncidentRecurred { .. }
            | IncidentEvent::IncidentAssigned { .. }
            | IncidentEvent::IncidentNoted { .. } => return,
        };
        if let Some(i) = self.incidents.get_mut(e.id()) {
            i.steps.push((step, o));
        }
    }
}

/// Figures in seconds over a set of durations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Durations {
    pub count: usize,
    pub mean_seconds: Option<f64>,
    pub p50_seconds: Option<f64>,
    pub p90_seconds: Option<f64>,
    pub max_seconds: Option<f64>,
}

impl Durations {
    fn of(mut xs: Vec<f64>) -> Self {
        xs.sort_by(f64::total_cmp);
        // Nearest rank: the smallest value with at least q of the values at or below it.
        let rank = |q: f64| {
            (!xs.is_empty())
                .then(|| xs[((q * xs.len() as f64).ceil() as usize).clamp(1, xs.len()) - 1])
        };
        Self {
            count: xs.len(),
            mean_seconds: (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64),
            p50_seconds: rank(0.5),
            p90_seconds: rank(0.9),
            max_seconds: xs.last().copied(),
        }
    }
}

/// One promotion requested in the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PromotionItem {
    pub id: String,
    pub requester: String,
    pub targets: Vec<String>,
    pub requested_at: String,
    /// succeeded, partially_succeeded, failed — or unfinished at the period's end.
    pub outcome: String,
    pub completed_at: Option<String>,
    pub lead_time_seconds: Option<f64>,
    /// Positions of the cited events.
    pub cites: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PromotionsSection {
    pub requested: usize,
    pub succeeded: usize,
    pub partially_succeeded: usize,
    pub failed: usize,
    pub unfinished: usize,
    pub lead_time: Durations,
    pub items: Vec<PromotionItem>,
}

/// One approval request made in the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApprovalItem {
    pub id: String,
    pub kind: String,
    pub subject: String,
    pub impact: String,
    pub requester: String,
    pub required_approvers: u8,
    /// Who decided, in order (a rejection included).
    pub deciders: Vec<String>,
    /// approved, rejected — or pending at the period's end.
    pub decision: String,
    pub segregation_of_duties_held: bool,
    pub wait_seconds: Option<f64>,
    pub cites: Vec<u64>,
}

/// An approval action the rules refused (self-approval, a missing permission, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RefusedAttempt {
    pub request: String,
    pub actor: String,
    pub action: String,
    pub reason: String,
    pub at: String,
    pub cites: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApprovalsSection {
    pub requested: usize,
    pub approved: usize,
    pub rejected: usize,
    pub pending: usize,
    /// True when it held for every request of the period.
    pub segregation_of_duties_held: bool,
    pub wait: Durations,
    pub items: Vec<ApprovalItem>,
    pub refused_attempts: Vec<RefusedAttempt>,
}

/// One objective's attainment over the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ObjectiveAttainment {
    pub name: String,
    pub target: f64,
    pub good: u64,
    pub total: u64,
    /// good / total (None: no requests in the period).
    pub attainment: Option<f64>,
    pub met: Option<bool>,
}

/// The minute summaries a figure sums: how many, the first and last (cited) and the SHA3-256
/// of their record digests in position order, so anyone reading the log can re-derive it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SummariesCited {
    pub count: usize,
    pub first: Option<u64>,
    pub last: Option<u64>,
    pub digests_sha3_256: String,
}

/// An SLO over the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SlaItem {
    pub slo: String,
    pub service: String,
    /// The SLO's version (stream version) the figures use.
    pub version: u64,
    pub requests: u64,
    pub errors: u64,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub approximate_latency: bool,
    pub objectives: Vec<ObjectiveAttainment>,
    /// Violations (burn-rate alerts that fired) in the period.
    pub violations: usize,
    pub summaries: SummariesCited,
    pub cites: Vec<u64>,
}

/// A compliant version demoted in the period (by hand, or on a critical SLA breach).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DemotionItem {
    pub service: String,
    pub version: String,
    pub from: String,
    pub to: String,
    pub reason: String,
    pub by: String,
    pub at: String,
    pub cites: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ViolationItem {
    pub slo: String,
    pub service: String,
    pub objective: String,
    pub alert: String,
    pub factor: f64,
    pub at: String,
    pub cites: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IncidentItem {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub severity: String,
    pub title: String,
    pub service: Option<String>,
    /// Its status at the period's end.
    pub status: String,
    pub opened_at: String,
    pub time_to_acknowledge_seconds: Option<f64>,
    pub time_to_resolve_seconds: Option<f64>,
    pub cites: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IncidentsSection {
    pub opened: usize,
    pub resolved: usize,
    pub unresolved: usize,
    pub by_type: BTreeMap<String, usize>,
    pub by_severity: BTreeMap<String, usize>,
    /// Mean time to acknowledge.
    pub mtta: Durations,
    /// Mean time to resolve.
    pub mttr: Durations,
    pub items: Vec<IncidentItem>,
}

/// The chain as the issuing service saw it (see the service's documentation).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChainSection {
    /// Events in the log when the report was issued.
    pub log_size: u64,
    /// The newest signed checkpoint (its C2SP note, with any witness cosignatures).
    pub checkpoint: Option<String>,
    pub checkpoint_size: Option<u64>,
    /// Events the issuing service verified from the start (digests, links, signatures,
    /// Merkle nodes) up to a checkpoint signed by the log key; None: not configured.
    pub verified_up_to: Option<u64>,
    /// The first verification failure, if any.
    pub verify_failure: Option<String>,
    /// Checkpoint rows that the log key did not sign (someone wrote them into the database).
    #[serde(default)]
    pub intrusions: Vec<String>,
}

/// A compliance report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Report {
    pub schema: String,
    pub from: String,
    pub to: String,
    /// Events the issuing service had read when it built the report.
    pub as_of_position: u64,
    pub issued_at: String,
    pub issued_by: String,
    pub promotions: PromotionsSection,
    pub approvals: ApprovalsSection,
    pub sla: Vec<SlaItem>,
    pub violations: Vec<ViolationItem>,
    /// Compliant versions demoted in the period.
    #[serde(default)]
    pub demotions: Vec<DemotionItem>,
    pub incidents: IncidentsSection,
    pub chain: ChainSection,
    /// Every event a figure cites, by position.
    pub cited_events: Vec<Cite>,
}

/// A period that cannot be reported on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadPeriod(pub String);

/// Checks `[from, to)` against `now`.
pub fn check_period(
    from: OffsetDateTime,
    to: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<(), BadPeriod> {
    if from >= to {
        return Err(BadPeriod(format!("from ({from}) must be before to ({to})")));
    }
    if to > now + time::Duration::seconds(1) {
        return Err(BadPeriod(format!(
            "to ({to}) is in the future: a report states what has been recorded"
        )));
    }
    Ok(())
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn seconds(from: OffsetDateTime, to: OffsetDateTime) -> f64 {
    (to - from).as_seconds_f64()
}

/// Collects cited events.
#[derive(Default)]
struct Cites(BTreeMap<u64, Cite>);

impl Cites {
    fn take<'a>(&mut self, os: impl IntoIterator<Item = &'a Occurrence>) -> Vec<u64> {
        os.into_iter()
            .map(|o| {
                self.0.insert(o.cite.position, o.cite.clone());
                o.cite.position
            })
            .collect()
    }
}

/// The figures of one SLO over `[from, to)` from its service's summaries (each with its
/// citation, in position order) and the violations recorded; `applied` cites the SLO version.
pub fn sla_section(
    slo: &Slo,
    version: u64,
    applied: &Cite,
    summaries: &[(MinuteSummary, Cite)],
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<(SlaItem, Vec<Cite>), BadMeasurement> {
    use sha3::Digest as _;
    let (f, t) = (from.unix_timestamp(), to.unix_timestamp());
    let chosen: Vec<&(MinuteSummary, Cite)> = summaries
        .iter()
        .filter(|(s, _)| s.minute >= f && s.minute < t)
        .collect();
    let (w, _) = Window::of(chosen.iter().map(|(s, _)| s), f, t)?;
    let objectives = slo
        .objectives
        .iter()
        .enumerate()
        .map(|(k, o)| {
            let (good, total) = super::status::good_total(slo, k, &w);
            let attainment = (total > 0).then(|| good as f64 / total as f64);
            ObjectiveAttainment {
                name: o.name.clone(),
                target: o.target,
                good,
                total,
                met: attainment.map(|a| a >= o.target),
                attainment,
            }
        })
        .collect();
    let mut hasher = sha3::Sha3_256::new();
    for (_, c) in &chosen {
        hasher.update(c.digest.as_bytes());
        hasher.update(b"\n");
    }
    let first = chosen.first().map(|(_, c)| c.clone());
    let last = chosen.last().map(|(_, c)| c.clone());
    let mut cites = vec![applied.clone()];
    cites.extend(first.iter().cloned());
    cites.extend(last.iter().cloned());
    Ok((
        SlaItem {
            slo: slo.name.clone(),
            service: slo.service.clone(),
            version,
            requests: w.count,
            errors: w.errors,
            p95_ms: w.percentile_ms(0.95),
            p99_ms: w.percentile_ms(0.99),
            approximate_latency: w.approximate,
            objectives,
            violations: 0,
            summaries: SummariesCited {
                count: chosen.len(),
                first: first.map(|c| c.position),
                last: last.map(|c| c.position),
                digests_sha3_256: hex::encode(hasher.finalize()),
            },
            cites: cites
                .iter()
                .map(|c| c.position)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
        },
        cites,
    ))
}

/// Who issued a report, when, and what they had read.
#[derive(Debug, Clone)]
pub struct Issue {
    pub by: String,
    pub at: OffsetDateTime,
    pub as_of_position: u64,
}

impl ReportLedger {
    /// The report of `[from, to)`: the SLO sections (from [`sla_section`]) and the chain
    /// section are the caller's; everything else comes from the recorded events.
    pub fn build(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        sla: Vec<(SlaItem, Vec<Cite>)>,
        chain: ChainSection,
        issue: Issue,
    ) -> Report {
        let within = |o: &Occurrence| o.at >= from && o.at < to;
        let before_end = |o: &Occurrence| o.at < to;
        let mut cites = Cites::default();

        // Promotions requested in the period.
        let mut promotions = PromotionsSection {
            requested: 0,
            succeeded: 0,
            partially_succeeded: 0,
            failed: 0,
            unfinished: 0,
            lead_time: Durations::of(Vec::new()),
            items: Vec::new(),
        };
        let mut lead = Vec::new();
        let mut by_time: Vec<(&String, &PromotionRecord)> = self
            .promotions
            .iter()
            .filter(|(_, p)| within(&p.requested))
            .collect();
        by_time.sort_by_key(|(_, p)| p.requested.cite.position);
        for (id, p) in by_time {
            promotions.requested += 1;
            let done = p.completed.as_ref().filter(|(_, o)| before_end(o));
            let outcome = match done.map(|(k, _)| *k) {
                Some(PromotionOutcome::Succeeded) => {
                    promotions.succeeded += 1;
                    "succeeded"
                }
                Some(PromotionOutcome::PartiallySucceeded) => {
                    promotions.partially_succeeded += 1;
                    "partially_succeeded"
                }
                Some(PromotionOutcome::Failed) => {
                    promotions.failed += 1;
                    "failed"
                }
                None => {
                    promotions.unfinished += 1;
                    "unfinished"
                }
            };
            let lead_time = done.map(|(_, o)| seconds(p.requested.at, o.at));
            lead.extend(lead_time);
            promotions.items.push(PromotionItem {
                id: id.clone(),
                requester: p.requester.clone(),
                targets: p.targets.clone(),
                requested_at: rfc3339(p.requested.at),
                outcome: outcome.to_owned(),
                completed_at: done.map(|(_, o)| rfc3339(o.at)),
                lead_time_seconds: lead_time,
                cites: cites.take(std::iter::once(&p.requested).chain(done.map(|(_, o)| o))),
            });
        }
        promotions.lead_time = Durations::of(lead);

        // Approval requests made in the period.
        let mut approvals = ApprovalsSection {
            requested: 0,
            approved: 0,
            rejected: 0,
            pending: 0,
            segregation_of_duties_held: true,
            wait: Durations::of(Vec::new()),
            items: Vec::new(),
            refused_attempts: Vec::new(),
        };
        let mut waits = Vec::new();
        let mut reqs: Vec<(&String, &ApprovalRecord)> = self
            .approvals
            .iter()
            .filter(|(_, a)| within(&a.requested))
            .collect();
        reqs.sort_by_key(|(_, a)| a.requested.cite.position);
        for (id, a) in reqs {
            approvals.requested += 1;
            let grants: Vec<&(String, Occurrence)> =
                a.grants.iter().filter(|(_, o)| before_end(o)).collect();
            let decision = a.decision.as_ref().filter(|(_, o)| before_end(o));
            let deciders: Vec<String> = grants.iter().map(|(who, _)| who.clone()).collect();
            let distinct: BTreeSet<&String> = deciders.iter().collect();
            let sod = !distinct.contains(&a.requester)
                && (decision.map(|(d, _)| d.as_str()) != Some("approved")
                    || distinct.len() >= usize::from(a.required));
            approvals.segregation_of_duties_held &= sod;
            let label = match decision.map(|(d, _)| d.as_str()) {
                Some("approved") => {
                    approvals.approved += 1;
                    "approved"
                }
                Some(_) => {
                    approvals.rejected += 1;
                    "rejected"
                }
                None => {
                    approvals.pending += 1;
                    "pending"
                }
            };
            let wait = decision.map(|(_, o)| seconds(a.requested.at, o.at));
            waits.extend(wait);
            approvals.items.push(ApprovalItem {
                id: id.clone(),
                kind: a.kind.clone(),
                subject: a.subject.clone(),
                impact: a.impact.clone(),
                requester: a.requester.clone(),
                required_approvers: a.required,
                deciders,
                decision: label.to_owned(),
                segregation_of_duties_held: sod,
                wait_seconds: wait,
                cites: cites.take(
                    std::iter::once(&a.requested)
                        .chain(grants.iter().map(|(_, o)| o))
                        .chain(decision.map(|(_, o)| o)),
                ),
            });
        }
        approvals.wait = Durations::of(waits);
        for r in self.refusals.iter().filter(|r| within(&r.at)) {
            approvals.refused_attempts.push(RefusedAttempt {
                request: r.request.clone(),
                actor: r.actor.clone(),
                action: r.action.clone(),
                reason: r.reason.clone(),
                at: rfc3339(r.at.at),
                cites: cites.take([&r.at]),
            });
        }

        // Violations, and the SLO sections with their counts.
        let violations: Vec<ViolationItem> = self
            .violations
            .iter()
            .filter(|v| within(&v.at))
            .map(|v| ViolationItem {
                slo: v.slo.clone(),
                service: v.service.clone(),
                objective: v.objective.clone(),
                alert: v.alert.clone(),
                factor: v.factor,
                at: rfc3339(v.at.at),
                cites: cites.take([&v.at]),
            })
            .collect();
        let sla = sla
            .into_iter()
            .map(|(mut item, cited)| {
                item.violations = violations.iter().filter(|v| v.slo == item.slo).count();
                for c in cited {
                    cites.0.insert(c.position, c);
                }
                item
            })
            .collect();

        let demotions = self
            .demotions
            .iter()
            .filter(|d| within(&d.at))
            .map(|d| DemotionItem {
                service: d.service.clone(),
                version: d.version.clone(),
                from: d.from.clone(),
                to: d.to.clone(),
                reason: d.reason.clone(),
                by: d.by.clone(),
                at: rfc3339(d.at.at),
                cites: cites.take([&d.at]),
            })
            .collect();

        // Incidents opened in the period.
        let mut incidents = IncidentsSection {
            opened: 0,
            resolved: 0,
            unresolved: 0,
            by_type: BTreeMap::new(),
            by_severity: BTreeMap::new(),
            mtta: Durations::of(Vec::new()),
            mttr: Durations::of(Vec::new()),
            items: Vec::new(),
        };
        let (mut tta, mut ttr) = (Vec::new(), Vec::new());
        let mut opened: Vec<(&String, &IncidentRecord)> = self
            .incidents
            .iter()
            .filter(|(_, i)| within(&i.opened))
            .collect();
        opened.sort_by_key(|(_, i)| i.opened.cite.position);
        for (id, i) in opened {
            incidents.opened += 1;
            *incidents.by_type.entry(i.kind.clone()).or_default() += 1;
            *incidents.by_severity.entry(i.severity.clone()).or_default() += 1;
            let steps: Vec<&(IncidentStatus, Occurrence)> =
                i.steps.iter().filter(|(_, o)| before_end(o)).collect();
            let acked = steps.iter().find(|(s, _)| *s != IncidentStatus::Open);
            let resolved = steps.iter().find(|(s, _)| *s == IncidentStatus::Resolved);
            let status = steps.last().map_or(IncidentStatus::Open, |(s, _)| *s);
            if status == IncidentStatus::Resolved {
                incidents.resolved += 1;
            } else {
                incidents.unresolved += 1;
            }
            let a = acked.map(|(_, o)| seconds(i.opened.at, o.at));
            let r = resolved.map(|(_, o)| seconds(i.opened.at, o.at));
            tta.extend(a);
            ttr.extend(r);
            incidents.items.push(IncidentItem {
                id: id.clone(),
                kind: i.kind.clone(),
                severity: i.severity.clone(),
                title: i.title.clone(),
                service: i.service.clone(),
                status: json_name(&status),
                opened_at: rfc3339(i.opened.at),
                time_to_acknowledge_seconds: a,
                time_to_resolve_seconds: r,
                cites: cites.take(
                    std::iter::once(&i.opened)
                        .chain(acked.map(|(_, o)| o))
                        .chain(resolved.map(|(_, o)| o)),
                ),
            });
        }
        incidents.mtta = Durations::of(tta);
        incidents.mttr = Durations::of(ttr);

        Report {
            schema: SCHEMA.to_owned(),
            from: rfc3339(from),
            to: rfc3339(to),
            as_of_position: issue.as_of_position,
            issued_at: rfc3339(issue.at),
            issued_by: issue.by,
            promotions,
            approvals,
            sla,
            violations,
            demotions,
            incidents,
            chain,
            cited_events: cites.0.into_values().collect(),
        }
    }
}

/// An enum value as its JSON spells it.
fn json_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// Events of `report/<uuid>`: a compliance report, signed by the issuing service's key (a DSSE
/// envelope whose payload is the report's JSON) — the report itself is on the chain, and its
/// digest is what a reader of a copy checks it against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type")]
pub enum ReportEvent {
    ReportIssued {
        from: String,
        to: String,
        as_of_position: u64,
        /// SHA3-256 (hex) of the signed payload (the report's JSON bytes).
        report_digest: String,
        envelope: crate::package::Envelope,
        issued_by: String,
    },
}

impl ReportEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::ReportIssued { .. } => "ReportIssued",
        }
    }
}

/// A report stream's aggregate: whether it was issued (a report id is used once).
#[derive(Debug, Clone, Default)]
pub struct ReportState {
    pub issued: bool,
}

impl ReportState {
    pub fn apply(&mut self, _e: &ReportEvent) {
        self.issued = true;
    }
}
