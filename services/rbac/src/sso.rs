//! Tokens of the organisation's OpenID providers: which issuer, which key, whether the
//! signature and claims hold. Each configured issuer's discovery document and keys (JWKS)
//! are fetched on first use, kept, fetched again every `jwks_refresh_secs` and at once when a
//! token names a key id not yet seen (a rotation at the provider), at most every
//! [`FORCED_FETCH_GAP`]. Keys the provider no longer publishes are dropped at the next
//! fetch, so a token signed with a retired key stops verifying.

use goose_domain::identity::{IdentityConfig, IssuerConfig};
use goose_metrics::rbac::{SSO_EXCHANGES, SSO_KEY_FETCH_FAILURES};
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The shortest time between two fetches asked for by unknown key ids (a stream of tokens
/// with made-up key ids must not turn into a stream of requests to the provider).
pub const FORCED_FETCH_GAP: Duration = Duration::from_secs(5);

/// Why an external token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    #[error("not a JWT: {0}")]
    Malformed(String),
    #[error("issuer {0:?} is not trusted here")]
    UnknownIssuer(String),
    #[error("algorithm {alg} is not accepted for {issuer} (accepted: {accepted})")]
    Algorithm {
        alg: String,
        issuer: String,
        accepted: String,
    },
    #[error("{issuer} publishes no key {kid:?}")]
    UnknownKey { issuer: String, kid: String },
    #[error("invalid token of {issuer}: {reason}")]
    Invalid { issuer: String, reason: String },
    #[error("the keys of {issuer} cannot be fetched: {reason}")]
    Unavailable { issuer: String, reason: String },
}

struct KeyState {
    keys: HashMap<String, (Jwk, DecodingKey)>,
    /// When the keys were last fetched (successfully).
    fetched: Option<Instant>,
    /// When an unknown key id last made us fetch ahead of schedule.
    last_forced: Option<Instant>,
    /// When the last fetch failed, until one succeeds (a failing provider is asked at most
    /// every [`FORCED_FETCH_GAP`], whatever the schedule says).
    failed_at: Option<Instant>,
}

struct Issuer {
    config: IssuerConfig,
    state: tokio::sync::Mutex<KeyState>,
}

