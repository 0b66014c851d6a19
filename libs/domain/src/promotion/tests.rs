use super::*;
use crate::evidence::CoverageSummary;
use crate::gates::{DependencyFact, FactRef};
use crate::policy::GateType;
use proptest::prelude::*;

fn t0() -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000)
}

fn request(targets: Vec<TargetSpec>, policy: Policy) -> Promotion {
    let mut p = Promotion::default();
    p.apply(&PromotionEvent::PromotionRequested(Box::new(Requested {
        targets,
        requester: "olga".into(),
        requester_teams: Vec::new(),
        package: None,
        approval_id: Some("ap1".into()),
        impact: ImpactLevel::Medium,
        policy,
        policy_digest: "abc".into(),
        reason: String::new(),
        requested_at: t0(),
    })));
    p
}

fn spec(name: &str, deps: &[&str]) -> TargetSpec {
    TargetSpec {
        service: name.into(),
        version: "1.0.0".into(),
        dependencies: deps.iter().map(|d| (*d).to_owned()).collect(),
        required: vec![],
        optional: vec![],
        evidence_refs: vec![],
        owner: None,
    }
}

/// The facts the orchestrator would gather: good evidence (bad coverage for `bad`), and a
/// dependency is compliant when this promotion promoted it.
fn facts_for(p: &Promotion, bad: &BTreeSet<String>) -> BTreeMap<String, TargetFacts> {
    p.needs_facts()
        .into_iter()
        .map(|spec| {
            let mut f = crate::gates::tests::passing(&spec.service);
            if bad.contains(&spec.service) {
                f.evidence[2].summary.coverage = Some(CoverageSummary {
                    lines_covered: 1,
                    lines_total: 10,
                    line_percent: 10.0,
                });
            }
            f.dependencies = spec
                .dependencies
                .iter()
                .map(|d| DependencyFact {
                    service: d.clone(),
                    critical_incidents: vec![],
                    compliant: p
                        .target(d)
                        .filter(|t| t.status == TargetStatus::Promoted)
                        .map(|_| {
                            (
                                "1.0.0".to_owned(),
                                FactRef {
                                    kind: "promotion".into(),
                                    id: d.clone(),
                                    position: Some(1),
                                    digest: None,
                                    note: String::new(),
                                },
                            )
                        }),
                })
                .collect();
            (spec.service.clone(), f)
        })
        .collect()
}

/// Steps until the promotion ends; returns the events of each step.
fn run(p: &mut Promotion, bad: &BTreeSet<String>) -> Vec<Vec<PromotionEvent>> {
    let mut steps = Vec::new();
    for i in 0..500 {
        let facts = facts_for(p, bad);
        let events = p.step(
            &facts,
            &|_| ComplianceState::Sandbox,
            t0() + time::Duration::seconds(i),
        );
        for e in &events {
            p.apply(e);
        }
        steps.push(events);
        if p.is_finished() {
            break;
        }
    }
    steps
}

fn automatic() -> Policy {
    let mut policy = Policy::default_policy();
    policy.approval_check = GateType::Automatic;
    policy
}

