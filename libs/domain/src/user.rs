//! Users as aggregates: creation, API keys (stored as digests only), role assignments and
//! revocations. Every event names the actor in the ledger metadata; the payload repeats it
//! where the fact is about someone else acting on this user.

use crate::rbac::{Role, TeamName, UserName};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What happened to a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum UserEvent {
    UserCreated {
        name: UserName,
        display_name: String,
        created_by: String,
    },
    /// `secret_digest`: hex SHA3-256 of the secret; the secret itself is never stored.
    ApiKeyIssued {
        key_id: String,
        secret_digest: String,
        issued_by: String,
    },
    ApiKeyRevoked {
        key_id: String,
        revoked_by: String,
    },
    RoleAssigned {
        role: Role,
        assigned_by: String,
    },
    RoleRevoked {
        role: Role,
        revoked_by: String,
    },
    UserDeactivated {
        deactivated_by: String,
    },
    /// Active again, with no roles and no keys: an admin grants them anew.
    UserReactivated {
        reactivated_by: String,
    },
    /// The user is this identity at an external OpenID provider (`iss`, `sub`): tokens of
    /// that identity are exchanged for this user's, and no other identity's are.
    IdentityLinked {
        issuer: String,
        subject: String,
        linked_by: String,
    },
    /// The teams the user belongs to now (replacing the earlier set): from the provider's
    /// groups at sign-in (`set_by` names the issuer) or set by an admin.
    TeamsSet {
        teams: Vec<TeamName>,
        set_by: String,
    },
}

impl UserEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::UserCreated { .. } => "UserCreated",
            Self::ApiKeyIssued { .. } => "ApiKeyIssued",
            Self::ApiKeyRevoked { .. } => "ApiKeyRevoked",
            Self::RoleAssigned { .. } => "RoleAssigned",
            Self::RoleRevoked { .. } => "RoleRevoked",
            Self::UserDeactivated { .. } => "UserDeactivated",
            Self::UserReactivated { .. } => "UserReactivated",
            Self::IdentityLinked { .. } => "IdentityLinked",
            Self::TeamsSet { .. } => "TeamsSet",
        }
    }
}

/// Why a user command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("user {0} already exists")]
    Exists(String),
    #[error("user {0} is active: nothing to reactivate")]
    Active(String),
    #[error("no such user")]
    NotFound,
    #[error("user {0} is deactivated")]
    Deactivated(String),
    #[error("user {user} already holds role {role}")]
    AlreadyHolds { user: String, role: Role },
    #[error("user {user} does not hold role {role}")]
    DoesNotHold { user: String, role: Role },
    #[error("no active API key {0}")]
    NoSuchKey(String),
    #[error("{user} is the last active holder of rbac.admin: grant the role to another user first (or, locked out, use `goosectl admin recover`)")]
    LastAdmin { user: String },
    #[error("{0}")]
    Invalid(String),
}

/// A user as folded from events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: Option<UserName>,
    pub display_name: String,
    pub roles: BTreeSet<Role>,
    /// Active keys: id → secret digest.
    pub keys: BTreeMap<String, String>,
    pub active: bool,
    /// External identities (issuer, subject) linked to this user.
    #[serde(default)]
    pub identities: BTreeSet<(String, String)>,
    #[serde(default)]
    pub teams: BTreeSet<TeamName>,
}

impl User {
    pub fn apply(&mut self, e: &UserEvent) {
        match e {
            UserEvent::UserCreated {
                name, display_name, ..
            } => {
                self.name = Some(name.clone());
                self.display_name.clone_from(display_name);
                self.active = true;
            }
            UserEvent::ApiKeyIssued {
                key_id,
                secret_digest,
                ..
            } => {
                self.keys.insert(key_id.clone(), secret_digest.clone());
            }
            UserEvent::ApiKeyRevoked { key_id, .. } => {
                self.keys.remove(key_id);
            }
            UserEvent::RoleAssigned { role, .. } => {
                self.roles.insert(*role);
            }
            UserEvent::RoleRevoked { role, .. } => {
                self.roles.remove(role);
            }
            UserEvent::UserDeactivated { .. } => {
                self.active = false;
                self.roles.clear();
                self.keys.clear();
            }
            UserEvent::UserReactivated { .. } => {
                self.active = true;
            }
            UserEvent::IdentityLinked {
                issuer, subject, ..
            } => {
                self.identities.insert((issuer.clone(), subject.clone()));
            }
            UserEvent::TeamsSet { teams, .. } => {
                self.teams = teams.iter().cloned().collect();
            }
        }
    }

