//! rbac's wire types (requests and responses of its REST API).

use goose_domain::identity::PublicClient;
use goose_domain::rbac::{Role, TeamName};
use goose_domain::user::User;
use serde::{Deserialize, Serialize};

pub use goose_domain::approval::{ApprovalView, CreateApproval};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub user: String,
    /// `gk_<key id>_<secret>`
    pub api_key: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WhoAmI {
    pub user: String,
    pub roles: Vec<Role>,
    pub permissions: Vec<String>,
    pub teams: Vec<TeamName>,
}

/// RFC 8693 token exchange (as JSON): a token of a trusted OpenID provider (an ID token of
/// a person, or the OIDC token of a CI job) for a Golden Goose access token.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenExchange {
    #[serde(default)]
    pub grant_type: Option<GrantType>,
    /// The provider's signed JWT.
    #[schema(min_length = 1, max_length = 16384)]
    pub subject_token: String,
    #[serde(default)]
    pub subject_token_type: Option<SubjectTokenType>,
}

/// RFC 8693's grant type (the only one this endpoint takes).
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
pub enum GrantType {
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
}

/// What the subject token is: any of them is a JWT signed by a trusted provider.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
pub enum SubjectTokenType {
    #[serde(rename = "urn:ietf:params:oauth:token-type:id_token")]
    IdToken,
    #[serde(rename = "urn:ietf:params:oauth:token-type:jwt")]
    Jwt,
    #[serde(rename = "urn:ietf:params:oauth:token-type:access_token")]
    AccessToken,
}

/// The answer to a token exchange.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExchangedToken {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    /// Always `urn:ietf:params:oauth:token-type:access_token`.
    pub issued_token_type: String,
    /// The Golden Goose user the token is for, with the roles and teams the provider's
    /// groups gave them (recorded on the ledger).
    pub user: String,
    pub roles: Vec<Role>,
    pub teams: Vec<TeamName>,
}

/// A trusted OpenID provider, as clients need to know it to sign in.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SsoIssuer {
    pub issuer: String,
    /// The public client to sign in with (authorization code + PKCE), when configured.
    pub client: Option<PublicClient>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTeams {
    /// The user's teams (replacing the current set; each once, at most 64).
    #[schema(schema_with = unique_teams)]
    pub teams: Vec<TeamName>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(pattern = "^[a-z][a-z0-9._-]{0,63}$")]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 200, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub display_name: String,
    /// Roles to assign right away (each once).
    #[serde(default)]
    #[schema(schema_with = unique_roles)]
    pub roles: Vec<Role>,
}

/// A list of roles, each at most once (the server refuses a role listed twice).
fn unique_roles() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(utoipa::openapi::Ref::from_schema_name("Role"))
        .unique_items(true)
        .build()
}

/// A list of teams, each at most once (the server refuses a team listed twice), at most 64.
fn unique_teams() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(utoipa::openapi::Ref::from_schema_name("TeamName"))
        .unique_items(true)
        .max_items(Some(64))
        .build()
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub name: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub active: bool,
    pub api_keys: Vec<String>,
    pub teams: Vec<TeamName>,
    /// External identities (`issuer` and `subject`) the user signs in as.
    pub identities: Vec<LinkedIdentity>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LinkedIdentity {
    pub issuer: String,
    pub subject: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignRole {
    pub role: Role,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NewApiKey {
    pub user: String,
    pub key_id: String,
    /// Shown once; only its SHA3-256 digest is stored.
    pub api_key: String,
}

#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// A comment for a grant, the reason for a rejection.
    #[serde(default)]
    pub comment: String,
}

impl UserView {
    pub(crate) fn of(u: &User) -> Self {
        Self {
            name: u.name.as_ref().map(ToString::to_string).unwrap_or_default(),
            display_name: u.display_name.clone(),
            roles: u.roles.iter().copied().collect(),
            active: u.active,
            api_keys: u.keys.keys().cloned().collect(),
            teams: u.teams.iter().cloned().collect(),
            identities: u
                .identities
                .iter()
                .map(|(issuer, subject)| LinkedIdentity {
                    issuer: issuer.clone(),
                    subject: subject.clone(),
                })
                .collect(),
        }
    }
}
