//! The users read model every service keeps: who exists and which roles they hold now, from
//! rbac's events. Authorization decisions read it (as a [`RoleDirectory`]), so a revoked
//! role or a deactivated user takes effect when the event arrives.

use crate::view::{View, ViewHandle};
use goose_domain::rbac::{Role, TeamName};
use goose_domain::streams;
use goose_domain::user::UserEvent;
use goose_ledger::RecordedEvent;
use goose_runtime::auth::RoleDirectory;
use std::collections::{BTreeMap, BTreeSet};

/// Users and their current roles.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Users {
    roles: BTreeMap<String, BTreeSet<Role>>,
    /// Revoked API key ids by user: tokens issued for them are refused. (Revoked, not
    /// active: a key issued a moment ago works before its event reaches this service.)
    #[serde(default)]
    revoked_keys: BTreeMap<String, BTreeSet<String>>,
    /// Teams by user (ownership decisions read them).
    #[serde(default)]
    teams: BTreeMap<String, BTreeSet<TeamName>>,
}

impl Users {
    /// Applies one of rbac's user events to `user`.
    pub fn apply_event(&mut self, user: &str, e: &UserEvent) {
        match e {
            UserEvent::UserCreated { .. } => {
                self.roles.entry(user.to_owned()).or_default();
            }
            UserEvent::RoleAssigned { role, .. } => {
                self.roles.entry(user.to_owned()).or_default().insert(*role);
            }
            UserEvent::RoleRevoked { role, .. } => {
                if let Some(r) = self.roles.get_mut(user) {
                    r.remove(role);
                }
            }
            UserEvent::UserDeactivated { .. } => {
                self.roles.remove(user);
            }
            UserEvent::TeamsSet { teams, .. } => {
                self.teams
                    .insert(user.to_owned(), teams.iter().cloned().collect());
            }
            UserEvent::IdentityLinked { .. } => {}
            UserEvent::UserReactivated { .. } => {
                self.roles.entry(user.to_owned()).or_default();
            }
            UserEvent::ApiKeyIssued { .. } => {}
            UserEvent::ApiKeyRevoked { key_id, .. } => {
                self.revoked_keys
                    .entry(user.to_owned())
                    .or_default()
                    .insert(key_id.clone());
            }
        }
    }

    /// Whether `key_id` of `user` has not been revoked.
    pub fn key_active(&self, user: &str, key_id: &str) -> bool {
        !self
            .revoked_keys
            .get(user)
            .is_some_and(|k| k.contains(key_id))
    }

    /// The user's current roles; `None` when unknown or deactivated.
    pub fn roles_of(&self, user: &str) -> Option<Vec<Role>> {
        self.roles.get(user).map(|r| r.iter().copied().collect())
    }

    /// The user's teams (empty when none or unknown).
    pub fn teams_of(&self, user: &str) -> Vec<TeamName> {
        self.teams
            .get(user)
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Names of the active users, sorted.
    pub fn names(&self) -> Vec<String> {
        self.roles.keys().cloned().collect()
    }
}

impl View for Users {
    const FOLLOWS: &'static [&'static str] = &[streams::USER];

    fn apply(&mut self, ev: &RecordedEvent) {
        if let Some(e) = crate::decoded::<UserEvent>(ev) {
            self.apply_event(ev.stream.aggregate_id(), &e);
        }
    }
}

impl RoleDirectory for ViewHandle<Users> {
    fn roles_of(&self, user: &str) -> Option<Vec<Role>> {
        self.read().roles_of(user)
    }

    fn key_active(&self, user: &str, key_id: &str) -> bool {
        self.read().key_active(user, key_id)
    }

    fn teams_of(&self, user: &str) -> Vec<TeamName> {
        self.read().teams_of(user)
    }

    fn refresh(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            if let Err(e) = self.catch_up_now().await {
                tracing::warn!(error = %e, "the users directory could not catch up before refusing an unknown user");
            }
        })
    }
}