    /// Sets the user's teams (an admin's decision; a signed-in SSO user's teams follow the
    /// provider instead). Nothing to record when they are the same.
    pub fn set_teams(&self, teams: &[TeamName], actor: &str) -> Result<Vec<UserEvent>, UserError> {
        self.existing()?;
        if teams.len() > 64 {
            return Err(UserError::Invalid("at most 64 teams".into()));
        }
        let wanted: BTreeSet<TeamName> = teams.iter().cloned().collect();
        if wanted.len() != teams.len() {
            return Err(UserError::Invalid("a team is listed twice".into()));
        }
        if wanted == self.teams {
            return Ok(Vec::new());
        }
        Ok(vec![UserEvent::TeamsSet {
            teams: wanted.into_iter().collect(),
            set_by: actor.to_owned(),
        }])
    }

    pub(crate) fn existing(&self) -> Result<&UserName, UserError> {
        let name = self.name.as_ref().ok_or(UserError::NotFound)?;
        if !self.active {
            return Err(UserError::Deactivated(name.to_string()));
        }
        Ok(name)
    }

    pub fn create(
        &self,
        name: UserName,
        display_name: &str,
        actor: &str,
    ) -> Result<Vec<UserEvent>, UserError> {
        if let Some(n) = &self.name {
            return Err(UserError::Exists(n.to_string()));
        }
        if display_name.chars().count() > 200 || display_name.chars().any(char::is_control) {
            return Err(UserError::Invalid(
                "display_name must be at most 200 printable characters".into(),
            ));
        }
        Ok(vec![UserEvent::UserCreated {
            name,
            display_name: display_name.to_owned(),
            created_by: actor.to_owned(),
        }])
    }

    /// Creates the user holding `roles` (each once) in one decision.
    pub fn create_with_roles(
        &self,
        name: UserName,
        display_name: &str,
        roles: &[Role],
        actor: &str,
    ) -> Result<Vec<UserEvent>, UserError> {
        let mut events = self.create(name, display_name, actor)?;
        let mut seen = Vec::with_capacity(roles.len());
        for role in roles {
            if seen.contains(role) {
                return Err(UserError::Invalid(format!("role {role} is listed twice")));
            }
            seen.push(*role);
            events.push(UserEvent::RoleAssigned {
                role: *role,
                assigned_by: actor.to_owned(),
            });
        }
        Ok(events)
    }

    /// The first administrator: created with the admin role and one API key, or nothing when
    /// the user exists already (a later start).
    pub fn bootstrap_admin(
        &self,
        name: UserName,
        key_id: &str,
        secret_digest: &str,
        actor: &str,
    ) -> Result<Vec<UserEvent>, UserError> {
        if self.name.is_some() {
            return Ok(Vec::new());
        }
        let mut events =
            self.create_with_roles(name, "bootstrap administrator", &[Role::Admin], actor)?;
        events.push(UserEvent::ApiKeyIssued {
            key_id: key_id.to_owned(),
            secret_digest: secret_digest.to_owned(),
            issued_by: actor.to_owned(),
        });
        Ok(events)
    }

