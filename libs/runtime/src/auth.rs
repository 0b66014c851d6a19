//! Authentication and authorization for every service: EdDSA access tokens issued by rbac,
//! verified here, and a per-route access table enforced by one middleware.
//!
//! A token proves who the caller is. What they may do comes from the service's own
//! [`RoleDirectory`], a read model fed by rbac's events — so a revoked role takes effect
//! as soon as the revocation event arrives, not when the token expires.
//!
//! JWTs are made and checked by `jsonwebtoken` with a small crypto provider of our own: our
//! tokens are EdDSA (`ed25519-dalek`); the RSA and ECDSA signatures of external OpenID
//! providers (which rbac verifies when it exchanges their tokens) are checked with `ring`.
//! The crate's built-in `rust_crypto` provider pulls in the `rsa` crate (RUSTSEC-2023-0071)
//! and the `aws_lc_rs` one a C toolchain build. HMAC is never accepted.
//!
//! - [`token`]: issuing and verifying access tokens;
//! - [`directory`]: who holds which roles now;
//! - [`middleware`]: the per-route check ([`AuthLayer`]), the caller handlers see, the one
//!   bearer-token parser. The route list itself is [`crate::routes`];
//! - [`limits`]: rate limits per address (public writes) and per user (writes).

pub mod directory;
pub mod limits;
pub mod middleware;
pub mod token;

pub use crate::routes::{Access, RouteSpec};
pub use directory::RoleDirectory;
pub use limits::RateLimits;
pub use middleware::{bearer_token, AuthLayer, Caller, RefusalSink};
pub use token::{
    install_provider as install_jwt_provider, Claims, Error, IssuedToken, Result, TokenIssuer,
    TokenVerifier, AUDIENCE,
};
