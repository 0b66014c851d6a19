//! The per-route check every service runs: token, current roles, the route's rule.

use crate::auth::{RoleDirectory, TokenVerifier};
use crate::problem::Problem;
use crate::routes::{Access, RouteSpec};
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use goose_domain::rbac::{Denied, Permission, PermissionSet, Role, TeamName};
use std::collections::HashMap;
use std::sync::Arc;

/// The authenticated caller, as handlers see it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: String,
    pub roles: Vec<Role>,
    pub permissions: PermissionSet,
    /// The teams the caller belongs to now (from rbac's events, like the roles).
    pub teams: Vec<TeamName>,
}

impl Caller {
    /// Checks one permission (for handlers of [`Access::AnyOf`] routes).
    pub fn require(&self, permission: Permission) -> std::result::Result<(), Problem> {
        goose_domain::rbac::authorize(&self.user, &self.roles, permission).map_err(forbidden)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> std::result::Result<Self, Problem> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "this route needs an authenticated caller",
            )
        })
    }
}

/// Told about every request the access rules refused (403) — who, which route, why — so
/// bursts of them can be noticed (the sla service opens `unauthorized_access` incidents).
pub trait RefusalSink: Send + Sync {
    fn refused(&self, user: &str, method: &str, route: &str, reason: &str);
}

/// What the middleware needs.
#[derive(Clone)]
pub struct AuthLayer {
    verifier: TokenVerifier,
    directory: Arc<dyn RoleDirectory>,
    routes: Arc<HashMap<(Method, &'static str), Access>>,
    limits: Arc<super::limits::Limiters>,
    refusals: Option<Arc<dyn RefusalSink>>,
}

impl std::fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthLayer")
            .field("routes", &self.routes.len())
            .finish_non_exhaustive()
    }
}

impl AuthLayer {
    pub fn new(
        verifier: TokenVerifier,
        directory: Arc<dyn RoleDirectory>,
        routes: &[RouteSpec],
    ) -> Self {
        let routes = routes
            .iter()
            .map(|r| ((r.method.http(), r.path), r.access))
            .collect();
        Self {
            verifier,
            directory,
            routes: Arc::new(routes),
            limits: Arc::new(super::limits::Limiters::new(
                super::limits::RateLimits::default(),
            )),
            refusals: None,
        }
    }

    /// Reports every refused request to `sink`.
    pub fn with_refusals(mut self, sink: Arc<dyn RefusalSink>) -> Self {
        self.refusals = Some(sink);
        self
    }

    /// Rate limits other than the defaults.
    pub fn with_limits(mut self, limits: super::limits::RateLimits) -> Self {
        self.limits = Arc::new(super::limits::Limiters::new(limits));
        self
    }

    /// Applies the table to `router` (as a route layer, so the matched path is known).
    /// Routes missing from the table are refused — a new endpoint cannot be open by accident.
    pub fn protect<S: Clone + Send + Sync + 'static>(
        self,
        router: axum::Router<S>,
    ) -> axum::Router<S> {
        router.route_layer(axum::middleware::from_fn_with_state(self, authorize))
    }
}

pub(crate) fn forbidden(d: Denied) -> Problem {
    Problem::new(StatusCode::FORBIDDEN, "forbidden", d.to_string())
}

/// A refusal in the caller's protocol: problem+json, or a gRPC status for gRPC calls.
fn refuse(grpc: bool, status: StatusCode, detail: String) -> Response {
    if grpc {
        let code = if status == StatusCode::UNAUTHORIZED {
            tonic::Code::Unauthenticated
        } else {
            tonic::Code::PermissionDenied
        };
        return tonic::Status::new(code, detail).into_http::<axum::body::Body>();
    }
    let title = if status == StatusCode::UNAUTHORIZED {
        "unauthenticated"
    } else {
        "forbidden"
    };
    let mut r = Problem::new(status, title, detail).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"golden-goose\""),
        );
    }
    r
}

/// 429 with `Retry-After` (whole seconds, at least 1).
fn too_many(grpc: bool, limit: &'static str, wait: std::time::Duration) -> Response {
    super::limits::RATE_LIMITED.counter(&[limit]).increment(1);
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let detail = format!("too many requests from this {limit}: retry in {secs} s");
    if grpc {
        return tonic::Status::new(tonic::Code::ResourceExhausted, detail)
            .into_http::<axum::body::Body>();
    }
    Problem::new(StatusCode::TOO_MANY_REQUESTS, "too many requests", detail)
        .retry_after(u32::try_from(secs.max(1)).unwrap_or(u32::MAX))
        .into_response()
}

