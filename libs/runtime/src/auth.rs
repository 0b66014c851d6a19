//! Authentication and authorization for every service: EdDSA access tokens issued by rbac,
//! verified here, and a per-route access table enforced by one middleware.
//!
//! A token proves who the caller is. What they may do comes from the service's own
//! [`RoleDirectory`], a read model fed by rbac's events — so a revoked role takes effect
//! as soon as the revocation event arrives, not when the token expires.
//!
//! JWTs are made and checked by `jsonwebtoken` with a small crypto provider of our own over
//! `ed25519-dalek` (EdDSA only): the crate's built-in `rust_crypto` provider pulls in the
//! `rsa` crate (RUSTSEC-2023-0071) and the `aws_lc_rs` one a C toolchain build.

use crate::problem::Problem;
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ed25519_dalek::{SigningKey, VerifyingKey};
use goose_domain::rbac::{Denied, Permission, PermissionSet, Role};
use jsonwebtoken::crypto::{CryptoProvider, JwkUtils, JwtSigner, JwtVerifier};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Errors of authentication.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error("token signed by unknown key {0:?}")]
    UnknownKey(String),
    #[error("token could not be made: {0}")]
    Issue(String),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

// --- the EdDSA-only crypto provider -----------------------------------------------------

struct EdSigner(SigningKey);

impl signature::Signer<Vec<u8>> for EdSigner {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        Ok(self.0.sign(msg).to_bytes().to_vec())
    }
}

impl JwtSigner for EdSigner {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

struct EdVerifier(VerifyingKey);

impl signature::Verifier<Vec<u8>> for EdVerifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let sig = ed25519_dalek::Signature::from_slice(sig)?;
        self.0.verify(msg, &sig)
    }
}

impl JwtVerifier for EdVerifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

fn unsupported() -> jsonwebtoken::errors::Error {
    jsonwebtoken::errors::ErrorKind::InvalidAlgorithm.into()
}

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: |alg, key| {
        if *alg != Algorithm::EdDSA {
            return Err(unsupported());
        }
        let seed: [u8; 32] = key
            .inner()
            .try_into()
            .map_err(|_| jsonwebtoken::errors::ErrorKind::InvalidEddsaKey)?;
        Ok(Box::new(EdSigner(SigningKey::from_bytes(&seed))))
    },
    verifier_factory: |alg, key| {
        if *alg != Algorithm::EdDSA {
            return Err(unsupported());
        }
        let bytes: [u8; 32] = key
            .as_bytes()
            .get(..32)
            .and_then(|b| b.try_into().ok())
            .ok_or(jsonwebtoken::errors::ErrorKind::InvalidEddsaKey)?;
        let vk = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| jsonwebtoken::errors::ErrorKind::InvalidEddsaKey)?;
        Ok(Box::new(EdVerifier(vk)))
    },
    jwk_utils: JwkUtils::new_unimplemented(),
};

fn install_provider() {
    // Err means a provider is installed already (ours, by an earlier call).
    let _ = PROVIDER.install_default();
}

// --- tokens -------------------------------------------------------------------------------

/// Claims of a Golden Goose access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
    pub jti: String,
    /// Roles when issued — informational; decisions use the current roles.
    pub roles: Vec<Role>,
}

/// The audience every Golden Goose service expects.
pub const AUDIENCE: &str = "golden-goose";

/// An issued token.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IssuedToken {
    pub access_token: String,
    pub token_type: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// Signs access tokens (rbac only).
pub struct TokenIssuer {
    key: EncodingKey,
    kid: String,
    issuer: String,
    ttl: Duration,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("kid", &self.kid)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// `kid` names the key (its C2SP key id), so verifiers can hold several during rotation.
    pub fn new(
        key: &SigningKey,
        kid: impl Into<String>,
        issuer: impl Into<String>,
        ttl: Duration,
    ) -> Self {
        install_provider();
        Self {
            key: EncodingKey::from_ed_der(key.as_bytes()),
            kid: kid.into(),
            issuer: issuer.into(),
            ttl,
        }
    }

