//! Access tokens: EdDSA JWTs issued by rbac and verified by every service.

use ed25519_dalek::{SigningKey, VerifyingKey};
use goose_domain::rbac::Role;
use jsonwebtoken::crypto::{CryptoProvider, JwkUtils, JwtSigner, JwtVerifier};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
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

/// Verifies the algorithms external OpenID providers sign with: RS256/384/512 (PKCS#1 v1.5),
/// PS256/384/512, ES256/ES384, with `ring` (already in the tree through rustls). Written here
/// because jsonwebtoken's own RustCrypto provider brings the `rsa` crate, which deny.toml bans
/// (RUSTSEC-2023-0071); verifying with a public key is what ring does without that risk.
struct RingVerifier {
    alg: Algorithm,
    params: &'static dyn ring::signature::VerificationAlgorithm,
    key: RingKey,
}

enum RingKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed EC point (0x04 || x || y).
    Point(Vec<u8>),
}

impl signature::Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let ok = match &self.key {
            RingKey::Rsa { n, e } => {
                let params = match self.alg {
                    Algorithm::RS256 => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                    Algorithm::RS384 => &ring::signature::RSA_PKCS1_2048_8192_SHA384,
                    Algorithm::RS512 => &ring::signature::RSA_PKCS1_2048_8192_SHA512,
                    Algorithm::PS256 => &ring::signature::RSA_PSS_2048_8192_SHA256,
                    Algorithm::PS384 => &ring::signature::RSA_PSS_2048_8192_SHA384,
                    _ => &ring::signature::RSA_PSS_2048_8192_SHA512,
                };
                ring::signature::RsaPublicKeyComponents { n, e }.verify(params, msg, sig)
            }
            RingKey::Point(p) => {
                ring::signature::UnparsedPublicKey::new(self.params, p).verify(msg, sig)
            }
        };
        ok.map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

fn ring_verifier(alg: Algorithm, key: &DecodingKey) -> jsonwebtoken::errors::Result<RingVerifier> {
    use jsonwebtoken::DecodingKeyKind;
    let params: &'static dyn ring::signature::VerificationAlgorithm = match alg {
        Algorithm::ES256 => &ring::signature::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &ring::signature::ECDSA_P384_SHA384_FIXED,
        _ => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
    };
    let key = match (alg, key.kind()) {
        (
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512,
            DecodingKeyKind::RsaModulusExponent { n, e },
        ) => RingKey::Rsa {
            n: n.clone(),
            e: e.clone(),
        },
        (Algorithm::ES256 | Algorithm::ES384, DecodingKeyKind::SecretOrDer(point)) => {
            RingKey::Point(point.clone())
        }
        (Algorithm::ES256 | Algorithm::ES384, _) => {
            return Err(jsonwebtoken::errors::ErrorKind::InvalidEcdsaKey.into())
        }
        _ => {
            return Err(jsonwebtoken::errors::ErrorKind::InvalidRsaKey(
                "an RSA algorithm needs an RSA key (n, e)".into(),
            )
            .into())
        }
    };
    Ok(RingVerifier { alg, params, key })
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
    verifier_factory: |alg, key| match *alg {
        Algorithm::EdDSA => {
            let bytes: [u8; 32] = match key.kind() {
                jsonwebtoken::DecodingKeyKind::SecretOrDer(b) => b.get(..32),
                jsonwebtoken::DecodingKeyKind::RsaModulusExponent { .. } => None,
            }
            .and_then(|b| b.try_into().ok())
            .ok_or(jsonwebtoken::errors::ErrorKind::InvalidEddsaKey)?;
            let vk = VerifyingKey::from_bytes(&bytes)
                .map_err(|_| jsonwebtoken::errors::ErrorKind::InvalidEddsaKey)?;
            Ok(Box::new(EdVerifier(vk)))
        }
        // HMAC is never accepted: a verifier holding only public keys must not be talked
        // into treating one as a shared secret.
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Err(unsupported()),
        other => Ok(Box::new(ring_verifier(other, key)?)),
    },
    jwk_utils: JwkUtils::new_unimplemented(),
};

