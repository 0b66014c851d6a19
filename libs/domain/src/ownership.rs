//! Ownership: who may act on what a team owns. Services (and models, use cases) name an
//! owning team; users belong to teams. An operator may request promotions only of services
//! their team owns (admins excepted; unowned services are open to every operator). The
//! cross-team approval rule for high impact lives with approvals
//! ([`crate::approval::Refusal::NeedsOutsideApprover`]).

use crate::rbac::{Role, TeamName};

/// A target and its owner, as the catalog said when the request was decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned<'a> {
    pub service: &'a str,
    pub owner: Option<&'a TeamName>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{user} ({}) may not {action} {}: only members of the owning team or an admin may", teams_text(.teams), .refused.join(", "))]
pub struct NotOwner {
    pub user: String,
    /// What was asked: `request promotions of`, `deploy`, `submit`.
    pub action: &'static str,
    pub teams: Vec<TeamName>,
    /// `service (owned by team)` for each refused target.
    pub refused: Vec<String>,
}

fn teams_text(teams: &[TeamName]) -> String {
    if teams.is_empty() {
        "in no team".into()
    } else {
        format!(
            "teams: {}",
            teams
                .iter()
                .map(TeamName::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// Whether `user`, holding `roles` and belonging to `teams`, may request promotions of
/// every target.
pub fn may_request(
    user: &str,
    roles: &[Role],
    teams: &[TeamName],
    targets: &[Owned<'_>],
) -> Result<(), NotOwner> {
    may_act("request promotions of", user, roles, teams, targets)
}

/// [`may_request`] for another action on owned things (a model's deployment, a use case's
/// submission): `action` words the refusal.
pub fn may_act(
    action: &'static str,
    user: &str,
    roles: &[Role],
    teams: &[TeamName],
    targets: &[Owned<'_>],
) -> Result<(), NotOwner> {
    if roles.contains(&Role::Admin) {
        return Ok(());
    }
    let refused: Vec<String> = targets
        .iter()
        .filter_map(|t| {
            let owner = t.owner?;
            (!teams.contains(owner)).then(|| format!("{} (owned by {owner})", t.service))
        })
        .collect();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(NotOwner {
            user: user.to_owned(),
            action,
            teams: teams.to_vec(),
            refused,
        })
    }
}

/// Whether an approval request raised elsewhere (its id passed in) names every team that owns
/// the subject: one raised without them would skip the cross-team rule.
pub fn approval_names_owners(
    subject_owners: &[TeamName],
    approval_owner_teams: &[TeamName],
) -> Result<(), String> {
    let missing: Vec<&str> = subject_owners
        .iter()
        .filter(|t| !approval_owner_teams.contains(t))
        .map(TeamName::as_str)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the approval request does not name the owning team ({}): raise it through this endpoint (without approval_id) so the owners are recorded",
            missing.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(n: &str) -> TeamName {
        TeamName::parse(n).unwrap()
    }

    #[test]
    fn members_and_admins_may_others_may_not() {
        let pay = t("payments");
        let targets = [
            Owned {
                service: "pay-api",
                owner: Some(&pay),
            },
            Owned {
                service: "shared-lib",
                owner: None,
            },
        ];
        may_request("ada", &[Role::Operator], &[t("payments")], &targets).unwrap();
        may_request("root", &[Role::Admin], &[], &targets).unwrap();
        let e = may_request("sam", &[Role::Operator], &[t("search")], &targets).unwrap_err();
        assert_eq!(
            e.to_string(),
            "sam (teams: search) may not request promotions of pay-api (owned by payments): only members of the owning team or an admin may"
        );
        let e = may_request("nobody", &[Role::Operator], &[], &targets[..1]).unwrap_err();
        assert!(e.to_string().contains("(in no team)"), "{e}");
        // Unowned services are open.
        may_request("sam", &[Role::Operator], &[], &targets[1..]).unwrap();
        let e = may_act("deploy", "sam", &[Role::Operator], &[], &targets[..1]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("sam (in no team) may not deploy pay-api"),
            "{e}"
        );
    }

    #[test]
    fn an_approval_raised_without_the_owners_does_not_count() {
        approval_names_owners(&[t("payments")], &[t("payments"), t("search")]).unwrap();
        approval_names_owners(&[], &[]).unwrap();
        let e = approval_names_owners(&[t("payments")], &[]).unwrap_err();
        assert!(e.contains("owning team (payments)"), "{e}");
    }

    proptest! {
        /// A non-admin is allowed exactly when every owned target's owner is one of their teams.
        #[test]
        fn allowed_iff_every_owner_is_a_team_of_theirs(
            owners in proptest::collection::vec(proptest::option::of(0usize..3), 0..5),
            teams in proptest::collection::btree_set(0usize..3, 0..3),
            admin in any::<bool>(),
        ) {
            let names = [t("a"), t("b"), t("c")];
            let svc: Vec<String> = (0..owners.len()).map(|i| format!("s{i}")).collect();
            let targets: Vec<Owned<'_>> = owners.iter().zip(&svc).map(|(o, s)| Owned { service: s, owner: o.map(|i| &names[i]) }).collect();
            let mine: Vec<TeamName> = teams.iter().map(|i| names[*i].clone()).collect();
            let roles = if admin { vec![Role::Admin] } else { vec![Role::Operator] };
            let ok = may_request("u", &roles, &mine, &targets).is_ok();
            let expected = admin || owners.iter().flatten().all(|i| teams.contains(i));
            prop_assert_eq!(ok, expected);
        }
    }
}
