//! Who holds which roles now. The platform implements it with a read model of rbac's events,
//! so a revoked role takes effect when its event arrives, not when the token expires.

use goose_domain::rbac::{Role, TeamName};

/// The current roles of users, as a service's read model knows them.
pub trait RoleDirectory: Send + Sync + 'static {
    /// `None` when the user is unknown (or deactivated): their tokens are refused.
    fn roles_of(&self, user: &str) -> Option<Vec<Role>>;
    /// Whether the user's API key `key_id` has not been revoked: a token exchanged for a
    /// revoked key is refused from the moment the revocation arrives.
    fn key_active(&self, user: &str, key_id: &str) -> bool;
    /// The teams the user belongs to now (ownership decisions).
    fn teams_of(&self, _user: &str) -> Vec<TeamName> {
        Vec::new()
    }
    /// Brings the directory up to date with everything recorded (asked before refusing an
    /// unknown user: the user may have been created a moment ago by another process).
    fn refresh(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }
}