    /// Break-glass: makes `name` an administrator again with a new API key — created if it
    /// does not exist, the admin role granted if it lacks it. Refused for a deactivated user.
    pub fn recover_admin(
        &self,
        name: UserName,
        key_id: &str,
        secret_digest: &str,
        actor: &str,
    ) -> Result<Vec<UserEvent>, UserError> {
        let mut events = if self.name.is_none() {
            self.create_with_roles(name, "recovered administrator", &[Role::Admin], actor)?
        } else {
            self.existing()?;
            if self.roles.contains(&Role::Admin) {
                Vec::new()
            } else {
                vec![UserEvent::RoleAssigned {
                    role: Role::Admin,
                    assigned_by: actor.to_owned(),
                }]
            }
        };
        events.push(UserEvent::ApiKeyIssued {
            key_id: key_id.to_owned(),
            secret_digest: secret_digest.to_owned(),
            issued_by: actor.to_owned(),
        });
        Ok(events)
    }

    pub fn assign(&self, role: Role, actor: &str) -> Result<Vec<UserEvent>, UserError> {
        let name = self.existing()?;
        if self.roles.contains(&role) {
            return Err(UserError::AlreadyHolds {
                user: name.to_string(),
                role,
            });
        }
        Ok(vec![UserEvent::RoleAssigned {
            role,
            assigned_by: actor.to_owned(),
        }])
    }

    /// Revokes `role`. `other_admins`: how many other active users hold the admin role; the
    /// last one cannot lose it (nobody could then grant roles again).
    pub fn revoke(
        &self,
        role: Role,
        actor: &str,
        other_admins: usize,
    ) -> Result<Vec<UserEvent>, UserError> {
        let name = self.existing()?;
        if !self.roles.contains(&role) {
            return Err(UserError::DoesNotHold {
                user: name.to_string(),
                role,
            });
        }
        if role == Role::Admin && other_admins == 0 {
            return Err(UserError::LastAdmin {
                user: name.to_string(),
            });
        }
        Ok(vec![UserEvent::RoleRevoked {
            role,
            revoked_by: actor.to_owned(),
        }])
    }

    pub fn issue_key(
        &self,
        key_id: &str,
        secret_digest: &str,
        actor: &str,
    ) -> Result<Vec<UserEvent>, UserError> {
        self.existing()?;
        Ok(vec![UserEvent::ApiKeyIssued {
            key_id: key_id.to_owned(),
            secret_digest: secret_digest.to_owned(),
            issued_by: actor.to_owned(),
        }])
    }

    pub fn revoke_key(&self, key_id: &str, actor: &str) -> Result<Vec<UserEvent>, UserError> {
        self.existing()?;
        if !self.keys.contains_key(key_id) {
            return Err(UserError::NoSuchKey(key_id.to_owned()));
        }
        Ok(vec![UserEvent::ApiKeyRevoked {
            key_id: key_id.to_owned(),
            revoked_by: actor.to_owned(),
        }])
    }

    /// Deactivates the user: roles and keys go, every token of theirs is refused at once.
    /// `other_admins` as for [`Self::revoke`]: the last admin cannot be deactivated.
    pub fn deactivate(
        &self,
        actor: &str,
        other_admins: usize,
    ) -> Result<Vec<UserEvent>, UserError> {
        let name = self.existing()?;
        if self.roles.contains(&Role::Admin) && other_admins == 0 {
            return Err(UserError::LastAdmin {
                user: name.to_string(),
            });
        }
        Ok(vec![UserEvent::UserDeactivated {
            deactivated_by: actor.to_owned(),
        }])
    }

