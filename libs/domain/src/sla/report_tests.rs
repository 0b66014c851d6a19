use super::incident::{IncidentEvent, IncidentReport, IncidentSeverity, IncidentType};
use super::measure::{summarize, Sample};
use super::report::*;
use crate::approval::{ApprovalEvent, ApprovalKind, ImpactLevel};
use crate::policy::Policy;
use crate::promotion::{PromotionEvent, PromotionOutcome, Requested, TargetSpec};
use time::{Duration, OffsetDateTime};

fn t0() -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + Duration::days(20_000)
}

/// Hands out positions in order, each at `t0 + minutes`.
#[derive(Default)]
struct Log(u64);

impl Log {
    fn at(&mut self, minutes: i64) -> Occurrence {
        self.0 += 1;
        Occurrence {
            cite: Cite {
                id: format!("ev-{}", self.0),
                position: self.0,
                digest: format!("{:064x}", self.0),
            },
            at: t0() + Duration::minutes(minutes),
        }
    }
}

fn requested(requester: &str) -> PromotionEvent {
    PromotionEvent::PromotionRequested(Box::new(Requested {
        targets: vec![TargetSpec {
            service: "service-a".into(),
            version: "1.0.0".into(),
            dependencies: vec![],
            required: vec![],
            optional: vec![],
            evidence_refs: vec![],
            owner: None,
        }],
        requester: requester.into(),
        requester_teams: Vec::new(),
        package: None,
        approval_id: None,
        impact: ImpactLevel::Medium,
        policy: Policy::default_policy(),
        policy_digest: "abc".into(),
        reason: String::new(),
        requested_at: t0(),
    }))
}

fn completed(outcome: PromotionOutcome) -> PromotionEvent {
    PromotionEvent::PromotionCompleted {
        outcome,
        promoted: vec![],
        failed: vec![],
        blocked: vec![],
    }
}

fn incident_opened(id: &str) -> IncidentEvent {
    IncidentEvent::IncidentOpened {
        id: id.into(),
        cause: format!("c-{id}"),
        report: IncidentReport {
            kind: IncidentType::SlaBreach,
            severity: IncidentSeverity::Critical,
            title: "burning".into(),
            service: Some("service-a".into()),
            caused_by: vec![],
        },
        by: "goose-sla".into(),
    }
}

fn issue() -> Issue {
    Issue {
        by: "audra".into(),
        at: t0() + Duration::days(2),
        as_of_position: 99,
    }
}

#[test]
fn promotions_count_by_outcome_and_lead_time_within_the_period() {
    let mut log = Log::default();
    let mut l = ReportLedger::default();
    l.promotion("p1", &requested("olga"), log.at(10));
    l.promotion("p1", &completed(PromotionOutcome::Succeeded), log.at(40));
    l.promotion("p2", &requested("olga"), log.at(50));
    l.promotion("p2", &completed(PromotionOutcome::Failed), log.at(60));
    // Completed after the period: unfinished in it.
    l.promotion("p3", &requested("olga"), log.at(70));
    l.promotion("p3", &completed(PromotionOutcome::Succeeded), log.at(200));
    // Requested before the period: not in it.
    l.promotion("p0", &requested("olga"), log.at(-10));
    let r = l.build(
        t0(),
        t0() + Duration::minutes(120),
        vec![],
        ChainSection::default(),
        issue(),
    );
    let p = &r.promotions;
    assert_eq!(
        (p.requested, p.succeeded, p.failed, p.unfinished),
        (3, 1, 1, 1)
    );
    assert_eq!(p.lead_time.count, 2);
    assert_eq!(p.lead_time.mean_seconds, Some(20.0 * 60.0));
    assert_eq!(p.lead_time.max_seconds, Some(30.0 * 60.0));
    assert_eq!(p.items[0].cites, vec![1, 2]);
    assert_eq!(p.items[2].outcome, "unfinished");
    // Every cited position is listed once, with its digest.
    let listed: Vec<u64> = r.cited_events.iter().map(|c| c.position).collect();
    assert_eq!(listed, vec![1, 2, 3, 4, 5]);
}

#[test]
fn approvals_show_deciders_and_whether_segregation_of_duties_held() {
    let mut log = Log::default();
    let mut l = ReportLedger::default();
    let req = |requester: &str, required| ApprovalEvent::Requested {
        kind: ApprovalKind::Promotion,
        subject: "promotion/x".into(),
        impact: ImpactLevel::High,
        requester: requester.into(),
        required_approvers: required,
        reason: String::new(),
        owner_teams: Vec::new(),
    };
    l.approval("a1", &req("olga", 2), log.at(1));
    l.approval(
        "a1",
        &ApprovalEvent::Refused {
            actor: "olga".into(),
            action: "approve".into(),
            reason: "segregation of duties".into(),
        },
        log.at(2),
    );
    for (who, m) in [("ann", 3), ("bob", 5)] {
        l.approval(
            "a1",
            &ApprovalEvent::Granted {
                approver: who.into(),
                comment: String::new(),
                approver_teams: Vec::new(),
            },
            log.at(m),
        );
    }
    l.approval(
        "a1",
        &ApprovalEvent::Approved {
            approvers: vec!["ann".into(), "bob".into()],
        },
        log.at(5),
    );
    l.approval("a2", &req("olga", 1), log.at(10));
    let r = l.build(
        t0(),
        t0() + Duration::hours(1),
        vec![],
        ChainSection::default(),
        issue(),
    );
    let a = &r.approvals;
    assert_eq!((a.requested, a.approved, a.pending), (2, 1, 1));
    assert!(a.segregation_of_duties_held);
    assert_eq!(a.items[0].deciders, vec!["ann", "bob"]);
    assert_eq!(a.items[0].wait_seconds, Some(240.0));
    assert_eq!(a.refused_attempts.len(), 1);
    assert_eq!(a.refused_attempts[0].actor, "olga");

    // A grant by the requester (as a superuser's forged event would be) breaks it.
    l.approval(
        "a2",
        &ApprovalEvent::Granted {
            approver: "olga".into(),
            comment: String::new(),
            approver_teams: Vec::new(),
        },
        log.at(11),
    );
    l.approval(
        "a2",
        &ApprovalEvent::Approved {
            approvers: vec!["olga".into()],
        },
        log.at(11),
    );
    let r = l.build(
        t0(),
        t0() + Duration::hours(1),
        vec![],
        ChainSection::default(),
        issue(),
    );
    assert!(!r.approvals.segregation_of_duties_held);
    assert!(!r.approvals.items[1].segregation_of_duties_held);
}

