//! The rbac service: users, role assignments and API keys (events on the ledger), access
//! tokens (EdDSA JWTs, short-lived), and approval requests with segregation of duties.
//!
//! Architecture invariant: rbac is the only writer of `user` and `approval` streams and the
//! only holder of the token signing key. Other services learn roles from its events.
//!
//! Layout (docs/adding-a-service.md): [`routes`] the one route list, [`api`] wire types,
//! `handlers` REST handlers, `commands` writes, [`views`] read models, [`grpc`]; sign-in
//! through OpenID providers: [`sso`] (their keys and signatures) and `sign_in` (the token
//! exchange).

pub mod api;
pub mod cli;
mod commands;
pub mod grpc;
mod handlers;
mod routes;
mod sign_in;
pub mod sso;
pub mod views;

pub use commands::{recover_admin, write_key_file};
pub use routes::{openapi, routes};

use axum::Router;
use goose_domain::approval::ApprovalPolicy;
use goose_domain::identity::IdentityConfig;
use goose_ledger::NoteKey;
use goose_platform::view::ViewHandle;
use goose_platform::Platform;
use goose_runtime::auth::TokenIssuer;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use views::{Approvals, Users};

/// First-start bootstrap: an admin user and an API key file to get its token with.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub admin: String,
    pub key_file: PathBuf,
}

/// How the rbac service runs.
#[derive(Debug, Clone)]
pub struct RbacConfig {
    pub token_key: Arc<NoteKey>,
    pub token_ttl: Duration,
    pub approvals: ApprovalPolicy,
    pub bootstrap: Option<Bootstrap>,
    /// Trusted OpenID providers and service accounts (`--identity-config`).
    pub identity: Option<IdentityConfig>,
}

#[derive(Clone)]
pub(crate) struct AppState {
    platform: Platform,
    issuer: Arc<TokenIssuer>,
    token_vkey: String,
    policy: ApprovalPolicy,
    users: ViewHandle<Users>,
    approvals: ViewHandle<Approvals>,
    sso: Option<sso::Sso>,
}

/// Builds the rbac API (bootstrapping the admin if asked) on a running platform.
pub async fn build(platform: &Platform, config: RbacConfig) -> anyhow::Result<Router> {
    let issuer = Arc::new(TokenIssuer::new(
        config.token_key.signing_key(),
        config.token_key.key_id(),
        goose_platform::TOKEN_ISSUER,
        config.token_ttl,
    ));
    // Kept in the snapshot directory, when there is one, like the platform's own views.
    let users = platform.start_view::<Users>("rbac-users").await?;
    if let Some(b) = &config.bootstrap {
        commands::bootstrap(platform, &users, b).await?;
    }
    let approvals = platform.start_view::<Approvals>("rbac-approvals").await?;
    let state = AppState {
        platform: platform.clone(),
        issuer,
        token_vkey: config.token_key.vkey(),
        policy: config.approvals,
        users,
        approvals,
        sso: config.identity.map(sso::Sso::new),
    };
    let (rest, specs) = routes::api().into_parts();
    let router = rest
        .with_state(state)
        .route_service("/goose.v1.Rbac/{*method}", grpc::RbacGrpc.server());
    let router = goose_platform::refuse_declared_lengths_over(router, goose_platform::BODY_LIMIT);
    Ok(platform.protect(router, &[specs.as_slice(), grpc::GRPC_ROUTES].concat()))
}