    /// Reactivates a deactivated user (with no roles or keys).
    pub fn reactivate(&self, actor: &str) -> Result<Vec<UserEvent>, UserError> {
        let name = self.name.as_ref().ok_or(UserError::NotFound)?;
        if self.active {
            return Err(UserError::Active(name.to_string()));
        }
        Ok(vec![UserEvent::UserReactivated {
            reactivated_by: actor.to_owned(),
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        u: &mut User,
        f: impl FnOnce(&User) -> Result<Vec<UserEvent>, UserError>,
    ) -> Result<(), UserError> {
        for e in f(u)? {
            u.apply(&e);
        }
        Ok(())
    }

    #[test]
    fn created_with_roles_once_and_the_admin_bootstrapped_once() {
        let name = UserName::parse("olga").unwrap();
        let mut u = User::default();
        assert!(matches!(
            u.create_with_roles(name.clone(), "", &[Role::Operator, Role::Operator], "root"),
            Err(UserError::Invalid(_))
        ));
        run(&mut u, |u| {
            u.create_with_roles(name.clone(), "", &[Role::Operator, Role::Approver], "root")
        })
        .unwrap();
        assert!(u.roles.contains(&Role::Operator) && u.roles.contains(&Role::Approver));

        let mut admin = User::default();
        let root = UserName::parse("root").unwrap();
        run(&mut admin, |u| {
            u.bootstrap_admin(root.clone(), "k1", "d1", "boot")
        })
        .unwrap();
        assert!(admin.roles.contains(&Role::Admin));
        assert_eq!(admin.keys.len(), 1);
        // A later start finds it and changes nothing.
        assert_eq!(
            admin.bootstrap_admin(root, "k2", "d2", "boot"),
            Ok(Vec::new())
        );
    }

    #[test]
    fn lifecycle() {
        let mut u = User::default();
        assert_eq!(u.assign(Role::Admin, "x"), Err(UserError::NotFound));
        let name = UserName::parse("ada").unwrap();
        run(&mut u, |u| u.create(name.clone(), "Ada", "root")).unwrap();
        assert!(matches!(
            u.create(name, "", "root"),
            Err(UserError::Exists(_))
        ));
        run(&mut u, |u| u.assign(Role::Approver, "root")).unwrap();
        assert!(matches!(
            u.assign(Role::Approver, "root"),
            Err(UserError::AlreadyHolds { .. })
        ));
        run(&mut u, |u| u.issue_key("k1", "d1", "root")).unwrap();
        run(&mut u, |u| u.revoke(Role::Approver, "root", 0)).unwrap();
        assert!(u.roles.is_empty());
        assert!(matches!(
            u.revoke(Role::Approver, "root", 0),
            Err(UserError::DoesNotHold { .. })
        ));
        // The admin role: not from the last holder; from one of two, yes.
        run(&mut u, |u| u.assign(Role::Admin, "root")).unwrap();
        let e = u.revoke(Role::Admin, "ada", 0).unwrap_err();
        assert_eq!(e.to_string(), "ada is the last active holder of rbac.admin: grant the role to another user first (or, locked out, use `goosectl admin recover`)");
        run(&mut u, |u| u.revoke(Role::Admin, "root", 1)).unwrap();
        // Break-glass: the role back and a new key, recorded as events like any other.
        let ev = u
            .recover_admin(
                UserName::parse("ada").unwrap(),
                "k2",
                "d2",
                "break-glass:ops",
            )
            .unwrap();
        assert_eq!(ev.len(), 2);
        run(&mut u, |u| {
            u.recover_admin(
                UserName::parse("ada").unwrap(),
                "k2",
                "d2",
                "break-glass:ops",
            )
        })
        .unwrap();
        assert!(u.roles.contains(&Role::Admin) && u.keys.contains_key("k2"));
        let fresh = User::default()
            .recover_admin(
                UserName::parse("newadmin").unwrap(),
                "k3",
                "d3",
                "break-glass:ops",
            )
            .unwrap();
        assert_eq!(fresh.len(), 3, "created, admin, key: {fresh:?}");
        run(&mut u, |u| u.revoke(Role::Admin, "root", 1)).unwrap();
        run(&mut u, |u| u.deactivate("root", 0)).unwrap();
        assert!(u.keys.is_empty());
        assert!(matches!(
            u.assign(Role::Admin, "root"),
            Err(UserError::Deactivated(_))
        ));
        run(&mut u, |u| u.reactivate("root")).unwrap();
        assert!(u.active && u.roles.is_empty() && u.keys.is_empty());
        assert!(u.reactivate("root").is_err());
    }
}
