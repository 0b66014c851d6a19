//! The rbac service: users, role assignments and API keys (events on the ledger), access
//! tokens (EdDSA JWTs, short-lived), and approval requests with segregation of duties.
//!
//! Architecture invariant: rbac is the only writer of `user` and `approval` streams and the
//! only holder of the token signing key. Other services learn roles from its events.

use axum::extract::rejection::JsonRejection;
pub mod grpc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use base64::Engine as _;
use goose_domain::approval::{
    ApprovalEvent, ApprovalKind, ApprovalPolicy, ApprovalRequest, ApprovalStatus, ImpactLevel,
    NewRequest, Refusal,
};
use goose_domain::rbac::{Permission, Role, UserName};
use goose_domain::streams;
use goose_domain::user::{User, UserError, UserEvent};
use goose_ledger::aggregate::{self, ExecuteError};
use goose_ledger::RecordedEvent;
use goose_ledger::{Metadata, NoteKey};
use goose_platform::view::{View, ViewHandle};
use goose_platform::{execute_problem, json_problem, ledger_problem, Platform};
use goose_runtime::auth::{Access, AuthLayer, Caller, IssuedToken, RouteSpec, TokenIssuer};
use goose_runtime::problem::Problem;
use serde::{Deserialize, Serialize};
use sha3::{Digest as _, Sha3_256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

type ApiResult<T> = Result<Json<T>, Problem>;

/// The rbac API: the table the middleware enforces, the matrix test walks and OpenAPI shows.
pub const ROUTES: &[RouteSpec] = &[
    RouteSpec::new(
        "POST",
        "/v1/auth/token",
        Access::Public,
        "Exchange an API key for an access token",
    )
    .body("TokenRequest")
    .returns("IssuedToken"),
    RouteSpec::new(
        "GET",
        "/v1/auth/keys",
        Access::Public,
        "Verifier keys of access tokens (C2SP vkeys)",
    ),
    RouteSpec::new(
        "GET",
        "/v1/auth/whoami",
        Access::Authenticated,
        "The caller, their current roles and permissions",
    )
    .returns("WhoAmI"),
    RouteSpec::new(
        "GET",
        "/v1/roles",
        Access::Authenticated,
        "Roles and the permissions they grant",
    ),
    RouteSpec::new(
        "POST",
        "/v1/users",
        Access::Permission(Permission::RbacAdmin),
        "Create a user",
    )
    .body("CreateUser")
    .returns("UserView"),
    RouteSpec::new(
        "GET",
        "/v1/users",
        Access::Permission(Permission::RbacRead),
        "List users",
    ),
    RouteSpec::new(
        "GET",
        "/v1/users/{name}",
        Access::Permission(Permission::RbacRead),
        "One user",
    )
    .returns("UserView"),
    RouteSpec::new(
        "POST",
        "/v1/users/{name}/roles",
        Access::Permission(Permission::RbacAdmin),
        "Assign a role",
    )
    .body("AssignRole")
    .returns("UserView"),
    RouteSpec::new(
        "DELETE",
        "/v1/users/{name}/roles/{role}",
        Access::Permission(Permission::RbacAdmin),
        "Revoke a role (effective at once)",
    )
    .returns("UserView"),
    RouteSpec::new(
        "POST",
        "/v1/users/{name}/api-keys",
        Access::Permission(Permission::RbacAdmin),
        "Issue an API key (shown once)",
    )
    .returns("NewApiKey"),
    RouteSpec::new(
        "DELETE",
        "/v1/users/{name}/api-keys/{key_id}",
        Access::Permission(Permission::RbacAdmin),
        "Revoke an API key",
    )
    .returns("UserView"),
    RouteSpec::new(
        "POST",
        "/v1/approvals",
        Access::AnyOf(&[
            Permission::PromotionRequest,
            Permission::ModelDeploy,
            Permission::UsecaseSubmit,
        ]),
        "Raise an approval request",
    )
    .body("CreateApproval")
    .returns("ApprovalView"),
    RouteSpec::new(
        "GET",
        "/v1/approvals",
        Access::Permission(Permission::ApprovalRead),
        "List approval requests (?status=pending|approved|rejected)",
    ),
    RouteSpec::new(
        "GET",
        "/v1/approvals/{id}",
        Access::Permission(Permission::ApprovalRead),
        "One approval request",
    )
    .returns("ApprovalView"),
    RouteSpec::new(
        "POST",
        "/v1/approvals/{id}/grant",
        // Any caller reaches the rules, so every refused attempt is recorded with its actor;
        // the request's kind decides the permission (promotion.approve, model.approve, ...).
        Access::Authenticated,
        "Grant (approve) a request (needs the kind's approve permission; recorded when refused)",
    )
    .body("Decision")
    .returns("ApprovalView"),
    RouteSpec::new(
        "POST",
        "/v1/approvals/{id}/reject",
        // Any caller reaches the rules, so every refused attempt is recorded with its actor;
        // the request's kind decides the permission (promotion.approve, model.approve, ...).
        Access::Authenticated,
        "Reject a request (needs the kind's approve permission; recorded when refused)",
    )
    .body("Decision")
    .returns("ApprovalView"),
];

/// The OpenAPI document of this service.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(components(schemas(
        TokenRequest,
        IssuedToken,
        WhoAmI,
        CreateUser,
        UserView,
        AssignRole,
        NewApiKey,
        CreateApproval,
        ApprovalView,
        Decision,
        ApprovalRequest,
        ApprovalKind,
        ImpactLevel,
        ApprovalStatus,
        Role
    )))]
    struct Doc;
    goose_runtime::openapi::document(
        "Golden Goose rbac",
        ROUTES,
        <Doc as utoipa::OpenApi>::openapi().components,
    )
}

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
}