#[test]
fn mtta_and_mttr_come_from_the_incident_timeline() {
    let mut log = Log::default();
    let mut l = ReportLedger::default();
    l.incident(&incident_opened("i1"), log.at(0));
    l.incident(
        &IncidentEvent::IncidentAcknowledged {
            id: "i1".into(),
            by: "sre".into(),
        },
        log.at(4),
    );
    l.incident(
        &IncidentEvent::IncidentResolved {
            id: "i1".into(),
            note: "fixed".into(),
            by: "sre".into(),
        },
        log.at(30),
    );
    // Resolved directly: the resolution acknowledges it too.
    l.incident(&incident_opened("i2"), log.at(10));
    l.incident(
        &IncidentEvent::IncidentResolved {
            id: "i2".into(),
            note: "fixed".into(),
            by: "sre".into(),
        },
        log.at(20),
    );
    // Still open at the end.
    l.incident(&incident_opened("i3"), log.at(50));
    let r = l.build(
        t0(),
        t0() + Duration::hours(1),
        vec![],
        ChainSection::default(),
        issue(),
    );
    let i = &r.incidents;
    assert_eq!((i.opened, i.resolved, i.unresolved), (3, 2, 1));
    assert_eq!(i.mtta.mean_seconds, Some((4.0 + 10.0) / 2.0 * 60.0));
    assert_eq!(i.mttr.mean_seconds, Some((30.0 + 10.0) / 2.0 * 60.0));
    assert_eq!(i.by_type.get("sla_breach"), Some(&3));
    assert_eq!(i.items[2].status, "open");
    assert_eq!(i.items[0].cites, vec![1, 2, 3]);
}

#[test]
fn sla_attainment_covers_the_period_and_cites_its_summaries() {
    let slo = super::openslo::parse(
        "apiVersion: openslo/v1
kind: SLO
metadata: {name: a-availability}
spec:
  service: service-a
  budgetingMethod: Occurrences
  timeWindow: [{duration: 30d, isRolling: true}]
  indicator:
    metadata: {name: a-requests}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: golden-goose, spec: {signal: requests}}}
        total: {metricSource: {type: golden-goose, spec: {signal: requests}}}
  objectives: [{displayName: availability, target: 0.99}]
",
    )
    .expect("slo")
    .remove(0);
    let start = t0().unix_timestamp();
    let samples: Vec<Sample> = (0..120)
        .map(|k| Sample {
            at: t0() + Duration::seconds(k * 30),
            latency_ms: 10.0,
            status: Some(if k % 10 == 0 { 500 } else { 200 }),
            ok: None,
        })
        .collect();
    let mut log = Log::default();
    let summaries: Vec<_> = summarize("service-a", &samples)
        .expect("summaries")
        .into_iter()
        .map(|s| (s, log.at(0).cite))
        .collect();
    let applied = log.at(0).cite;
    // The first half hour of the hour measured.
    let (item, cited) = sla_section(
        &slo,
        1,
        &applied,
        &summaries,
        t0(),
        t0() + Duration::minutes(30),
    )
    .expect("section");
    assert_eq!(item.requests, 60);
    assert_eq!(item.errors, 6);
    assert_eq!(item.objectives[0].good, 54);
    assert_eq!(item.objectives[0].met, Some(false));
    assert_eq!(item.summaries.count, 30);
    assert_eq!(item.summaries.first, Some(1));
    assert_eq!(item.summaries.last, Some(30));
    assert_eq!(cited.len(), 3);
    let mut l = ReportLedger::default();
    l.alert(
        &super::AlertEvent::AlertFired {
            slo: slo.name.clone(),
            service: "service-a".into(),
            objective: "availability".into(),
            alert: "page".into(),
            factor: 14.4,
            long_burn_rate: Some(20.0),
            short_burn_rate: Some(20.0),
            at: start + 600,
        },
        log.at(10),
    );
    let r = l.build(
        t0(),
        t0() + Duration::minutes(30),
        vec![(item, cited)],
        ChainSection::default(),
        issue(),
    );
    assert_eq!(r.sla[0].violations, 1);
    assert_eq!(r.violations[0].cites, vec![log.0]);
    assert!(r
        .cited_events
        .iter()
        .any(|c| c.position == applied.position));
}

#[test]
fn a_period_must_be_ordered_and_past() {
    let now = t0();
    assert!(check_period(now - Duration::days(1), now, now).is_ok());
    assert!(check_period(now, now, now).is_err());
    assert!(check_period(now - Duration::days(1), now + Duration::hours(1), now).is_err());
}