/// The bearer token of an `Authorization` header. The scheme is case-insensitive (RFC 9110
/// §11.1); the one parser every service uses.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(char::is_whitespace)?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// gRPC calls are HTTP/2 POSTs with an `application/grpc` content type; their access rules
/// are keyed by the full method path (`/goose.v1.Registry/ListServices`).
fn is_grpc(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

async fn authorize(State(auth): State<AuthLayer>, mut req: Request, next: Next) -> Response {
    let grpc = is_grpc(&req);
    let path = if grpc {
        req.uri().path().to_owned()
    } else {
        req.extensions()
            .get::<MatchedPath>()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default()
    };
    let Some(access) = auth
        .routes
        .iter()
        .find(|((m, p), _)| m == req.method() && *p == path)
        .map(|(_, a)| *a)
    else {
        // A path the service serves with other methods: 405 naming them (RFC 9110 §15.5.6).
        let allowed: Vec<&str> = auth
            .routes
            .iter()
            .filter(|((_, p), _)| *p == path)
            .map(|((m, _), _)| m.as_str())
            .collect();
        if !allowed.is_empty() && !grpc {
            tracing::debug!(%path, method = %req.method(), "method not allowed");
            let allow = allowed.join(", ");
            let mut r = Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed",
                format!("{} is not served on {path}; allowed: {allow}", req.method()),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&allow) {
                r.headers_mut().insert(header::ALLOW, v);
            }
            return r;
        }
        if path.is_empty() && !grpc {
            // No route matched: the router's fallback answers 404 (problem+json).
            return next.run(req).await;
        }
        tracing::error!(%path, method = %req.method(), "route has no access rule");
        let detail = format!("{} {path} has no access rule", req.method());
        return refuse(grpc, StatusCode::FORBIDDEN, detail);
    };
    let write = req.method() != Method::GET && req.method() != Method::HEAD;
    if access == Access::Public {
        if write {
            let address = req
                .extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip());
            if let Some(Err(wait)) = address.map(|a| auth.limits.public(a)) {
                return too_many(grpc, "address", wait);
            }
        }
        return next.run(req).await;
    }
    let Some(token) = bearer_token(req.headers()) else {
        let detail = "missing bearer token (Authorization: Bearer <token>)".to_owned();
        return refuse(grpc, StatusCode::UNAUTHORIZED, detail);
    };
    let claims = match auth.verifier.verify(token) {
        Ok(c) => c,
        Err(e) => return refuse(grpc, StatusCode::UNAUTHORIZED, e.to_string()),
    };
    let known = match auth.directory.roles_of(&claims.sub) {
        Some(roles) => Some(roles),
        None => {
            auth.directory.refresh().await;
            auth.directory.roles_of(&claims.sub)
        }
    };
    let Some(roles) = known else {
        let detail = format!("user {} is unknown or deactivated", claims.sub);
        return refuse(grpc, StatusCode::UNAUTHORIZED, detail);
    };
    if let Some(k) = claims.akid.as_deref() {
        if !auth.directory.key_active(&claims.sub, k) {
            let detail = format!("the API key {k} this token was issued for has been revoked");
            return refuse(grpc, StatusCode::UNAUTHORIZED, detail);
        }
    }
    let permissions: PermissionSet = roles.iter().copied().collect();
    let allowed = match access {
        Access::Public | Access::Authenticated => Ok(()),
        Access::Permission(p) => goose_domain::rbac::authorize(&claims.sub, &roles, p),
        Access::AnyOf(ps) => {
            if ps.iter().any(|p| permissions.contains(*p)) {
                Ok(())
            } else {
                // Name the first; the message lists the caller's roles.
                goose_domain::rbac::authorize(&claims.sub, &roles, ps[0])
            }
        }
    };
    if let Err(d) = allowed {
        tracing::info!(user = %claims.sub, %path, reason = %d, "request denied");
        if let Some(sink) = &auth.refusals {
            sink.refused(&claims.sub, req.method().as_str(), &path, &d.to_string());
        }
        return refuse(grpc, StatusCode::FORBIDDEN, d.to_string());
    }
    if write {
        if let Err(wait) = auth.limits.write(&claims.sub) {
            return too_many(grpc, "user", wait);
        }
    }
    let teams = auth.directory.teams_of(&claims.sub);
    req.extensions_mut().insert(Caller {
        user: claims.sub,
        roles,
        permissions,
        teams,
    });
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_the_token_required() {
        let h = |v: &str| {
            let mut m = axum::http::HeaderMap::new();
            m.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            m
        };
        for v in ["Bearer abc", "bearer abc", "BEARER  abc ", " Bearer\tabc"] {
            assert_eq!(bearer_token(&h(v)), Some("abc"), "{v:?}");
        }
        for v in ["Basic abc", "Bearer", "Bearer   ", "Bearerabc", "abc"] {
            assert_eq!(bearer_token(&h(v)), None, "{v:?}");
        }
        assert_eq!(bearer_token(&axum::http::HeaderMap::new()), None);
    }
}