goose_ledger::ledger_aggregate!(UserAgg(User), streams::USER, UserEvent);
goose_ledger::ledger_aggregate!(
    ApprovalAgg(ApprovalRequest),
    streams::APPROVAL,
    ApprovalEvent
);

#[derive(Clone)]
struct AppState {
    platform: Platform,
    issuer: Arc<TokenIssuer>,
    token_vkey: String,
    policy: ApprovalPolicy,
    approvals: ViewHandle<Approvals>,
}

/// Builds the rbac API (bootstrapping the admin if asked) on a running platform.
pub async fn build(platform: &Platform, config: RbacConfig) -> anyhow::Result<Router> {
    let issuer = Arc::new(TokenIssuer::new(
        config.token_key.signing_key(),
        config.token_key.key_id(),
        goose_platform::TOKEN_ISSUER,
        config.token_ttl,
    ));
    if let Some(b) = &config.bootstrap {
        bootstrap(platform, b).await?;
    }
    let approvals = ViewHandle::<Approvals>::start(platform).await?;
    let state = AppState {
        platform: platform.clone(),
        issuer,
        token_vkey: config.token_key.vkey(),
        policy: config.approvals,
        approvals,
    };
    let router = Router::new()
        .route("/v1/auth/token", post(token))
        .route("/v1/auth/keys", get(keys))
        .route("/v1/auth/whoami", get(whoami))
        .route("/v1/roles", get(roles))
        .route("/v1/users", post(create_user).get(list_users))
        .route("/v1/users/{name}", get(get_user))
        .route("/v1/users/{name}/roles", post(assign_role))
        .route("/v1/users/{name}/roles/{role}", delete(revoke_role))
        .route("/v1/users/{name}/api-keys", post(issue_key))
        .route("/v1/users/{name}/api-keys/{key_id}", delete(revoke_key))
        .route("/v1/approvals", post(create_approval).get(list_approvals))
        .route("/v1/approvals/{id}", get(get_approval))
        .route("/v1/approvals/{id}/grant", post(grant))
        .route("/v1/approvals/{id}/reject", post(reject))
        .with_state(state)
        .route_service("/goose.v1.Rbac/{*method}", grpc::RbacGrpc.server());
    let auth = AuthLayer::new(
        platform.verifier.clone(),
        Arc::new(platform.directory.clone()),
        &[ROUTES, grpc::GRPC_ROUTES].concat(),
    );
    Ok(auth.protect(router))
}

/// Creates the admin with an API key on first start; later starts find it and do nothing.
async fn bootstrap(platform: &Platform, b: &Bootstrap) -> anyhow::Result<()> {
    let name = UserName::parse(&b.admin)?;
    let (key_id, secret, api_key) = new_api_key();
    let meta = Metadata::now("rbac-bootstrap");
    let result =
        aggregate::execute::<UserAgg, UserError>(&platform.ledger, name.as_str(), &meta, |u| {
            u.0.bootstrap_admin(
                name.clone(),
                &key_id,
                &digest_hex(&secret),
                "rbac-bootstrap",
            )
        })
        .await
        .map_err(|e| anyhow::anyhow!("bootstrapping the admin: {e}"))?;
    if let Some(receipt) = result.receipt {
        if let Some(dir) = b.key_file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        write_secret_file(&b.key_file, &format!("{api_key}\n"))?;
        goose_platform::log_stale_after_write(
            platform.users_caught_up(receipt.last_position).await,
            "rbac bootstrap",
        );
        tracing::info!(admin = %name, key_file = %b.key_file.display(), "bootstrapped the admin user");
        println!(
            "rbac: created admin user {name}; its API key is in {} — get a token with:\n  goosectl token --user {name} --api-key-file {}",
            b.key_file.display(),
            b.key_file.display()
        );
    }
    Ok(())
}

