use super::*;
use proptest::prelude::*;
use serde_json::json;

const CONFIG: &str = r#"
issuers:
  - issuer: https://idp.example.com
    audiences: [goosectl]
    roles:
      deployers: [operator]
      approvers: [approver]
      goose-admins: [admin]
    teams:
      payments-devs: payments
    team_prefix: "team-"
service_accounts:
  - issuer: https://idp.example.com
    subject: "repo:acme/payments:ref:refs/heads/*"
    user: ci-payments
    roles: [operator]
    teams: [payments]
"#;

fn config() -> IdentityConfig {
    IdentityConfig::parse(CONFIG).unwrap()
}

fn person(claims: Value) -> Identity {
    let c = config();
    c.resolve(&c.issuers[0], &claims).unwrap()
}

#[test]
fn groups_become_roles_and_teams() {
    let id = person(json!({
        "sub": "u-1", "preferred_username": "Ada", "name": "Ada L.",
        "groups": ["deployers", "team-search", "payments-devs", "unrelated"]
    }));
    assert_eq!(id.user.as_str(), "ada");
    assert_eq!(id.display_name, "Ada L.");
    assert_eq!(id.roles, [Role::Operator].into());
    let teams: Vec<&str> = id.teams.iter().map(TeamName::as_str).collect();
    assert_eq!(teams, ["payments", "search"]);
    assert!(!id.service_account);
}

#[test]
fn nested_and_single_string_group_claims_are_read() {
    let mut c = config();
    c.issuers[0].groups_claim = "realm_access.roles".into();
    let id = c
        .resolve(
            &c.issuers[0],
            &json!({"sub": "u", "preferred_username": "bo", "realm_access": {"roles": ["approvers"]}}),
        )
        .unwrap();
    assert_eq!(id.roles, [Role::Approver].into());
    c.issuers[0].groups_claim = "groups".into();
    let one = c
        .resolve(
            &c.issuers[0],
            &json!({"sub": "u", "preferred_username": "bo", "groups": "goose-admins"}),
        )
        .unwrap();
    assert_eq!(one.roles, [Role::Admin].into());
}

#[test]
fn ci_subjects_match_service_accounts_by_glob() {
    let c = config();
    let id = c
        .resolve(
            &c.issuers[0],
            &json!({"sub": "repo:acme/payments:ref:refs/heads/main"}),
        )
        .unwrap();
    assert!(id.service_account);
    assert_eq!(id.user.as_str(), "ci-payments");
    assert_eq!(id.subject, "pattern:repo:acme/payments:ref:refs/heads/*");
    // Another repository's job is not that account (and has no user name claim).
    let other = c
        .resolve(
            &c.issuers[0],
            &json!({"sub": "repo:acme/search:ref:refs/heads/main"}),
        )
        .unwrap_err();
    assert_eq!(
        other,
        IdentityError::MissingClaim("preferred_username".into())
    );
}

#[test]
fn unusable_names_and_bad_configurations_are_refused_with_reasons() {
    let c = config();
    let e = c
        .resolve(
            &c.issuers[0],
            &json!({"sub": "u", "preferred_username": "ada@example.com"}),
        )
        .unwrap_err();
    assert!(e.to_string().contains("not a usable user name"), "{e}");
    assert!(c
        .resolve(&c.issuers[0], &json!({"preferred_username": "ada"}))
        .is_err());
    for (bad, says) in [
        ("issuers: [{issuer: 'http://idp.example.com', audiences: [a]}]", "must be https"),
        ("issuers: [{issuer: 'https://i', audiences: []}]", "audiences is empty"),
        ("issuers: [{issuer: 'https://i', audiences: [a], algorithms: [HS256]}]", "not accepted"),
        ("issuers: [{issuer: 'https://i', audiences: [a], algorithms: [none]}]", "not accepted"),
        ("issuers: [{issuer: 'https://i', audiences: [a]}, {issuer: 'https://i', audiences: [b]}]", "twice"),
        ("service_accounts: [{issuer: 'https://x', subject: '*', user: ci, roles: [operator]}]", "not configured"),
        ("issuers: [{issuer: 'https://i', audiences: [a], roles: {g: [superuser]}}]", "superuser"),
        ("issuers: [{issuer: 'https://i', audiences: [a], teams: {g: 'Bad Team'}}]", "team"),
        ("issuers: [{issuer: 'https://i', audiences: [a], surprise: 1}]", "surprise"),
    ] {
        let e = IdentityConfig::parse(bad).unwrap_err().to_string();
        assert!(e.contains(says), "{bad}: {e}");
    }
    IdentityConfig::parse("issuers: [{issuer: 'http://127.0.0.1:9000', audiences: [a]}]").unwrap();
}