/// Installs the crypto provider for `jsonwebtoken` (idempotent); done by the issuer and
/// verifier constructors, needed before any other `jsonwebtoken` call.
pub fn install_provider() {
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
    /// The API key the token was exchanged for: revoking the key ends the token at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub akid: Option<String>,
    /// Not before (seconds since the epoch), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

/// The longest lifetime (`exp - iat`) a token may claim unless configured otherwise.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(3600);
/// Clock skew tolerated between the issuer and a verifier, in seconds.
pub const LEEWAY_SECS: u64 = 5;

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

    /// Issues a token for `user`; `akid` names the API key it was exchanged for.
    pub fn issue(
        &self,
        user: &str,
        roles: &[Role],
        now_unix: u64,
        akid: Option<&str>,
    ) -> Result<IssuedToken> {
        self.issue_until(user, roles, now_unix, akid, None)
    }

    /// As [`Self::issue`], expiring at `not_after` (seconds since the epoch) when that comes
    /// before the usual lifetime ends: a token exchanged for an external one does not
    /// outlive it.
    pub fn issue_until(
        &self,
        user: &str,
        roles: &[Role],
        now_unix: u64,
        akid: Option<&str>,
        not_after: Option<u64>,
    ) -> Result<IssuedToken> {
        let exp = (now_unix + self.ttl.as_secs()).min(not_after.unwrap_or(u64::MAX));
        if exp <= now_unix {
            return Err(Error::Issue("the token would be expired already".into()));
        }
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let claims = Claims {
            sub: user.to_owned(),
            iss: self.issuer.clone(),
            aud: AUDIENCE.into(),
            iat: now_unix,
            exp,
            jti: uuid::Uuid::new_v4().to_string(),
            roles: roles.to_vec(),
            akid: akid.map(str::to_owned),
            nbf: None,
        };
        let token = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| Error::Issue(e.to_string()))?;
        Ok(IssuedToken {
            access_token: token,
            token_type: "Bearer".into(),
            expires_in: exp - now_unix,
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
    max_lifetime: u64,
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
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        Self {
            keys: Arc::new(keys),
            validation,
            max_lifetime: DEFAULT_MAX_LIFETIME.as_secs(),
            verified: Arc::default(),
        }
    }

    /// Refuses tokens that claim to live longer than `max` (`exp - iat`).
    pub fn with_max_lifetime(mut self, max: Duration) -> Self {
        self.max_lifetime = max.as_secs();
        self
    }

    /// Verifies `token`, from the cache when it verified before and has not expired.
    pub fn verify(&self, token: &str) -> Result<Claims> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if let Some(c) = self.verified.read().get(token) {
            if c.exp > now {
                return Ok(c.clone());
            }
        }
        let claims = self.verify_uncached(token)?;
        let mut cache = self.verified.write();
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
        let claims = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| Error::InvalidToken(e.to_string()))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if claims.iat > now + LEEWAY_SECS {
            return Err(Error::InvalidToken(format!(
                "issued in the future (iat {} is after now {now})",
                claims.iat
            )));
        }
        if claims.exp.saturating_sub(claims.iat) > self.max_lifetime {
            return Err(Error::InvalidToken(format!(
                "claims to live {} s (exp - iat); at most {} s are accepted",
                claims.exp.saturating_sub(claims.iat),
                self.max_lifetime
            )));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn tokens_round_trip_and_forgeries_fail() {
        let issuer = TokenIssuer::new(&key(1), "rbac+01", "goose-rbac", Duration::from_secs(600));
        let verifier =
            TokenVerifier::new([("rbac+01".into(), key(1).verifying_key())], "goose-rbac");
        let now = time_now();
        let t = issuer
            .issue("ada", &[Role::Approver], now, Some("k1"))
            .unwrap();
        let c = verifier.verify(&t.access_token).unwrap();
        assert_eq!(c.sub, "ada");
        assert_eq!(c.roles, vec![Role::Approver]);
        assert_eq!(c.akid.as_deref(), Some("k1"));

        // Same kid, different key: signature fails.
        let forger = TokenIssuer::new(&key(2), "rbac+01", "goose-rbac", Duration::from_secs(600));
        let f = forger.issue("ada", &[Role::Admin], now, None).unwrap();
        assert!(matches!(
            verifier.verify(&f.access_token),
            Err(Error::InvalidToken(_))
        ));
        // Unknown kid.
        let other = TokenIssuer::new(&key(2), "x+02", "goose-rbac", Duration::from_secs(600));
        let o = other.issue("ada", &[], now, None).unwrap();
        assert!(matches!(
            verifier.verify(&o.access_token),
            Err(Error::UnknownKey(_))
        ));
        // Expired.
        let old = issuer.issue("ada", &[], now - 3600, None).unwrap();
        assert!(verifier
            .verify(&old.access_token)
            .unwrap_err()
            .to_string()
            .contains("Expired"));
        // Wrong issuer.
        let wrong = TokenIssuer::new(&key(1), "rbac+01", "someone-else", Duration::from_secs(600));
        let w = wrong.issue("ada", &[], now, None).unwrap();
        assert!(verifier.verify(&w.access_token).is_err());
        // Garbage.
        assert!(verifier.verify("not.a.token").is_err());
    }

    /// Tokens signed with the right key whose times are wrong: ten years of life, issued a
    /// day ahead, not valid before tomorrow.
    #[test]
    fn tokens_with_impossible_times_are_refused() {
        let k = key(1);
        let verifier = TokenVerifier::new([("rbac+01".into(), k.verifying_key())], "goose-rbac");
        let now = time_now();
        let sign = |iat: u64, exp: u64, nbf: Option<u64>| {
            let mut header = Header::new(Algorithm::EdDSA);
            header.kid = Some("rbac+01".into());
            let claims = Claims {
                sub: "ada".into(),
                iss: "goose-rbac".into(),
                aud: AUDIENCE.into(),
                iat,
                exp,
                jti: "j".into(),
                roles: vec![],
                akid: None,
                nbf,
            };
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(k.as_bytes())).unwrap()
        };
        let ten_years = verifier
            .verify(&sign(now, now + 10 * 365 * 86_400, None))
            .unwrap_err();
        assert!(
            ten_years.to_string().contains("at most 3600 s"),
            "{ten_years}"
        );
        let future = verifier
            .verify(&sign(now + 86_400, now + 86_400 + 600, None))
            .unwrap_err();
        assert!(
            future.to_string().contains("issued in the future"),
            "{future}"
        );
        let not_yet = verifier
            .verify(&sign(now, now + 600, Some(now + 86_400)))
            .unwrap_err();
        assert!(
            not_yet.to_string().contains("ImmatureSignature"),
            "{not_yet}"
        );
        verifier.verify(&sign(now, now + 600, Some(now))).unwrap();
        let longer = TokenVerifier::new([("rbac+01".into(), k.verifying_key())], "goose-rbac")
            .with_max_lifetime(Duration::from_secs(86_400));
        longer.verify(&sign(now, now + 7200, None)).unwrap();
    }

    proptest::proptest! {
        // PROPTEST_CASES sets a longer run (`make fuzz`).
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(500),
            ..Default::default()
        })]

        /// Hostile tokens — arbitrary text, or a real token with characters changed — get an
        /// error, never a panic, and a changed token never verifies.
        #[test]
        fn damaged_tokens_never_verify(
            text in "(?s).{0,300}",
            edits in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), "[A-Za-z0-9_.-]"), 1..4),
        ) {
            let issuer = TokenIssuer::new(&key(1), "rbac+01", "goose-rbac", Duration::from_secs(600));
            let verifier = TokenVerifier::new([("rbac+01".into(), key(1).verifying_key())], "goose-rbac");
            proptest::prop_assert!(verifier.verify(&text).is_err());
            let good = issuer.issue("ada", &[], time_now(), None).unwrap().access_token;
            let mut chars: Vec<char> = good.chars().collect();
            for (i, c) in &edits {
                let n = i.index(chars.len());
                chars[n] = c.chars().next().unwrap();
            }
            let changed: String = chars.into_iter().collect();
            if changed != good {
                proptest::prop_assert!(verifier.verify_uncached(&changed).is_err(), "{changed}");
            }
        }
    }

    fn time_now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}