#[test]
fn a_chain_is_promoted_in_order_and_a_failure_blocks_its_dependants() {
    let mut p = request(
        vec![
            spec("service-a", &[]),
            spec("service-b", &["service-a"]),
            spec("service-c", &["service-b"]),
            spec("service-d", &[]),
        ],
        Policy::default_policy(),
    );
    let bad: BTreeSet<String> = ["service-b".to_owned()].into();
    let steps = run(&mut p, &bad);
    assert_eq!(p.outcome, Some(PromotionOutcome::PartiallySucceeded));
    assert_eq!(
        p.target("service-a").unwrap().status,
        TargetStatus::Promoted
    );
    assert_eq!(
        p.target("service-d").unwrap().status,
        TargetStatus::Promoted
    );
    let b = p.target("service-b").unwrap();
    assert_eq!(b.status, TargetStatus::Failed);
    assert!(
        b.reason
            .as_deref()
            .unwrap()
            .starts_with("test_coverage_threshold: below threshold"),
        "{:?}",
        b.reason
    );
    let c = p.target("service-c").unwrap();
    assert_eq!(c.status, TargetStatus::Blocked);
    assert!(
        c.reason
            .as_deref()
            .unwrap()
            .starts_with("dependency service-b did not become compliant: test_coverage_threshold"),
        "{:?}",
        c.reason
    );
    // a and d in the first step, b only after a was recorded compliant.
    let started = |i: usize| -> Vec<String> {
        steps[i]
            .iter()
            .filter_map(|e| match e {
                PromotionEvent::TargetStarted { service, .. } => Some(service.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(started(0), vec!["service-a", "service-d"]);
    assert_eq!(started(1), vec!["service-b"]);
    // The state machine moved through compliance_ready, with the requirements named.
    let transitions: Vec<(String, ComplianceState, Vec<Requirement>)> = steps
        .iter()
        .flatten()
        .filter_map(|e| match e {
            PromotionEvent::TargetTransitioned {
                service, to, met, ..
            } => Some((service.clone(), *to, met.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(transitions[0].0, "service-a");
    assert_eq!(transitions[0].1, ComplianceState::ComplianceReady);
    assert_eq!(
        transitions[0].2,
        vec![
            Requirement::AllTestsPassing,
            Requirement::SastClean,
            Requirement::DependenciesCompliant
        ]
    );
    assert_eq!(transitions[1].1, ComplianceState::Compliant);
}

#[test]
fn the_manual_gate_waits_for_its_decision() {
    let mut p = request(vec![spec("service-a", &[])], Policy::default_policy());
    let facts = {
        let mut f = facts_for(&p, &BTreeSet::new());
        if let Some(a) = f.get_mut("service-a").and_then(|f| f.approval.as_mut()) {
            a.status = crate::approval::ApprovalStatus::Pending;
            a.approvers.clear();
        }
        f
    };
    let events = p.step(&facts, &|_| ComplianceState::Sandbox, t0());
    for e in &events {
        p.apply(e);
    }
    let t = p.target("service-a").unwrap();
    assert_eq!(t.compliance, Some(ComplianceState::ComplianceReady));
    assert_eq!(t.status, TargetStatus::Running);
    assert_eq!(t.checks[&Check::ApprovalGranted].0, Outcome::Missing);
    // Nothing new to say while nothing changed.
    assert!(p
        .step(
            &facts,
            &|_| ComplianceState::Sandbox,
            t0() + time::Duration::seconds(5)
        )
        .is_empty());
    // Approved: compliant.
    let events = p.step(
        &facts_for(&p, &BTreeSet::new()),
        &|_| ComplianceState::Sandbox,
        t0() + time::Duration::seconds(9),
    );
    assert!(matches!(
        events.last(),
        Some(PromotionEvent::PromotionCompleted {
            outcome: PromotionOutcome::Succeeded,
            ..
        })
    ));
}

#[test]
fn missing_evidence_waits_then_fails_naming_it() {
    let mut p = request(vec![spec("service-a", &[])], automatic());
    let mut facts = facts_for(&p, &BTreeSet::new());
    facts
        .get_mut("service-a")
        .unwrap()
        .evidence
        .retain(|e| e.kind != crate::evidence::EvidenceKind::Sarif);
    for e in p.step(&facts, &|_| ComplianceState::Sandbox, t0()) {
        p.apply(&e);
    }
    assert_eq!(p.target("service-a").unwrap().status, TargetStatus::Running);
    let late = t0() + time::Duration::seconds(301);
    for e in p.step(&facts, &|_| ComplianceState::Sandbox, late) {
        p.apply(&e);
    }
    let t = p.target("service-a").unwrap();
    assert_eq!(t.status, TargetStatus::Failed);
    assert!(
        t.reason
            .as_deref()
            .unwrap()
            .starts_with("evidence_complete: still missing after 301 s: no sast evidence"),
        "{:?}",
        t.reason
    );
    assert_eq!(p.outcome, Some(PromotionOutcome::Failed));
}

#[test]
fn an_already_compliant_version_is_not_decided_again() {
    let mut p = request(vec![spec("service-a", &[])], automatic());
    let events = p.step(
        &facts_for(&p, &BTreeSet::new()),
        &|_| ComplianceState::Compliant,
        t0(),
    );
    for e in &events {
        p.apply(e);
    }
    assert!(events.iter().any(|e| matches!(
        e,
        PromotionEvent::TargetPromoted {
            already_compliant: true,
            ..
        }
    )));
    assert!(!events
        .iter()
        .any(|e| matches!(e, PromotionEvent::GateEvaluated { .. })));
    assert!(p.is_finished());
}

#[test]
fn the_promotion_order_is_topological_and_names_unknowns() {
    let defs = crate::catalog::parse_definitions(
        "service:\n  name: c\n  spec: {api_version: v1, compliance_mode: sandbox, dependencies: {runtime: [b]}}\n---\nservice:\n  name: b\n  spec: {api_version: v1, compliance_mode: sandbox, dependencies: {runtime: [a]}}\n---\nservice:\n  name: a\n  spec: {api_version: v1, compliance_mode: sandbox}\n",
    )
    .unwrap();
    let g = DependencyGraph::new(&defs);
    let n = |s: &str| ServiceName::parse(s).unwrap();
    let order = compute_promotion_order(&g, &[n("c"), n("a"), n("b")]).unwrap();
    assert_eq!(order, vec![n("a"), n("b"), n("c")]);
    assert_eq!(
        compute_promotion_order(&g, &[n("c"), n("x")]),
        Err(OrderError::Unknown("x".into()))
    );
    assert_eq!(
        compute_promotion_order(&g, &[n("a"), n("a")]),
        Err(OrderError::Duplicate("a".into()))
    );
}

proptest! {
    /// Over random DAGs, failures and bounds: every promotion ends; failed targets are
    /// exactly the bad ones; a target is blocked iff a dependency in the set failed or was
    /// blocked; no target starts before its dependencies were recorded promoted; no more than
    /// `max_parallel` run at once; compliant is only reached through compliance_ready.
    #[test]
    fn scheduling_invariants(
        n in 1usize..24,
        edges in prop::collection::vec((0usize..24, 0usize..24), 0..60),
        bad in prop::collection::btree_set(0usize..24, 0..5),
        max_parallel in 1u32..6,
    ) {
        let name = |i: usize| format!("s{i:02}");
        let mut deps: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
        for (a, b) in edges {
            let (a, b) = (a % n, b % n);
            if a != b {
                deps[a.max(b)].insert(a.min(b));
            }
        }
        let specs: Vec<TargetSpec> = (0..n)
            .map(|i| {
                let d: Vec<String> = deps[i].iter().map(|j| name(*j)).collect();
                let d: Vec<&str> = d.iter().map(String::as_str).collect();
                spec(&name(i), &d)
            })
            .collect();
        let mut policy = automatic();
        policy.scheduling.max_parallel = max_parallel;
        let mut p = request(specs, policy);
        let bad_names: BTreeSet<String> = bad.iter().filter(|i| **i < n).map(|i| name(*i)).collect();
        let steps = run(&mut p, &bad_names);
        prop_assert!(p.is_finished());
        let mut promoted_before: BTreeSet<String> = BTreeSet::new();
        let mut state = request(p.request.as_ref().unwrap().targets.clone(), p.request.as_ref().unwrap().policy.clone());
        for events in &steps {
            for e in events {
                if let PromotionEvent::TargetStarted { service, .. } = e {
                    for d in &p.target(service).unwrap().spec.dependencies {
                        prop_assert!(promoted_before.contains(d), "{service} started before {d}");
                    }
                }
                if let PromotionEvent::TargetTransitioned { service, from, to, .. } = e {
                    prop_assert_eq!(*to, from.allowed_next());
                    if *to == ComplianceState::Compliant {
                        prop_assert_eq!(state.target(service).unwrap().compliance, Some(ComplianceState::ComplianceReady));
                    }
                }
                state.apply(e);
            }
            let running = state.targets.iter().filter(|t| t.status == TargetStatus::Running).count();
            prop_assert!(running <= max_parallel as usize);
            for t in &state.targets {
                if t.status == TargetStatus::Promoted {
                    promoted_before.insert(t.spec.service.clone());
                }
            }
        }
        #[allow(clippy::needless_range_loop)]
        for i in 0..n {
            let t = p.target(&name(i)).unwrap();
            let expected_blocked = deps[i].iter().any(|j| {
                let d = p.target(&name(*j)).unwrap();
                matches!(d.status, TargetStatus::Failed | TargetStatus::Blocked)
            });
            if bad_names.contains(&name(i)) && !expected_blocked {
                prop_assert_eq!(t.status, TargetStatus::Failed);
            } else if expected_blocked {
                prop_assert_eq!(t.status, TargetStatus::Blocked);
            } else {
                prop_assert_eq!(t.status, TargetStatus::Promoted);
                prop_assert_eq!(t.compliance, Some(ComplianceState::Compliant));
            }
        }
    }
}
