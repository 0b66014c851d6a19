//! Sign-in through an organisation's OpenID provider: which issuers are trusted, what a
//! verified token of theirs means (a user, roles, teams) and which machine identities (CI
//! jobs) act as which service account. Pure: the rbac service fetches the providers' keys
//! and checks signatures; this decides what a verified token's claims amount to, and which
//! user events bring the user in line with what the provider says now.

use crate::rbac::{Role, TeamName, UserName};
use crate::user::{User, UserEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The identity configuration of rbac (`--identity-config`, YAML or JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    #[serde(default)]
    pub issuers: Vec<IssuerConfig>,
    /// Machine identities: tokens whose `sub` matches act as a named service account.
    #[serde(default)]
    pub service_accounts: Vec<ServiceAccount>,
}

/// One trusted OpenID provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The `iss` of its tokens; its discovery document is `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// `aud` values accepted (the client id of `goosectl`/the console, the audience CI jobs ask for).
    pub audiences: Vec<String>,
    /// Clock skew tolerated on `exp`/`nbf`/`iat`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// The claim that names the user (lowercased; must be a valid user name).
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// The claim holding the user's groups (a dotted path, e.g. `realm_access.roles`).
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Group → the roles its members hold.
    #[serde(default)]
    pub roles: BTreeMap<String, Vec<Role>>,
    /// Group → the team its members belong to.
    #[serde(default)]
    pub teams: BTreeMap<String, TeamName>,
    /// Groups named `<prefix><team>` make their members part of `<team>`.
    #[serde(default)]
    pub team_prefix: Option<String>,
    /// Signature algorithms accepted (HMAC and `none` never are).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// How often the provider's keys are fetched again (an unknown key id fetches at once).
    #[serde(default = "default_refresh")]
    pub jwks_refresh_secs: u64,
    /// The public client `goosectl login` and the console sign in with (authorization code + PKCE).
    #[serde(default)]
    pub client: Option<PublicClient>,
    /// Plain `http://` to a provider that is not on a loopback address (never in production).
    #[serde(default)]
    pub allow_http: bool,
}

/// A public OAuth client (no secret; PKCE).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicClient {
    pub client_id: String,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
}

/// A machine identity: a token of `issuer` whose `sub` matches `subject` (a glob: `*` any
/// characters, `?` one) acts as `user` with these roles and teams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccount {
    pub issuer: String,
    pub subject: String,
    pub user: UserName,
    pub roles: Vec<Role>,
    #[serde(default)]
    pub teams: Vec<TeamName>,
}

fn default_leeway() -> u64 {
    60
}
fn default_username_claim() -> String {
    "preferred_username".into()
}
fn default_groups_claim() -> String {
    "groups".into()
}
fn default_algorithms() -> Vec<String> {
    ["RS256", "ES256", "EdDSA"].map(String::from).to_vec()
}
fn default_refresh() -> u64 {
    300
}
fn default_scopes() -> Vec<String> {
    ["openid", "profile", "groups"].map(String::from).to_vec()
}

/// Algorithms an issuer may be configured with.
pub const ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// What a verified token amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: UserName,
    pub display_name: String,
    pub issuer: String,
    /// The token's `sub`, or `pattern:<glob>` for a service account (the binding is the
    /// configured pattern, not one job's subject).
    pub subject: String,
    pub roles: BTreeSet<Role>,
    pub teams: BTreeSet<TeamName>,
    pub service_account: bool,
}

/// Why a token or configuration was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("the token has no {0:?} claim")]
    MissingClaim(String),
    #[error("claim {claim:?} ({value:?}) is not a usable user name: {why}")]
    InvalidUser {
        claim: String,
        value: String,
        why: String,
    },
    #[error("no Golden Goose role is mapped from {user}'s groups at {issuer}")]
    NoRole { user: String, issuer: String },
    #[error("user {user} exists and is not linked to this identity at {issuer}: an admin links accounts, a token cannot take one over")]
    NotLinked { user: String, issuer: String },
    #[error("user {0} is deactivated")]
    Deactivated(String),
    #[error("identity configuration: {0}")]
    Config(String),
}

impl IdentityConfig {
    /// Reads and checks a configuration (YAML or JSON).
    pub fn parse(text: &str) -> Result<Self, IdentityError> {
        let value: Value =
            crate::yaml::from_str(text).map_err(|e| IdentityError::Config(e.to_string()))?;
        let config: Self =
            serde_json::from_value(value).map_err(|e| IdentityError::Config(e.to_string()))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), IdentityError> {
        let bad = |m: String| Err(IdentityError::Config(m));
        let mut seen = BTreeSet::new();
        for i in &self.issuers {
            if !seen.insert(i.issuer.as_str()) {
                return bad(format!("issuer {} is listed twice", i.issuer));
            }
            let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
                .iter()
                .any(|p| {
                    i.issuer
                        .strip_prefix(p)
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
                });
            if !(i.issuer.starts_with("https://") || loopback || i.allow_http) {
                return bad(format!(
                    "issuer {} must be https:// (plain http only on a loopback address, or with allow_http)",
                    i.issuer
                ));
            }
            if i.audiences.is_empty() {
                return bad(format!("issuer {}: audiences is empty", i.issuer));
            }
            if i.algorithms.is_empty() {
                return bad(format!("issuer {}: algorithms is empty", i.issuer));
            }
            if let Some(a) = i
                .algorithms
                .iter()
                .find(|a| !ALGORITHMS.contains(&a.as_str()))
            {
                return bad(format!(
                    "issuer {}: algorithm {a:?} is not accepted (one of {})",
                    i.issuer,
                    ALGORITHMS.join(", ")
                ));
            }
            if i.jwks_refresh_secs == 0 || i.leeway_secs > 600 {
                return bad(format!(
                    "issuer {}: jwks_refresh_secs must be at least 1 and leeway_secs at most 600",
                    i.issuer
                ));
            }
        }
        for a in &self.service_accounts {
            if self.issuer(&a.issuer).is_none() {
                return bad(format!(
                    "service account {}: issuer {} is not configured",
                    a.user, a.issuer
                ));
            }
            glob::Pattern::new(&a.subject).map_err(|e| {
                IdentityError::Config(format!("service account {}: subject: {e}", a.user))
            })?;
            if a.roles.is_empty() {
                return bad(format!("service account {}: roles is empty", a.user));
            }
        }
        Ok(())
    }

