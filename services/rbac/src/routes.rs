//! The rbac API as one list: each route with its access rule, OpenAPI operation and handler.

use crate::api::{
    AssignRole, CreateUser, Decision, ExchangedToken, GrantType, LinkedIdentity, NewApiKey,
    SetTeams, SsoIssuer, SubjectTokenType, TokenExchange, TokenRequest, UserView, WhoAmI,
};
use crate::handlers::*;
use crate::AppState;
use goose_domain::approval::{
    ApprovalKind, ApprovalRequest, ApprovalStatus, ApprovalView, CreateApproval, ImpactLevel,
};
use goose_domain::identity::PublicClient;
use goose_domain::rbac::{Permission, Role, TeamName};
use goose_runtime::auth::IssuedToken;
use goose_runtime::routes::{Access, RouteSpec, Routes};

/// The rbac REST API: each route with its handler. This one list builds the router, the
/// access table the middleware enforces, the OpenAPI document and the matrix test's rows.
pub(crate) fn api() -> Routes<AppState> {
    Routes::new()
.route(RouteSpec::post("/v1/auth/token",
        Access::Public,
        "Exchange an API key for an access token",
    )
    .body("TokenRequest")
    .also(&[401])
    .returns("IssuedToken"), token)
.route(RouteSpec::post("/v1/auth/sso/token",
        Access::Public,
        "Exchange a trusted OpenID provider's token for an access token (RFC 8693)",
    )
    .body("TokenExchange")
    .also(&[401, 403, 404, 503])
    .returns("ExchangedToken"), crate::sign_in::exchange)
.route(RouteSpec::get("/v1/auth/sso",
        Access::Public,
        "The OpenID providers users sign in with (issuer, public client)",
    ), crate::sign_in::issuers)
.route(RouteSpec::get("/v1/auth/keys",
        Access::Public,
        "Verifier keys of access tokens (C2SP vkeys)",
    ), keys)
.route(RouteSpec::get("/v1/auth/whoami",
        Access::Authenticated,
        "The caller, their current roles and permissions",
    )
    .returns("WhoAmI"), whoami)
.route(RouteSpec::get("/v1/roles",
        Access::Authenticated,
        "Roles and the permissions they grant",
    ), roles)
.route(RouteSpec::post("/v1/users",
        Access::Permission(Permission::RbacAdmin),
        "Create a user",
    )
    .body("CreateUser")
    .returns("UserView"), create_user)
.route(RouteSpec::get("/v1/users",
        Access::Permission(Permission::RbacRead),
        "List users",
    ), list_users)
.route(RouteSpec::get("/v1/users/{name}",
        Access::Permission(Permission::RbacRead),
        "One user",
    )
    .returns("UserView"), get_user)
.route(RouteSpec::post("/v1/users/{name}/roles",
        Access::Permission(Permission::RbacAdmin),
        "Assign a role",
    )
    .body("AssignRole")
    .returns("UserView"), assign_role)
.route(RouteSpec::delete("/v1/users/{name}/roles/{role}",
        Access::Permission(Permission::RbacAdmin),
        "Revoke a role (effective at once)",
    )
    .returns("UserView"), revoke_role)
.route(RouteSpec::put("/v1/users/{name}/teams",
        Access::Permission(Permission::RbacAdmin),
        "Set a user's teams (a signed-in SSO user's teams follow the provider's groups)",
    )
    .body("SetTeams")
    .returns("UserView"), set_teams)
.route(RouteSpec::post("/v1/users/{name}/api-keys",
        Access::Permission(Permission::RbacAdmin),
        "Issue an API key (shown once)",
    )
    .returns("NewApiKey"), issue_key)
.route(RouteSpec::delete("/v1/users/{name}/api-keys/{key_id}",
        Access::Permission(Permission::RbacAdmin),
        "Revoke an API key (tokens issued for it are refused at once)",
    )
    .returns("UserView"), revoke_key)
.route(RouteSpec::post("/v1/users/{name}/deactivate",
        Access::Permission(Permission::RbacAdmin),
        "Deactivate a user: roles and keys go, their tokens are refused at once (not the last admin)",
    )
    .returns("UserView"), deactivate_user)
.route(RouteSpec::post("/v1/users/{name}/reactivate",
        Access::Permission(Permission::RbacAdmin),
        "Reactivate a deactivated user (with no roles and no keys)",
    )
    .returns("UserView"), reactivate_user)
.route(RouteSpec::post("/v1/approvals",
        Access::AnyOf(&[
            Permission::PromotionRequest,
            Permission::ModelDeploy,
            Permission::UsecaseSubmit,
        ]),
        "Raise an approval request",
    )
    .body("CreateApproval")
    .returns("ApprovalView"), create_approval)
.route(RouteSpec::get("/v1/approvals",
        Access::Permission(Permission::ApprovalRead),
        "List approval requests (?status=pending|approved|rejected)",
    ), list_approvals)
.route(RouteSpec::get("/v1/approvals/{id}",
        Access::Permission(Permission::ApprovalRead),
        "One approval request",
    )
    .returns("ApprovalView"), get_approval)
.route(RouteSpec::post("/v1/approvals/{id}/grant",
        // Any caller reaches the rules, so every refused attempt is recorded with its actor;
        // the request's kind decides the permission (promotion.approve, model.approve, ...).
        Access::Authenticated,
        "Grant (approve) a request (needs the kind's approve permission; recorded when refused)",
    )
    .body("Decision")
    .returns("ApprovalView"), grant)
.route(RouteSpec::post("/v1/approvals/{id}/reject",
        // Any caller reaches the rules, so every refused attempt is recorded with its actor;
        // the request's kind decides the permission (promotion.approve, model.approve, ...).
        Access::Authenticated,
        "Reject a request (needs the kind's approve permission; recorded when refused)",
    )
    .body("Decision")
    .returns("ApprovalView"), reject)
}

/// The REST routes this service serves, with their access rules (gRPC: [`grpc::GRPC_ROUTES`]).
pub fn routes() -> Vec<RouteSpec> {
    api().specs().to_vec()
}

/// The OpenAPI document of this service.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(components(schemas(
        TokenRequest,
        IssuedToken,
        TokenExchange,
        GrantType,
        SubjectTokenType,
        ExchangedToken,
        SsoIssuer,
        PublicClient,
        SetTeams,
        LinkedIdentity,
        TeamName,
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
        &routes(),
        <Doc as utoipa::OpenApi>::openapi().components,
    )
}