    pub fn issue(&self, user: &str, roles: &[Role], now_unix: u64) -> Result<IssuedToken> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let claims = Claims {
            sub: user.to_owned(),
            iss: self.issuer.clone(),
            aud: AUDIENCE.into(),
            iat: now_unix,
            exp: now_unix + self.ttl.as_secs(),
            jti: uuid::Uuid::new_v4().to_string(),
            roles: roles.to_vec(),
        };
        let token = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| Error::Issue(e.to_string()))?;
        Ok(IssuedToken {
            access_token: token,
            token_type: "Bearer".into(),
            expires_in: self.ttl.as_secs(),
        })
    }
}

/// Checks access tokens: signature by a known key, issuer, audience, expiry.
///
/// A token that verified once is remembered (by its exact text, so by its signature) until
/// it expires: an Ed25519 verification costs tens of microseconds, a lookup well under one,
/// and a client sends the same token many times. What the caller may do is still decided on
/// every request from the current roles.
#[derive(Clone)]
pub struct TokenVerifier {
    keys: Arc<HashMap<String, DecodingKey>>,
    validation: Validation,
    verified: Arc<RwLock<HashMap<String, Claims>>>,
}

/// Tokens remembered at most; the cache is emptied when full (tokens live minutes).
const VERIFIED_CACHE: usize = 16_384;

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// `keys`: key id → public key. `issuer`: the `iss` tokens must carry.
    pub fn new(keys: impl IntoIterator<Item = (String, VerifyingKey)>, issuer: &str) -> Self {
        install_provider();
        let keys = keys
            .into_iter()
            .map(|(kid, vk)| (kid, DecodingKey::from_ed_der(vk.as_bytes())))
            .collect();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Self {
            keys: Arc::new(keys),
            validation,
            verified: Arc::default(),
        }
    }

    /// Verifies `token`, from the cache when it verified before and has not expired.
    pub fn verify(&self, token: &str) -> Result<Claims> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if let Some(c) = self
            .verified
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(token)
        {
            if c.exp > now {
                return Ok(c.clone());
            }
        }
        let claims = self.verify_uncached(token)?;
        let mut cache = self
            .verified
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= VERIFIED_CACHE {
            cache.clear();
        }
        cache.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }

    /// Verifies `token` without the cache (benchmarks, and the first sight of a token).
    pub fn verify_uncached(&self, token: &str) -> Result<Claims> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| Error::InvalidToken(e.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(Error::InvalidToken(format!(
                "algorithm {:?} is not accepted (EdDSA only)",
                header.alg
            )));
        }
        let kid = header.kid.unwrap_or_default();
        let key = self.keys.get(&kid).ok_or(Error::UnknownKey(kid))?;
        jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| Error::InvalidToken(e.to_string()))
    }
}

// --- who holds which roles now ------------------------------------------------------------

/// The current roles of users, as a service's read model knows them.
pub trait RoleDirectory: Send + Sync + 'static {
    /// `None` when the user is unknown (or deactivated): their tokens are refused.
    fn roles_of(&self, user: &str) -> Option<Vec<Role>>;
}

/// An in-memory [`RoleDirectory`], updated from rbac's events.
#[derive(Debug, Default, Clone)]
pub struct MemoryDirectory {
    users: Arc<RwLock<HashMap<String, BTreeSet<Role>>>>,
}