    /// The configuration of issuer `iss`, when trusted.
    pub fn issuer(&self, iss: &str) -> Option<&IssuerConfig> {
        self.issuers.iter().find(|i| i.issuer == iss)
    }

    /// What the verified `claims` of a token of `issuer` amount to.
    pub fn resolve(
        &self,
        issuer: &IssuerConfig,
        claims: &Value,
    ) -> Result<Identity, IdentityError> {
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| IdentityError::MissingClaim("sub".into()))?;
        if let Some(a) = self.service_accounts.iter().find(|a| {
            a.issuer == issuer.issuer
                && glob::Pattern::new(&a.subject).is_ok_and(|p| p.matches(sub))
        }) {
            return Ok(Identity {
                user: a.user.clone(),
                display_name: format!("service account for {}", a.subject),
                issuer: issuer.issuer.clone(),
                subject: format!("pattern:{}", a.subject),
                roles: a.roles.iter().copied().collect(),
                teams: a.teams.iter().cloned().collect(),
                service_account: true,
            });
        }
        let raw = claim(claims, &issuer.username_claim)
            .and_then(Value::as_str)
            .ok_or_else(|| IdentityError::MissingClaim(issuer.username_claim.clone()))?;
        let user =
            UserName::parse(&raw.to_lowercase()).map_err(|e| IdentityError::InvalidUser {
                claim: issuer.username_claim.clone(),
                value: raw.to_owned(),
                why: e.to_string(),
            })?;
        let groups = groups(claim(claims, &issuer.groups_claim));
        let mut roles = BTreeSet::new();
        let mut teams = BTreeSet::new();
        for g in &groups {
            roles.extend(issuer.roles.get(g).into_iter().flatten().copied());
            if let Some(t) = issuer.teams.get(g) {
                teams.insert(t.clone());
            }
            if let Some(t) = issuer
                .team_prefix
                .as_deref()
                .and_then(|p| g.strip_prefix(p))
                .and_then(|t| TeamName::parse(&t.to_lowercase()).ok())
            {
                teams.insert(t);
            }
        }
        let display_name = claims
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| n.chars().count() <= 200 && !n.chars().any(char::is_control))
            .unwrap_or(raw)
            .to_owned();
        Ok(Identity {
            user,
            display_name,
            issuer: issuer.issuer.clone(),
            subject: sub.to_owned(),
            roles,
            teams,
            service_account: false,
        })
    }
}

/// A claim by dotted path (`realm_access.roles`); a top-level claim whose name holds dots
/// (`https://example.com/groups`) is found first.
fn claim<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    claims
        .get(path)
        .or_else(|| path.split('.').try_fold(claims, |v, part| v.get(part)))
}

/// Groups: an array of strings or one string; anything else is no groups.
fn groups(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Who recorded what the provider said: `sso:<issuer>`.
pub fn actor_of(issuer: &str) -> String {
    format!("sso:{issuer}")
}

/// The events that bring `user` (as recorded) in line with `id` (what the provider says
/// now): created and linked on first sign-in; roles and teams follow the provider's groups
/// (roles given by hand to a signed-in user are taken back at their next sign-in).
pub fn sync(user: &User, id: &Identity) -> Result<Vec<UserEvent>, IdentityError> {
    let actor = actor_of(&id.issuer);
    let mut events = Vec::new();
    let linked = (id.issuer.clone(), id.subject.clone());
    match &user.name {
        None => {
            events.push(UserEvent::UserCreated {
                name: id.user.clone(),
                display_name: id.display_name.clone(),
                created_by: actor.clone(),
            });
            events.push(UserEvent::IdentityLinked {
                issuer: id.issuer.clone(),
                subject: id.subject.clone(),
                linked_by: actor.clone(),
            });
        }
        Some(name) => {
            if !user.identities.contains(&linked) {
                return Err(IdentityError::NotLinked {
                    user: name.to_string(),
                    issuer: id.issuer.clone(),
                });
            }
            if !user.active {
                return Err(IdentityError::Deactivated(name.to_string()));
            }
        }
    }
    for role in id.roles.difference(&user.roles) {
        events.push(UserEvent::RoleAssigned {
            role: *role,
            assigned_by: actor.clone(),
        });
    }
    for role in user.roles.difference(&id.roles) {
        events.push(UserEvent::RoleRevoked {
            role: *role,
            revoked_by: actor.clone(),
        });
    }
    if id.teams != user.teams {
        events.push(UserEvent::TeamsSet {
            teams: id.teams.iter().cloned().collect(),
            set_by: actor,
        });
    }
    Ok(events)
}

#[cfg(test)]
#[path = "identity_tests.rs"]
mod tests;
