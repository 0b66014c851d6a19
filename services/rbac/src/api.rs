//! rbac's wire types (requests and responses of its REST API).

use goose_domain::rbac::Role;
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

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub name: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub active: bool,
    pub api_keys: Vec<String>,
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
        }
    }
}
