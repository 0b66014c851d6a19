//! Signing in through the organisation's OpenID provider: the token exchange (RFC 8693) and
//! the list of providers clients sign in with. The provider's token is verified
//! ([`crate::sso`]), its claims become a user, roles and teams (`goose_domain::identity`),
//! what changed is recorded on the user's stream, and a Golden Goose token is issued — so
//! every service keeps verifying one kind of token, and a group removed at the provider is
//! a `RoleRevoked` event the moment the user next exchanges a token.

use crate::api::{ExchangedToken, SsoIssuer, TokenExchange};
use crate::commands::run_user_as;
use crate::sso::{Sso, SsoError};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use goose_domain::identity::{self, IdentityError};
use goose_domain::rbac::Role;
use goose_ledger::aggregate::ExecuteError;
use goose_platform::{execute_problem, JsonBody};
use goose_runtime::problem::Problem;
use serde_json::Value;

fn unauthenticated(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
}

fn not_configured() -> Problem {
    Problem::not_found("no OpenID provider is configured here (rbac --identity-config)")
}

pub(crate) async fn issuers(State(s): State<AppState>) -> Json<Vec<SsoIssuer>> {
    let list = s
        .sso
        .as_ref()
        .map(|sso| {
            sso.config()
                .issuers
                .iter()
                .map(|i| SsoIssuer {
                    issuer: i.issuer.clone(),
                    client: i.client.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    Json(list)
}

pub(crate) async fn exchange(
    State(s): State<AppState>,
    JsonBody(req): JsonBody<TokenExchange>,
) -> Result<Json<ExchangedToken>, Problem> {
    let sso = s.sso.as_ref().ok_or_else(not_configured)?;
    if req.subject_token.is_empty() || req.subject_token.len() > 16_384 {
        return Err(Problem::bad_request(
            "subject_token must be 1 to 16384 characters",
        ));
    }
    let (issuer, claims) = match sso.verify(&req.subject_token).await {
        Ok(v) => v,
        Err(e) => {
            tracing::info!(error = %e, "external token refused");
            let unavailable = matches!(e, SsoError::Unavailable { .. });
            Sso::count(
                Sso::label(&e),
                if unavailable {
                    "unavailable"
                } else {
                    "refused"
                },
            );
            return Err(if unavailable {
                Problem::unavailable(e.to_string()).retry_after(5)
            } else {
                unauthenticated(e.to_string())
            });
        }
    };
    let refused = |p: Problem| {
        Sso::count(&issuer.issuer, "refused");
        p
    };
    let id = sso
        .config()
        .resolve(&issuer, &claims)
        .map_err(|e| refused(unauthenticated(e.to_string())))?;
    let user = run_user_as::<IdentityError>(&s, &identity::actor_of(&issuer.issuer), &id.user, |u| {
        identity::sync(u, &id)
    })
    .await
    .map_err(|e| {
        if let ExecuteError::Rejected(r) = &e {
            tracing::warn!(user = %id.user, issuer = %issuer.issuer, reason = %r, "sign-in refused");
        }
        refused(execute_problem(e))
    })?;
    let roles: Vec<Role> = user.roles.iter().copied().collect();
    if roles.is_empty() {
        // Recorded first: a role the provider took away is gone everywhere already.
        return Err(refused(Problem::forbidden(
            IdentityError::NoRole {
                user: id.user.to_string(),
                issuer: issuer.issuer.clone(),
            }
            .to_string(),
        )));
    }
    let not_after = claims.get("exp").and_then(Value::as_u64);
    let token = s
        .issuer
        .issue_until(
            id.user.as_str(),
            &roles,
            crate::handlers::now_unix(),
            None,
            not_after,
        )
        .map_err(|e| refused(unauthenticated(e.to_string())))?;
    Sso::count(&issuer.issuer, "issued");
    tracing::info!(user = %id.user, issuer = %issuer.issuer, service_account = id.service_account, "signed in through the OpenID provider");
    Ok(Json(ExchangedToken {
        access_token: token.access_token,
        token_type: token.token_type,
        expires_in: token.expires_in,
        issued_token_type: "urn:ietf:params:oauth:token-type:access_token".into(),
        user: id.user.to_string(),
        roles,
        teams: user.teams.iter().cloned().collect(),
    }))
}