fn write_secret_file(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// `gk_<key id>_<secret>`: 8 hex of id, 32 random bytes of secret (base64url).
fn new_api_key() -> (String, String, String) {
    use rand::RngCore as _;
    let mut id = [0u8; 4];
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut id);
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let key_id = hex::encode(id);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let api_key = format!("gk_{key_id}_{secret}");
    (key_id, secret, api_key)
}

fn digest_hex(secret: &str) -> String {
    hex::encode(Sha3_256::digest(secret.as_bytes()))
}

fn user_problem(e: UserError) -> Problem {
    match e {
        UserError::NotFound => Problem::not_found("no such user"),
        UserError::Invalid(m) => Problem::bad_request(m),
        UserError::NoSuchKey(_) => Problem::not_found(e.to_string()),
        _ => Problem::conflict(e.to_string()),
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub user: String,
    /// `gk_<key id>_<secret>`
    pub api_key: String,
}

async fn token(
    State(s): State<AppState>,
    body: Result<Json<TokenRequest>, JsonRejection>,
) -> ApiResult<IssuedToken> {
    let Json(req) = body.map_err(json_problem)?;
    let refuse = || {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "unknown user or invalid API key",
        )
    };
    let name = UserName::parse(&req.user).map_err(|_| refuse())?;
    let (key_id, secret) = req
        .api_key
        .strip_prefix("gk_")
        .and_then(|k| k.split_once('_'))
        .ok_or_else(refuse)?;
    let user = aggregate::load::<UserAgg>(&s.platform.ledger, name.as_str())
        .await
        .map_err(|e| ledger_problem(&e))?
        .state
        .0;
    if !user.active || user.keys.get(key_id) != Some(&digest_hex(secret)) {
        return Err(refuse());
    }
    let roles: Vec<Role> = user.roles.iter().copied().collect();
    s.issuer
        .issue(name.as_str(), &roles, now_unix())
        .map(Json)
        .map_err(|e| Problem::internal(e.to_string()))
}

async fn keys(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "keys": [s.token_vkey] }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WhoAmI {
    pub user: String,
    pub roles: Vec<Role>,
    pub permissions: Vec<String>,
}

async fn whoami(caller: Caller) -> Json<WhoAmI> {
    Json(WhoAmI {
        user: caller.user,
        roles: caller.roles,
        permissions: caller
            .permissions
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect(),
    })
}

