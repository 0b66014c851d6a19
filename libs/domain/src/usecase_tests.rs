use super::*;
use crate::model::{ModelEvent, VersionSpec};
use std::collections::BTreeMap;
use time::macros::datetime;

const T0: OffsetDateTime = datetime!(2026-12-01 00:00 UTC);

fn run(u: &mut UseCase, decide: impl FnOnce(&UseCase) -> Result<Vec<UseCaseEvent>, UseCaseError>) {
    for e in decide(u).unwrap() {
        let back: UseCaseEvent = serde_json::from_slice(&serde_json::to_vec(&e).unwrap()).unwrap();
        assert_eq!(back, e);
        u.apply(&e);
    }
}

fn name(s: &str) -> ModelName {
    ModelName::parse(s).unwrap()
}

fn spec(models: &[(&str, &str)]) -> UseCaseSpec {
    UseCaseSpec {
        title: "Churn alerts".into(),
        description: String::new(),
        impact: ImpactLevel::High,
        models: models
            .iter()
            .map(|(m, r)| ModelRef {
                model: name(m),
                reference: (*r).to_owned(),
            })
            .collect(),
        owner: Some("team-growth".into()),
    }
}

/// A model with version 1 in production and version 2 staged.
fn model() -> RegisteredModel {
    let mut m = RegisteredModel::default();
    let apply = |m: &mut RegisteredModel, e: Vec<ModelEvent>| e.iter().for_each(|e| m.apply(e));
    let e = m
        .create(
            name("churn"),
            String::new(),
            ImpactLevel::Low,
            None,
            BTreeMap::new(),
            T0,
        )
        .unwrap();
    apply(&mut m, e);
    for _ in 0..2 {
        let s = VersionSpec {
            artifact_uri: "s3://m".into(),
            digest: Some("00".repeat(32)),
            ..VersionSpec::default()
        };
        let e = m.register(s, "mia", T0).unwrap();
        apply(&mut m, e);
    }
    let e = m.deploy_staging(1, vec![], "olga", T0).unwrap();
    apply(&mut m, e);
    let approval = Approval {
        approval_id: "a".into(),
        approvers: vec!["ann".into()],
    };
    let e = m
        .deploy_production(1, approval, 1, vec![], "olga", T0)
        .unwrap();
    apply(&mut m, e);
    let e = m.deploy_staging(2, vec![], "olga", T0).unwrap();
    apply(&mut m, e);
    m
}

fn approval(id: &str, who: &[&str]) -> Approval {
    Approval {
        approval_id: id.into(),
        approvers: who.iter().map(|s| (*s).to_owned()).collect(),
    }
}

#[test]
fn draft_to_deprecated_with_approvals_and_models_in_production() {
    let m = model();
    let lookup = |n: &ModelName| (n.as_str() == "churn").then_some(&m);
    let mut u = UseCase::default();
    assert!(u
        .create("bad name", spec(&[("churn", "champion")]), "olga", T0)
        .is_err());
    assert!(u.create("alerts", spec(&[]), "olga", T0).is_err());
    run(&mut u, |u| {
        u.create("churn-alerts", spec(&[("churn", "champion")]), "olga", T0)
    });
    assert!(matches!(
        u.create("churn-alerts", spec(&[("churn", "1")]), "olga", T0),
        Err(UseCaseError::Exists(_))
    ));
    // Not approved yet: no deployment.
    assert!(matches!(
        u.deploy(lookup, "olga", T0),
        Err(UseCaseError::State { .. })
    ));
    run(&mut u, |u| {
        u.edit(
            spec(&[("churn", "champion"), ("churn", "challenger")]),
            "olga",
        )
    });
    run(&mut u, |u| u.submit("ap-1", 2, "olga", T0));
    assert!(u.edit(spec(&[("churn", "1")]), "olga").is_err());
    // Segregation of duties and distinct approvers.
    let e = u
        .approve(approval("ap-1", &["olga", "ann"]), T0)
        .unwrap_err();
    assert!(e.to_string().contains("submitter cannot approve"), "{e}");
    let e = u
        .approve(approval("ap-1", &["ann", "ann"]), T0)
        .unwrap_err();
    assert!(
        e.to_string().contains("1 distinct approver(s); 2 needed"),
        "{e}"
    );
    assert!(u.approve(approval("other", &["ann", "bob"]), T0).is_err());
    run(&mut u, |u| u.approve(approval("ap-1", &["ann", "bob"]), T0));
    assert_eq!(u.state, Some(UseCaseState::Approved));
    // `challenger` is version 2, staged only: refused, saying which.
    let e = u.deploy(lookup, "olga", T0).unwrap_err();
    assert_eq!(
        e.to_string(),
        "its models are not all in production: churn@challenger is version 2, which is not in production (version 1 is)"
    );
    let e = u.deploy(|_| None, "olga", T0).unwrap_err();
    assert!(
        e.to_string().contains("model churn is not registered"),
        "{e}"
    );
    // Back to draft to fix it: a rejection.
    let mut d = u.clone();
    d.state = Some(UseCaseState::Submitted);
    run(&mut d, |d| d.reject("bob", "wrong model"));
    assert_eq!(d.state, Some(UseCaseState::Draft));
    let mut u2 = UseCase::default();
    run(&mut u2, |u2| {
        u2.create("churn-alerts", spec(&[("churn", "champion")]), "olga", T0)
    });
    run(&mut u2, |u2| u2.submit("ap-2", 1, "olga", T0));
    run(&mut u2, |u2| u2.approve(approval("ap-2", &["ann"]), T0));
    run(&mut u2, |u2| u2.deploy(lookup, "olga", T0));
    assert_eq!(u2.state, Some(UseCaseState::Deployed));
    assert!(u2.uses(&name("churn"), 1));
    assert!(!u2.uses(&name("churn"), 2));
    assert!(u2.deprecate(" ", "olga", T0).is_err());
    run(&mut u2, |u2| {
        u2.deprecate("replaced by churn-alerts-v2", "olga", T0)
    });
    assert!(!u2.uses(&name("churn"), 1));
    assert_eq!(
        u2.deprecated,
        Some(("olga".into(), "replaced by churn-alerts-v2".into()))
    );
    let states: Vec<_> = u2.history.iter().map(|t| t.state).collect();
    assert_eq!(
        states,
        vec![
            UseCaseState::Draft,
            UseCaseState::Submitted,
            UseCaseState::Approved,
            UseCaseState::Deployed,
            UseCaseState::Deprecated,
        ]
    );
    assert!(u2.deprecate("again", "olga", T0).is_err());
    assert!(u2.deploy(lookup, "olga", T0).is_err());
}

#[test]
fn a_missing_use_case_says_so() {
    let u = UseCase::default();
    assert!(matches!(
        u.submit("a", 1, "olga", T0),
        Err(UseCaseError::NotFound(_))
    ));
    assert!(matches!(
        u.deprecate("x", "olga", T0),
        Err(UseCaseError::NotFound(_))
    ));
}