impl MemoryDirectory {
    pub fn new() -> Self {
        Self::default()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, BTreeSet<Role>>> {
        self.users
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn add_user(&self, user: &str) {
        self.write().entry(user.to_owned()).or_default();
    }

    pub fn grant(&self, user: &str, role: Role) {
        self.write()
            .entry(user.to_owned())
            .or_default()
            .insert(role);
    }

    pub fn revoke(&self, user: &str, role: Role) {
        if let Some(r) = self.write().get_mut(user) {
            r.remove(&role);
        }
    }

    /// Names of the users known, sorted.
    pub fn users(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .users
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }

    pub fn remove_user(&self, user: &str) {
        self.write().remove(user);
    }
}

impl RoleDirectory for MemoryDirectory {
    fn roles_of(&self, user: &str) -> Option<Vec<Role>> {
        self.users
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(user)
            .map(|r| r.iter().copied().collect())
    }
}

// --- the access table and its middleware ----------------------------------------------------

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token (token exchange, health).
    Public,
    /// Any authenticated user.
    Authenticated,
    /// Users holding this permission.
    Permission(Permission),
    /// Users holding any of these; the handler checks the one the request needs.
    AnyOf(&'static [Permission]),
}

/// One route of a service's API: the single source for routing checks, the authorization
/// test matrix and the OpenAPI document.
#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    pub method: &'static str,
    /// As axum writes it: `/v1/users/{name}`.
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
    /// Name of the request body's schema (in the OpenAPI components), if any.
    pub request: Option<&'static str>,
    /// Name of the success response's schema, if any.
    pub response: Option<&'static str>,
}

impl RouteSpec {
    pub const fn new(
        method: &'static str,
        path: &'static str,
        access: Access,
        summary: &'static str,
    ) -> Self {
        Self {
            method,
            path,
            access,
            summary,
            request: None,
            response: None,
        }
    }

    pub const fn body(mut self, schema: &'static str) -> Self {
        self.request = Some(schema);
        self
    }

    pub const fn returns(mut self, schema: &'static str) -> Self {
        self.response = Some(schema);
        self
    }
}

/// The authenticated caller, as handlers see it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: String,
    pub roles: Vec<Role>,
    pub permissions: PermissionSet,
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

/// What the middleware needs.
#[derive(Clone)]
pub struct AuthLayer {
    verifier: TokenVerifier,
    directory: Arc<dyn RoleDirectory>,
    routes: Arc<HashMap<(Method, &'static str), Access>>,
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
            .filter_map(|r| {
                Some((
                    (Method::from_bytes(r.method.as_bytes()).ok()?, r.path),
                    r.access,
                ))
            })
            .collect();
        Self {
            verifier,
            directory,
            routes: Arc::new(routes),
        }
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
    if access == Access::Public {
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
    let Some(roles) = auth.directory.roles_of(&claims.sub) else {
        let detail = format!("user {} is unknown or deactivated", claims.sub);
        return refuse(grpc, StatusCode::UNAUTHORIZED, detail);
    };
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
        return refuse(grpc, StatusCode::FORBIDDEN, d.to_string());
    }
    req.extensions_mut().insert(Caller {
        user: claims.sub,
        roles,
        permissions,
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

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn tokens_round_trip_and_forgeries_fail() {
        let issuer = TokenIssuer::new(&key(1), "rbac+01", "goose-rbac", Duration::from_secs(600));
        let verifier =
            TokenVerifier::new([("rbac+01".into(), key(1).verifying_key())], "goose-rbac");
        let now = time_now();
        let t = issuer.issue("ada", &[Role::Approver], now).unwrap();
        let c = verifier.verify(&t.access_token).unwrap();
        assert_eq!(c.sub, "ada");
        assert_eq!(c.roles, vec![Role::Approver]);

        // Same kid, different key: signature fails.
        let forger = TokenIssuer::new(&key(2), "rbac+01", "goose-rbac", Duration::from_secs(600));
        let f = forger.issue("ada", &[Role::Admin], now).unwrap();
        assert!(matches!(
            verifier.verify(&f.access_token),
            Err(Error::InvalidToken(_))
        ));
        // Unknown kid.
        let other = TokenIssuer::new(&key(2), "x+02", "goose-rbac", Duration::from_secs(600));
        let o = other.issue("ada", &[], now).unwrap();
        assert!(matches!(
            verifier.verify(&o.access_token),
            Err(Error::UnknownKey(_))
        ));
        // Expired.
        let old = issuer.issue("ada", &[], now - 3600).unwrap();
        assert!(verifier
            .verify(&old.access_token)
            .unwrap_err()
            .to_string()
            .contains("Expired"));
        // Wrong issuer.
        let wrong = TokenIssuer::new(&key(1), "rbac+01", "someone-else", Duration::from_secs(600));
        let w = wrong.issue("ada", &[], now).unwrap();
        assert!(verifier.verify(&w.access_token).is_err());
        // Garbage.
        assert!(verifier.verify("not.a.token").is_err());
    }

    fn time_now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}