async fn roles() -> Json<serde_json::Value> {
    let roles: BTreeMap<&str, Vec<&str>> = Role::ALL
        .iter()
        .map(|r| {
            (
                r.as_str(),
                r.permissions().iter().map(Permission::as_str).collect(),
            )
        })
        .collect();
    let permissions: BTreeMap<&str, &str> = Permission::ALL
        .iter()
        .map(|p| (p.as_str(), p.description()))
        .collect();
    Json(serde_json::json!({ "roles": roles, "permissions": permissions }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    /// Roles to assign right away.
    #[serde(default)]
    pub roles: Vec<Role>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub name: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub active: bool,
    pub api_keys: Vec<String>,
}

impl UserView {
    fn of(u: &User) -> Self {
        Self {
            name: u.name.as_ref().map(ToString::to_string).unwrap_or_default(),
            display_name: u.display_name.clone(),
            roles: u.roles.iter().copied().collect(),
            active: u.active,
            api_keys: u.keys.keys().cloned().collect(),
        }
    }
}

fn parse_user(name: &str) -> Result<UserName, Problem> {
    UserName::parse(name).map_err(|e| Problem::bad_request(e.to_string()))
}

async fn run_user(
    s: &AppState,
    caller: &Caller,
    name: &UserName,
    decide: impl Fn(&User) -> Result<Vec<UserEvent>, UserError>,
) -> ApiResult<UserView> {
    let meta = Metadata::now(caller.user.clone());
    let done =
        aggregate::execute::<UserAgg, UserError>(&s.platform.ledger, name.as_str(), &meta, |u| {
            decide(&u.0)
        })
        .await
        .map_err(|e| execute_problem(e, user_problem))?;
    if let Some(r) = done.receipt {
        goose_platform::log_stale_after_write(
            s.platform.users_caught_up(r.last_position).await,
            "rbac user",
        );
    }
    Ok(Json(UserView::of(&done.state.0)))
}

async fn create_user(
    State(s): State<AppState>,
    caller: Caller,
    body: Result<Json<CreateUser>, JsonRejection>,
) -> ApiResult<UserView> {
    let Json(req) = body.map_err(json_problem)?;
    let name = parse_user(&req.name)?;
    let actor = caller.user.clone();
    run_user(&s, &caller, &name, |u| {
        u.create_with_roles(name.clone(), &req.display_name, &req.roles, &actor)
    })
    .await
}

async fn list_users(State(s): State<AppState>) -> ApiResult<Vec<UserView>> {
    // The users are few; read them from the ledger's user streams via the directory's names.
    let mut out = Vec::new();
    for name in s.platform.directory.users() {
        let u = aggregate::load::<UserAgg>(&s.platform.ledger, &name)
            .await
            .map_err(|e| ledger_problem(&e))?;
        out.push(UserView::of(&u.state.0));
    }
    Ok(Json(out))
}

async fn get_user(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<UserView> {
    let name = parse_user(&name)?;
    let u = aggregate::load::<UserAgg>(&s.platform.ledger, name.as_str())
        .await
        .map_err(|e| ledger_problem(&e))?;
    if u.version == 0 {
        return Err(Problem::not_found(format!("no user {name}")));
    }
    Ok(Json(UserView::of(&u.state.0)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignRole {
    pub role: Role,
}

async fn assign_role(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Result<Json<AssignRole>, JsonRejection>,
) -> ApiResult<UserView> {
    let Json(req) = body.map_err(json_problem)?;
    let name = parse_user(&name)?;
    let actor = caller.user.clone();
    run_user(&s, &caller, &name, |u| u.assign(req.role, &actor)).await
}

async fn revoke_role(
    State(s): State<AppState>,
    caller: Caller,
    Path((name, role)): Path<(String, String)>,
) -> ApiResult<UserView> {
    let name = parse_user(&name)?;
    let role: Role = role
        .parse()
        .map_err(|e: goose_domain::rbac::Error| Problem::bad_request(e.to_string()))?;
    let actor = caller.user.clone();
    run_user(&s, &caller, &name, |u| u.revoke(role, &actor)).await
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NewApiKey {
    pub user: String,
    pub key_id: String,
    /// Shown once; only its SHA3-256 digest is stored.
    pub api_key: String,
}

async fn issue_key(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<NewApiKey> {
    let name = parse_user(&name)?;
    let (key_id, secret, api_key) = new_api_key();
    let digest = digest_hex(&secret);
    let actor = caller.user.clone();
    let _user = run_user(&s, &caller, &name, |u| {
        u.issue_key(&key_id, &digest, &actor)
    })
    .await?;
    Ok(Json(NewApiKey {
        user: name.to_string(),
        key_id,
        api_key,
    }))
}

async fn revoke_key(
    State(s): State<AppState>,
    caller: Caller,
    Path((name, key_id)): Path<(String, String)>,
) -> ApiResult<UserView> {
    let name = parse_user(&name)?;
    let actor = caller.user.clone();
    run_user(&s, &caller, &name, |u| u.revoke_key(&key_id, &actor)).await
}

pub use goose_domain::approval::{ApprovalView, CreateApproval};

#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// A comment for a grant, the reason for a rejection.
    #[serde(default)]
    pub comment: String,
}

fn refusal_problem(r: &Refusal) -> Problem {
    match r {
        Refusal::SelfApproval(_) | Refusal::MissingPermission { .. } => {
            Problem::forbidden(r.to_string())
        }
        Refusal::NotFound => Problem::not_found("no such approval request"),
        Refusal::Invalid(m) => Problem::bad_request(m.clone()),
        Refusal::AlreadyGranted(_) | Refusal::AlreadyDecided(_) | Refusal::AlreadyExists => {
            Problem::conflict(r.to_string())
        }
    }
}

async fn create_approval(
    State(s): State<AppState>,
    caller: Caller,
    body: Result<Json<CreateApproval>, JsonRejection>,
) -> ApiResult<ApprovalView> {
    let Json(req) = body.map_err(json_problem)?;
    caller.require(req.kind.request_permission())?;
    let id = uuid::Uuid::now_v7().to_string();
    let meta = Metadata::now(caller.user.clone());
    let new = NewRequest {
        kind: req.kind,
        subject: &req.subject,
        impact: req.impact,
        reason: &req.reason,
    };
    let done = aggregate::execute::<ApprovalAgg, Refusal>(&s.platform.ledger, &id, &meta, |a| {
        a.0.request(&caller.user, caller.permissions, &new, &s.policy)
    })
    .await
    .map_err(|e| execute_problem(e, |r| refusal_problem(&r)))?;
    s.approvals.after_write(done.receipt, "rbac").await;
    Ok(Json(ApprovalView {
        id,
        request: done.state.0,
    }))
}

/// rbac's read model of approval requests, by id.
#[derive(Debug, Default)]
pub struct Approvals(BTreeMap<String, ApprovalRequest>);

impl View for Approvals {
    const FOLLOWS: &'static [&'static str] = &[streams::APPROVAL];

    fn apply(&mut self, ev: &RecordedEvent) {
        if let Some(e) = goose_platform::decoded::<ApprovalEvent>(ev) {
            self.0
                .entry(ev.stream.aggregate_id().to_owned())
                .or_default()
                .apply(&e);
        }
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<ApprovalStatus>,
}

async fn list_approvals(
    State(s): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Vec<ApprovalView>> {
    let Query(q) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let view = s.approvals.read();
    Ok(Json(
        view.0
            .iter()
            .filter(|(_, r)| q.status.is_none_or(|st| r.status == st))
            .map(|(id, r)| ApprovalView {
                id: id.clone(),
                request: r.clone(),
            })
            .collect(),
    ))
}

fn parse_id(id: &str) -> Result<String, Problem> {
    uuid::Uuid::parse_str(id)
        .map(|u| u.to_string())
        .map_err(|_| Problem::bad_request(format!("approval id {id:?} is not a UUID")))
}

async fn get_approval(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<ApprovalView> {
    let id = parse_id(&id)?;
    let a = aggregate::load::<ApprovalAgg>(&s.platform.ledger, &id)
        .await
        .map_err(|e| ledger_problem(&e))?;
    if a.version == 0 {
        return Err(Problem::not_found(format!("no approval request {id}")));
    }
    Ok(Json(ApprovalView {
        id,
        request: a.state.0,
    }))
}

async fn decide(
    s: AppState,
    caller: Caller,
    id: String,
    action: goose_domain::approval::Decision,
    body: Result<Json<Decision>, JsonRejection>,
) -> ApiResult<ApprovalView> {
    let Json(req) = body.map_err(json_problem)?;
    let id = parse_id(&id)?;
    let meta = Metadata::now(caller.user.clone());
    let result = aggregate::execute::<ApprovalAgg, Refusal>(&s.platform.ledger, &id, &meta, |a| {
        a.0.decide(action, &caller.user, caller.permissions, &req.comment)
    })
    .await;
    match result {
        Ok(done) => {
            s.approvals.after_write(done.receipt, "rbac").await;
            Ok(Json(ApprovalView {
                id,
                request: done.state.0,
            }))
        }
        Err(ExecuteError::Rejected(refusal)) => {
            if refusal.is_recorded() {
                // The attempt itself goes on the record, with its actor.
                let event = refusal.as_event(&caller.user, action);
                let recorded = aggregate::execute::<ApprovalAgg, Refusal>(
                    &s.platform.ledger,
                    &id,
                    &meta,
                    |_| Ok(vec![event.clone()]),
                )
                .await;
                if let Err(e) = recorded {
                    tracing::error!(error = %e, "could not record a refused approval attempt");
                }
                tracing::info!(user = %caller.user, %id, action = action.as_str(), reason = %refusal, "approval attempt refused");
            }
            Err(refusal_problem(&refusal))
        }
        Err(e) => Err(execute_problem(e, |r| refusal_problem(&r))),
    }
}

async fn grant(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<Decision>, JsonRejection>,
) -> ApiResult<ApprovalView> {
    decide(s, caller, id, goose_domain::approval::Decision::Grant, body).await
}

async fn reject(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<Decision>, JsonRejection>,
) -> ApiResult<ApprovalView> {
    decide(
        s,
        caller,
        id,
        goose_domain::approval::Decision::Reject,
        body,
    )
    .await
}
