use super::*;
use proptest::prelude::*;
use time::macros::datetime;

const T0: OffsetDateTime = datetime!(2026-12-01 00:00 UTC);

fn at(minutes: i64) -> OffsetDateTime {
    T0 + time::Duration::minutes(minutes)
}

fn run(
    m: &mut RegisteredModel,
    decide: impl FnOnce(&RegisteredModel) -> Result<Vec<ModelEvent>, ModelError>,
) -> Vec<ModelEvent> {
    let events = decide(m).unwrap();
    for e in &events {
        // Every event survives its JSON form unchanged (what the ledger stores).
        let back: ModelEvent = serde_json::from_slice(&serde_json::to_vec(e).unwrap()).unwrap();
        assert_eq!(&back, e);
        m.apply(e);
    }
    events
}

fn spec(digest: bool) -> VersionSpec {
    VersionSpec {
        artifact_uri: "s3://models/churn/1".into(),
        digest: digest.then(|| "ab".repeat(32)),
        framework: Some("sklearn".into()),
        metrics: vec![Metric {
            name: "accuracy".into(),
            dataset: Some("holdout-2026-11".into()),
            value: 0.93,
        }],
        ..VersionSpec::default()
    }
}

fn approval(approvers: &[&str]) -> Approval {
    Approval {
        approval_id: "a-1".into(),
        approvers: approvers.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn created() -> RegisteredModel {
    let mut m = RegisteredModel::default();
    let name = ModelName::parse("churn").unwrap();
    run(&mut m, |m| {
        m.create(
            name,
            String::new(),
            ImpactLevel::High,
            None,
            BTreeMap::new(),
            T0,
        )
    });
    m
}

#[test]
fn names_and_aliases_are_checked() {
    assert!(ModelName::parse("churn-v2.1_x").is_ok());
    for bad in ["", "-x", "a b", "a/b", &"x".repeat(129)] {
        assert!(ModelName::parse(bad).is_err(), "{bad:?}");
    }
    assert!(check_alias("canary").is_ok());
    for bad in ["", "Canary", "v2", "a.b"] {
        assert!(check_alias(bad).is_err(), "{bad:?}");
    }
    let mut s = spec(true);
    s.digest = Some("nothex".into());
    assert!(s.validate().unwrap_err().to_string().contains("SHA-256"));
    s.digest = Some(format!("sha256:{}", "0f".repeat(32)));
    assert!(s.validate().is_ok());
    s.metrics[0].value = f64::NAN;
    assert!(s.validate().is_err());
}

/// Register → staging → production → a second version → rollback, with the aliases and the
/// history following; production at any time T from the events.
#[test]
fn the_lifecycle_with_rollback_and_history() {
    let mut m = created();
    assert!(matches!(
        m.create(
            ModelName::parse("churn").unwrap(),
            String::new(),
            ImpactLevel::Low,
            None,
            BTreeMap::new(),
            T0
        ),
        Err(ModelError::Exists(_))
    ));
    run(&mut m, |m| m.register(spec(true), "mia", at(1)));
    run(&mut m, |m| m.register(spec(true), "mia", at(2)));
    assert_eq!(m.versions.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
    // Production only from staging.
    let e = m
        .deploy_production(1, approval(&["ann", "bob"]), 2, vec![], "olga", at(3))
        .unwrap_err();
    assert!(e.to_string().contains("never deployed to staging"), "{e}");
    run(&mut m, |m| m.deploy_staging(1, vec![], "olga", at(3)));
    assert_eq!(m.aliases.get(CHALLENGER), Some(&1));
    // Enough distinct approvers.
    let e = m
        .deploy_production(1, approval(&["ann", "ann"]), 2, vec![], "olga", at(4))
        .unwrap_err();
    assert!(
        e.to_string().contains("1 distinct approver(s); 2 needed"),
        "{e}"
    );
    run(&mut m, |m| {
        m.deploy_production(1, approval(&["ann", "bob"]), 2, vec![], "olga", at(5))
    });
    assert_eq!(m.deployed(Environment::Production), Some(1));
    assert_eq!(m.aliases.get(CHAMPION), Some(&1));
    // Nothing to roll back to yet.
    assert!(m.rollback("bad", "olga", at(6)).is_err());
    run(&mut m, |m| m.deploy_staging(2, vec![], "olga", at(7)));
    assert_eq!(m.deployed(Environment::Staging), Some(2));
    run(&mut m, |m| {
        m.deploy_production(2, approval(&["ann", "bob"]), 2, vec![], "olga", at(8))
    });
    assert_eq!(m.versions[&1].deployed, Vec::<Environment>::new());
    assert_eq!(m.aliases.get(CHAMPION), Some(&2));
    assert!(m.rollback("  ", "olga", at(9)).is_err());
    let ev = run(&mut m, |m| {
        m.rollback("accuracy dropped on live traffic", "olga", at(10))
    });
    assert!(matches!(
        ev[0],
        ModelEvent::RolledBack { from: 2, to: 1, .. }
    ));
    assert_eq!(m.deployed(Environment::Production), Some(1));
    assert_eq!(m.aliases.get(CHAMPION), Some(&1));
    // Which version was in production when.
    assert_eq!(m.in_production_at(at(4)), None);
    assert_eq!(m.in_production_at(at(5)), Some(1));
    assert_eq!(m.in_production_at(at(9)), Some(2));
    assert_eq!(m.in_production_at(at(10)), Some(1));
    let kinds: Vec<_> = m
        .history
        .iter()
        .map(|d| (d.environment, d.version, d.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (Environment::Staging, 1, "deploy"),
            (Environment::Production, 1, "deploy"),
            (Environment::Staging, 2, "deploy"),
            (Environment::Production, 2, "deploy"),
            (Environment::Production, 1, "rollback"),
        ]
    );
    assert_eq!(
        m.history[4].reason.as_deref(),
        Some("accuracy dropped on live traffic")
    );
}

#[test]
fn production_needs_a_digest() {
    let mut m = created();
    run(&mut m, |m| m.register(spec(false), "mia", at(1)));
    run(&mut m, |m| m.deploy_staging(1, vec![], "olga", at(2)));
    let e = m
        .deploy_production(1, approval(&["ann", "bob"]), 2, vec![], "olga", at(3))
        .unwrap_err();
    assert!(e.to_string().contains("no artifact digest"), "{e}");
}

#[test]
fn reserved_aliases_move_only_with_deployments_and_free_ones_resolve() {
    let mut m = created();
    run(&mut m, |m| m.register(spec(true), "mia", at(1)));
    run(&mut m, |m| m.register(spec(true), "mia", at(2)));
    for a in [CHAMPION, CHALLENGER] {
        let e = m.set_alias(a, 1).unwrap_err();
        assert!(e.to_string().contains("moves only with deployments"), "{e}");
        assert!(m.delete_alias(a).is_err());
    }
    run(&mut m, |m| m.set_alias("canary", 2));
    assert_eq!(m.set_alias("canary", 2).unwrap(), vec![]);
    assert_eq!(m.resolve("canary").unwrap(), 2);
    assert_eq!(m.resolve("@canary").unwrap(), 2);
    assert_eq!(m.resolve("v1").unwrap(), 1);
    assert_eq!(m.resolve("1").unwrap(), 1);
    assert!(m.resolve("7").is_err());
    assert!(m.resolve("nope").is_err());
    assert!(m.set_alias("canary", 9).is_err());
    run(&mut m, |m| m.delete_alias("canary"));
    assert!(m.delete_alias("canary").is_err());
}

#[test]
fn deprecation_is_refused_in_production_and_while_used() {
    let mut m = created();
    run(&mut m, |m| m.register(spec(true), "mia", at(1)));
    run(&mut m, |m| m.deploy_staging(1, vec![], "olga", at(2)));
    run(&mut m, |m| {
        m.deploy_production(1, approval(&["ann", "bob"]), 2, vec![], "olga", at(3))
    });
    let e = m.deprecate(1, "old", vec![]).unwrap_err();
    assert!(e.to_string().contains("is in production"), "{e}");
    run(&mut m, |m| m.register(spec(true), "mia", at(4)));
    run(&mut m, |m| m.set_alias("canary", 2));
    let e = m
        .deprecate(
            2,
            "old",
            vec!["fraud-scoring".into(), "churn-alerts".into()],
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "version 2 is used by deployed use cases: fraud-scoring, churn-alerts"
    );
    run(&mut m, |m| m.deprecate(2, "superseded", vec![]));
    // Its aliases went with it; it cannot be deployed or aliased again.
    assert_eq!(m.aliases.get("canary"), None);
    assert!(m.deploy_staging(2, vec![], "olga", at(5)).is_err());
    assert!(m.set_alias("canary", 2).is_err());
    assert!(m.deprecate(2, "again", vec![]).is_err());
}

#[test]
fn commands_on_a_missing_model_say_so() {
    let m = RegisteredModel::default();
    assert!(matches!(
        m.register(spec(true), "mia", T0),
        Err(ModelError::NotFound(_))
    ));
    assert!(matches!(
        m.rollback("x", "mia", T0),
        Err(ModelError::NotFound(_))
    ));
}

#[derive(Debug, Clone)]
enum Cmd {
    Register,
    Stage(u32),
    Produce(u32, usize),
    Rollback,
    Alias(u32),
    Deprecate(u32),
}

fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        Just(Cmd::Register),
        (1u32..6).prop_map(Cmd::Stage),
        ((1u32..6), (0usize..4)).prop_map(|(v, n)| Cmd::Produce(v, n)),
        Just(Cmd::Rollback),
        (1u32..6).prop_map(Cmd::Alias),
        (1u32..6).prop_map(Cmd::Deprecate),
    ]
}

proptest! {
    /// Whatever is tried, in any order: at most one version per environment, `champion` and
    /// `challenger` are exactly the production and staging versions, no alias points at a
    /// deprecated version, production only ever took staged versions, and the history
    /// answers "in production at T" as the state does now.
    #[test]
    fn invariants_hold_under_any_commands(cmds in proptest::collection::vec(cmd(), 0..40)) {
        let mut m = created();
        let mut staged_ever = std::collections::BTreeSet::new();
        for (i, c) in cmds.into_iter().enumerate() {
            let t = at(i as i64 + 1);
            let r = match c {
                Cmd::Register => m.register(spec(true), "mia", t),
                Cmd::Stage(v) => m.deploy_staging(v, vec![], "olga", t),
                Cmd::Produce(v, n) => {
                    let who = ["ann", "bob", "cy"];
                    m.deploy_production(v, approval(&who[..n.min(3)]), 2, vec![], "olga", t)
                }
                Cmd::Rollback => m.rollback("why", "olga", t),
                Cmd::Alias(v) => m.set_alias("canary", v),
                Cmd::Deprecate(v) => m.deprecate(v, "why", vec![]),
            };
            if let Ok(events) = r {
                for e in &events {
                    if let ModelEvent::VersionDeployed { version, environment: Environment::Production, .. } = e {
                        prop_assert!(staged_ever.contains(version), "production took unstaged {version}");
                    }
                    m.apply(e);
                }
                if let Some(v) = m.deployed(Environment::Staging) {
                    staged_ever.insert(v);
                }
            }
            for env in [Environment::Staging, Environment::Production] {
                let n = m.versions.values().filter(|v| v.deployed.contains(&env)).count();
                prop_assert!(n <= 1, "{n} versions in {env}");
            }
            prop_assert_eq!(m.aliases.get(CHAMPION).copied(), m.deployed(Environment::Production));
            prop_assert_eq!(m.aliases.get(CHALLENGER).copied(), m.deployed(Environment::Staging));
            for v in m.aliases.values() {
                prop_assert!(m.versions[v].deprecated.is_none(), "alias on deprecated {v}");
            }
            prop_assert_eq!(m.in_production_at(t), m.deployed(Environment::Production));
        }
    }
}