/// The trusted issuers and their keys.
#[derive(Clone)]
pub struct Sso {
    config: Arc<IdentityConfig>,
    issuers: Arc<HashMap<String, Issuer>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Sso {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sso")
            .field("issuers", &self.issuers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Sso {
    pub fn new(config: IdentityConfig) -> Self {
        goose_runtime::auth::install_jwt_provider();
        let issuers = config
            .issuers
            .iter()
            .map(|c| {
                (
                    c.issuer.clone(),
                    Issuer {
                        config: c.clone(),
                        state: tokio::sync::Mutex::new(KeyState {
                            keys: HashMap::new(),
                            fetched: None,
                            last_forced: None,
                            failed_at: None,
                        }),
                    },
                )
            })
            .collect();
        Self {
            config: Arc::new(config),
            issuers: Arc::new(issuers),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        }
    }

    pub fn config(&self) -> &IdentityConfig {
        &self.config
    }

    /// Verifies `token` against its issuer's published keys; returns the issuer's
    /// configuration and the verified claims.
    pub async fn verify(&self, token: &str) -> Result<(IssuerConfig, Value), SsoError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| SsoError::Malformed(e.to_string()))?;
        // The issuer picks the keys; it is read before the signature is checked and the
        // signature then binds it (validation requires the same `iss`).
        let iss = unverified_issuer(token)?;
        let issuer = self
            .issuers
            .get(&iss)
            .ok_or_else(|| SsoError::UnknownIssuer(iss.clone()))?;
        let alg = algorithm_name(header.alg);
        if !issuer.config.algorithms.iter().any(|a| a == alg) {
            return Err(SsoError::Algorithm {
                alg: alg.to_owned(),
                issuer: iss.clone(),
                accepted: issuer.config.algorithms.join(", "),
            });
        }
        let kid = header.kid.clone().unwrap_or_default();
        let key = self.key(issuer, &kid, header.alg).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&issuer.config.issuer]);
        validation.set_audience(&issuer.config.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = issuer.config.leeway_secs;
        validation.validate_nbf = true;
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|e| SsoError::Invalid {
                issuer: iss.clone(),
                reason: e.to_string(),
            })?
            .claims;
        if let Some(iat) = claims.get("iat").and_then(Value::as_u64) {
            if iat > now_unix() + issuer.config.leeway_secs {
                return Err(SsoError::Invalid {
                    issuer: iss,
                    reason: format!("issued in the future (iat {iat})"),
                });
            }
        }
        Ok((issuer.config.clone(), claims))
    }

    /// The key `kid` of `issuer` for `alg`, fetching the keys when stale or unknown.
    async fn key(
        &self,
        issuer: &Issuer,
        kid: &str,
        alg: Algorithm,
    ) -> Result<DecodingKey, SsoError> {
        let mut state = issuer.state.lock().await;
        let refresh = Duration::from_secs(issuer.config.jwks_refresh_secs);
        let stale = state.fetched.is_none_or(|t| t.elapsed() >= refresh);
        let unknown = find(&state.keys, kid, alg).is_none();
        let gap_over = |t: Option<Instant>| t.is_none_or(|t| t.elapsed() >= FORCED_FETCH_GAP);
        // A scheduled refresh does not use up the allowance of a forced one: a key the
        // provider rotated in a moment after a refresh is still fetched on sight.
        let forced = !stale && unknown && gap_over(state.last_forced);
        if (stale || forced) && gap_over(state.failed_at) {
            if forced {
                state.last_forced = Some(Instant::now());
            }
            match self.fetch(&issuer.config).await {
                Ok(keys) => {
                    state.keys = keys;
                    state.fetched = Some(Instant::now());
                    state.failed_at = None;
                }
                Err(reason) => {
                    state.failed_at = Some(Instant::now());
                    SSO_KEY_FETCH_FAILURES
                        .counter(&[&issuer.config.issuer])
                        .increment(1);
                    tracing::warn!(issuer = %issuer.config.issuer, %reason, "cannot fetch the provider's keys; the cached ones stay in use");
                    if state.keys.is_empty() {
                        return Err(SsoError::Unavailable {
                            issuer: issuer.config.issuer.clone(),
                            reason,
                        });
                    }
                }
            }
        }
        if state.keys.is_empty() && state.fetched.is_none() {
            return Err(SsoError::Unavailable {
                issuer: issuer.config.issuer.clone(),
                reason: "its keys could not be fetched yet (retried every few seconds)".into(),
            });
        }
        find(&state.keys, kid, alg)
            .map(|(_, k)| k.clone())
            .ok_or_else(|| SsoError::UnknownKey {
                issuer: issuer.config.issuer.clone(),
                kid: kid.to_owned(),
            })
    }

    /// The discovery document, then the keys it points at.
    async fn fetch(
        &self,
        config: &IssuerConfig,
    ) -> Result<HashMap<String, (Jwk, DecodingKey)>, String> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            config.issuer.trim_end_matches('/')
        );
        let discovery: Value = self.get_json(&url).await?;
        let named = discovery.get("issuer").and_then(Value::as_str);
        if named != Some(config.issuer.as_str()) {
            return Err(format!(
                "{url} names issuer {named:?}, not {:?}",
                config.issuer
            ));
        }
        let jwks_uri = discovery
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{url} has no jwks_uri"))?;
        let set: JwkSet = serde_json::from_value(self.get_json(jwks_uri).await?)
            .map_err(|e| format!("{jwks_uri}: not a JWK set: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in set.keys {
            if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
                continue;
            }
            let kid = jwk.common.key_id.clone().unwrap_or_default();
            match DecodingKey::from_jwk(&jwk) {
                Ok(k) => {
                    keys.insert(kid, (jwk, k));
                }
                Err(e) => {
                    tracing::info!(issuer = %config.issuer, %kid, error = %e, "skipping a key of a kind not used here")
                }
            }
        }
        Ok(keys)
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("{url}: HTTP {}", resp.status()));
        }
        resp.json().await.map_err(|e| format!("{url}: {e}"))
    }

    /// The metric label of a refusal: the issuer when it is a trusted one (a bounded set),
    /// `untrusted` otherwise (made-up issuers cannot grow the metric's series).
    pub fn label(e: &SsoError) -> &str {
        match e {
            SsoError::Malformed(_) | SsoError::UnknownIssuer(_) => "untrusted",
            SsoError::Algorithm { issuer, .. }
            | SsoError::UnknownKey { issuer, .. }
            | SsoError::Invalid { issuer, .. }
            | SsoError::Unavailable { issuer, .. } => issuer,
        }
    }

    /// Counts an exchange's outcome.
    pub fn count(issuer: &str, outcome: &str) {
        SSO_EXCHANGES.counter(&[issuer, outcome]).increment(1);
    }
}

