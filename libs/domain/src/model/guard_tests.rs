use super::*;
use crate::approval::ImpactLevel;
use crate::model::policy::{EvidenceRef, Threshold};
use crate::model::{Approval, Metric, ModelEvent, ModelName, VersionSpec};
use std::collections::BTreeMap;
use time::macros::datetime;

const T0: OffsetDateTime = datetime!(2026-12-01 00:00 UTC);

fn at(minutes: i64) -> OffsetDateTime {
    T0 + time::Duration::minutes(minutes)
}

fn apply(
    m: &mut RegisteredModel,
    decide: impl FnOnce(&RegisteredModel) -> Result<Vec<ModelEvent>, crate::model::ModelError>,
) {
    for e in &decide(m).unwrap() {
        m.apply(e);
    }
}

/// churn, served by `svc-churn`: version 1 in production at minute 5, version 2 at minute 10.
fn in_production() -> RegisteredModel {
    let mut m = RegisteredModel::default();
    let tags = BTreeMap::from([(SERVING_SERVICE_TAG.to_owned(), "svc-churn".to_owned())]);
    let name = ModelName::parse("churn").unwrap();
    apply(&mut m, |m| {
        m.create(name, String::new(), ImpactLevel::Low, None, tags, T0)
    });
    for (v, minute) in [(1, 5), (2, 10)] {
        let spec = VersionSpec {
            artifact_uri: format!("s3://m/{v}"),
            digest: Some("ab".repeat(32)),
            ..VersionSpec::default()
        };
        apply(&mut m, |m| m.register(spec, "mia", at(minute - 2)));
        apply(&mut m, |m| {
            m.deploy_staging(v, vec![], "mia", at(minute - 1))
        });
        let approval = Approval {
            approval_id: format!("a{v}"),
            approvers: vec!["ann".into()],
        };
        apply(&mut m, |m| {
            m.deploy_production(v, approval, 1, vec![], "mia", at(minute))
        });
    }
    m
}

fn breach(minute: i64) -> Breach {
    Breach {
        incident: "inc-1".into(),
        title: "SLO churn-availability burning its error budget".into(),
        at: at(minute),
    }
}

fn drift(psi: f64, minute: i64) -> VersionEvidence {
    VersionEvidence {
        metrics: Some((
            EvidenceRef {
                id: "ev-9".into(),
                digest: "cd".repeat(32),
                at: at(minute),
            },
            vec![Metric {
                name: "psi".into(),
                dataset: Some("live".into()),
                value: psi,
            }],
        )),
        ..VersionEvidence::default()
    }
}

fn policy() -> RollbackPolicy {
    RollbackPolicy {
        on_sla_breach: true,
        on_drift: vec![Threshold {
            name: "psi".into(),
            dataset: Some("live".into()),
            min: None,
            max: Some(0.2),
        }],
    }
}

#[test]
fn a_breach_after_the_deployment_rolls_back() {
    let m = in_production();
    assert_eq!(in_production_since(&m), Some((2, at(10))));
    let none = VersionEvidence::default();
    let reason = rollback_reason(&policy(), &m, Some(&breach(11)), &none).unwrap();
    assert!(
        reason.contains("incident inc-1") && reason.contains("svc-churn"),
        "{reason}"
    );
    // The reason is one a rollback accepts, and it goes back to version 1.
    let events = m.rollback(&reason, "goose-registry", at(12)).unwrap();
    assert!(matches!(
        events[0],
        ModelEvent::RolledBack { from: 2, to: 1, .. }
    ));
    // A breach from before version 2 went to production, or with the rule off: nothing.
    assert_eq!(
        rollback_reason(&policy(), &m, Some(&breach(9)), &none),
        None
    );
    let off = RollbackPolicy {
        on_sla_breach: false,
        ..policy()
    };
    assert_eq!(rollback_reason(&off, &m, Some(&breach(11)), &none), None);
    // A model without a serving service has no SLOs to breach.
    let mut untagged = m.clone();
    untagged.tags.clear();
    assert_eq!(
        rollback_reason(&policy(), &untagged, Some(&breach(11)), &none),
        None
    );
}

#[test]
fn drift_measured_after_the_deployment_rolls_back() {
    let m = in_production();
    let reason = rollback_reason(&policy(), &m, None, &drift(0.31, 11)).unwrap();
    assert!(
        reason.contains("psi@live = 0.31 of version 2 is outside ≤ 0.2 (evidence ev-9"),
        "{reason}"
    );
    assert_eq!(
        rollback_reason(&policy(), &m, None, &drift(0.1, 11)),
        None,
        "within bounds"
    );
    assert_eq!(
        rollback_reason(&policy(), &m, None, &drift(0.31, 9)),
        None,
        "measured before this deployment"
    );
}

#[test]
fn after_a_rollback_the_old_signals_do_not_fire_again() {
    let mut m = in_production();
    let reason = rollback_reason(&policy(), &m, Some(&breach(11)), &drift(0.5, 11)).unwrap();
    apply(&mut m, |m| m.rollback(&reason, "goose-registry", at(12)));
    assert_eq!(in_production_since(&m), Some((1, at(12))));
    assert_eq!(
        rollback_reason(&policy(), &m, Some(&breach(11)), &drift(0.5, 11)),
        None
    );
    // Version 2 put back later is judged on what comes after.
    let approval = Approval {
        approval_id: "a3".into(),
        approvers: vec!["ann".into()],
    };
    apply(&mut m, |m| {
        m.deploy_production(2, approval, 1, vec![], "mia", at(20))
    });
    assert_eq!(
        rollback_reason(&policy(), &m, Some(&breach(11)), &drift(0.5, 11)),
        None
    );
    assert!(rollback_reason(
        &policy(),
        &m,
        Some(&breach(21)),
        &VersionEvidence::default()
    )
    .is_some());
}