fn folded(events: &[UserEvent]) -> User {
    let mut u = User::default();
    for e in events {
        u.apply(e);
    }
    u
}

#[test]
fn first_sign_in_creates_and_links_and_later_ones_follow_the_groups() {
    let id = person(
        json!({"sub": "u-1", "preferred_username": "ada", "groups": ["deployers", "team-payments"]}),
    );
    let first = sync(&User::default(), &id).unwrap();
    let kinds: Vec<&str> = first.iter().map(UserEvent::event_type).collect();
    assert_eq!(
        kinds,
        ["UserCreated", "IdentityLinked", "RoleAssigned", "TeamsSet"]
    );
    let mut user = folded(&first);
    assert!(
        sync(&user, &id).unwrap().is_empty(),
        "nothing changed, nothing recorded"
    );
    // The group is removed at the provider: the role goes at the next sign-in.
    let fewer =
        person(json!({"sub": "u-1", "preferred_username": "ada", "groups": ["team-payments"]}));
    let next = sync(&user, &fewer).unwrap();
    assert_eq!(
        next,
        vec![UserEvent::RoleRevoked {
            role: Role::Operator,
            revoked_by: "sso:https://idp.example.com".into()
        }]
    );
    for e in &next {
        user.apply(e);
    }
    assert!(user.roles.is_empty());
}

#[test]
fn a_token_cannot_take_over_a_local_or_deactivated_user() {
    let local = folded(&[UserEvent::UserCreated {
        name: UserName::parse("admin").unwrap(),
        display_name: String::new(),
        created_by: "bootstrap".into(),
    }]);
    let id =
        person(json!({"sub": "evil", "preferred_username": "admin", "groups": ["goose-admins"]}));
    assert!(matches!(
        sync(&local, &id),
        Err(IdentityError::NotLinked { .. })
    ));
    // Same name, another subject at the same provider: also not this user.
    let ada = person(json!({"sub": "u-1", "preferred_username": "ada", "groups": ["deployers"]}));
    let mut user = folded(&sync(&User::default(), &ada).unwrap());
    let twin = person(json!({"sub": "u-2", "preferred_username": "ada", "groups": ["deployers"]}));
    assert!(matches!(
        sync(&user, &twin),
        Err(IdentityError::NotLinked { .. })
    ));
    user.apply(&UserEvent::UserDeactivated {
        deactivated_by: "root".into(),
    });
    assert!(matches!(
        sync(&user, &ada),
        Err(IdentityError::Deactivated(_))
    ));
}

proptest! {
    /// Whatever the groups, the user ends with exactly the mapped roles and teams, and a
    /// second sync records nothing.
    #[test]
    fn sync_converges_on_the_mapping(
        before in proptest::collection::vec(proptest::sample::select(vec!["deployers", "approvers", "goose-admins", "team-a", "team-b", "x"]), 0..6),
        after in proptest::collection::vec(proptest::sample::select(vec!["deployers", "approvers", "goose-admins", "team-a", "team-b", "x"]), 0..6),
    ) {
        let id1 = person(json!({"sub": "s", "preferred_username": "p", "groups": before}));
        let id2 = person(json!({"sub": "s", "preferred_username": "p", "groups": after}));
        let mut user = folded(&sync(&User::default(), &id1).unwrap());
        for e in sync(&user, &id2).unwrap() {
            user.apply(&e);
        }
        prop_assert_eq!(&user.roles, &id2.roles);
        prop_assert_eq!(&user.teams, &id2.teams);
        prop_assert!(sync(&user, &id2).unwrap().is_empty());
    }
}