/// The key `kid` that may verify `alg`: its JWK's `alg`, when it names one, must be `alg`
/// (a key published for ES256 does not verify an RS256 token). A token without `kid` takes
/// the only key there is for its algorithm.
fn find<'a>(
    keys: &'a HashMap<String, (Jwk, DecodingKey)>,
    kid: &str,
    alg: Algorithm,
) -> Option<&'a (Jwk, DecodingKey)> {
    let fits = |(jwk, key): &&(Jwk, DecodingKey)| {
        key.family() == alg.family()
            && jwk
                .common
                .key_algorithm
                .is_none_or(|a| key_algorithm_name(a) == algorithm_name(alg))
    };
    if kid.is_empty() {
        let mut fitting = keys.values().filter(fits);
        let one = fitting.next()?;
        return fitting.next().is_none().then_some(one);
    }
    keys.get(kid).filter(fits)
}

fn unverified_issuer(token: &str) -> Result<String, SsoError> {
    use base64::Engine as _;
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| SsoError::Malformed("no payload".into()))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|e| SsoError::Malformed(format!("payload: {e}")))?;
    let claims: Value =
        serde_json::from_slice(&bytes).map_err(|e| SsoError::Malformed(format!("payload: {e}")))?;
    claims
        .get("iss")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| SsoError::Malformed("no iss claim".into()))
}

fn algorithm_name(a: Algorithm) -> &'static str {
    match a {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
    }
}

fn key_algorithm_name(a: KeyAlgorithm) -> &'static str {
    match a {
        KeyAlgorithm::HS256 => "HS256",
        KeyAlgorithm::HS384 => "HS384",
        KeyAlgorithm::HS512 => "HS512",
        KeyAlgorithm::ES256 => "ES256",
        KeyAlgorithm::ES384 => "ES384",
        KeyAlgorithm::RS256 => "RS256",
        KeyAlgorithm::RS384 => "RS384",
        KeyAlgorithm::RS512 => "RS512",
        KeyAlgorithm::PS256 => "PS256",
        KeyAlgorithm::PS384 => "PS384",
        KeyAlgorithm::PS512 => "PS512",
        KeyAlgorithm::EdDSA => "EdDSA",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwk(v: serde_json::Value) -> (Jwk, DecodingKey) {
        let jwk: Jwk = serde_json::from_value(v).unwrap();
        let key = DecodingKey::from_jwk(&jwk).unwrap();
        (jwk, key)
    }

    fn keys() -> HashMap<String, (Jwk, DecodingKey)> {
        // Shapes only: these keys are never asked to verify anything here.
        let n = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";
        [
            ("rsa", jwk(serde_json::json!({"kty": "RSA", "kid": "rsa", "alg": "RS256", "use": "sig", "n": n, "e": "AQAB"}))),
            ("rsa-any", jwk(serde_json::json!({"kty": "RSA", "kid": "rsa-any", "n": n, "e": "AQAB"}))),
            ("ec", jwk(serde_json::json!({"kty": "EC", "kid": "ec", "alg": "ES256", "crv": "P-256",
                "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}))),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    #[test]
    fn a_key_verifies_only_the_algorithm_it_was_published_for() {
        let k = keys();
        assert!(find(&k, "rsa", Algorithm::RS256).is_some());
        // Published for RS256: not for PS256, and an RSA key never for ES256.
        assert!(find(&k, "rsa", Algorithm::PS256).is_none());
        assert!(find(&k, "rsa", Algorithm::ES256).is_none());
        // No `alg` on the JWK: any algorithm of its family.
        assert!(find(&k, "rsa-any", Algorithm::PS256).is_some());
        assert!(find(&k, "ec", Algorithm::ES256).is_some());
        assert!(find(&k, "ec", Algorithm::RS256).is_none());
        assert!(find(&k, "missing", Algorithm::RS256).is_none());
    }

    #[test]
    fn a_token_without_kid_takes_the_only_fitting_key_or_none() {
        let k = keys();
        assert_eq!(
            find(&k, "", Algorithm::ES256).and_then(|(j, _)| j.common.key_id.clone()),
            Some("ec".into())
        );
        // Two RSA keys fit RS256: ambiguous, so none.
        assert!(find(&k, "", Algorithm::RS256).is_none());
    }

    #[test]
    fn the_issuer_is_read_before_verification_and_garbage_is_refused() {
        use base64::Engine as _;
        let enc = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let t = format!(
            "{}.{}.sig",
            enc(serde_json::json!({"alg": "RS256"})),
            enc(serde_json::json!({"iss": "https://i"}))
        );
        assert_eq!(unverified_issuer(&t).unwrap(), "https://i");
        for bad in [
            "",
            "a",
            "a.!!!.c",
            &format!("a.{}.c", enc(serde_json::json!({"sub": "x"}))),
        ] {
            assert!(
                matches!(unverified_issuer(bad), Err(SsoError::Malformed(_))),
                "{bad}"
            );
        }
    }
}
