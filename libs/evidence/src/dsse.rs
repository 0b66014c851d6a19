//! DSSE envelopes (<https://github.com/secure-systems-lab/dsse>) carrying in-toto Statement
//! v1. Written here because the Rust in-toto crate targets the legacy (v0.9 link) format and
//! brings a large dependency tree; DSSE's signing input (PAE) is a few lines of the spec.

use base64::Engine as _;
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use serde::Deserialize;
use std::collections::HashMap;

/// The payload type of in-toto statements.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The statement type of in-toto v1.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";

/// Trusted attestation keys: key id (as written in envelopes) → public key.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys(HashMap<String, VerifyingKey>);

impl TrustedKeys {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, keyid: impl Into<String>, key: VerifyingKey) {
        self.0.insert(keyid.into(), key);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The DSSE pre-authentication encoding: what is actually signed.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    payload_type: String,
    payload: String,
    signatures: Vec<EnvelopeSignature>,
}

#[derive(Deserialize)]
struct EnvelopeSignature {
    #[serde(default)]
    keyid: String,
    sig: String,
}

/// A verified envelope's payload and who signed it.
#[derive(Debug, Clone)]
pub struct Verified {
    pub payload_type: String,
    pub payload: Vec<u8>,
    pub signed_by: Vec<String>,
}

fn b64(s: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(s))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s))
        .map_err(|e| format!("not base64: {e}"))
}

/// Verifies `bytes` as a DSSE envelope: at least one signature must be by a trusted key and
/// every signature by a trusted key must verify (one bad signature taints the envelope).
pub fn verify(bytes: &[u8], keys: &TrustedKeys) -> Result<Verified, String> {
    let env: Envelope =
        serde_json::from_slice(bytes).map_err(|e| format!("not a DSSE envelope: {e}"))?;
    let payload = b64(&env.payload).map_err(|e| format!("payload {e}"))?;
    let message = pae(&env.payload_type, &payload);
    let mut signed_by = Vec::new();
    for s in &env.signatures {
        let Some(key) = keys.0.get(&s.keyid) else {
            continue;
        };
        let sig = b64(&s.sig).map_err(|e| format!("signature by {}: {e}", s.keyid))?;
        let sig = Signature::from_slice(&sig)
            .map_err(|_| format!("signature by {} is not an Ed25519 signature", s.keyid))?;
        key.verify(&message, &sig)
            .map_err(|_| format!("signature by {} does not verify", s.keyid))?;
        signed_by.push(s.keyid.clone());
    }
    if signed_by.is_empty() {
        let ids: Vec<&str> = env.signatures.iter().map(|s| s.keyid.as_str()).collect();
        return Err(format!(
            "no signature by a trusted key (envelope key ids: {})",
            if ids.is_empty() {
                "none".into()
            } else {
                ids.join(", ")
            }
        ));
    }
    Ok(Verified {
        payload_type: env.payload_type,
        payload,
        signed_by,
    })
}

/// Signs `payload` into an envelope (tests, examples and `goosectl evidence attest`).
pub fn sign(
    payload_type: &str,
    payload: &[u8],
    keyid: &str,
    key: &ed25519_dalek::SigningKey,
) -> serde_json::Value {
    use ed25519_dalek::Signer as _;
    let sig = key.sign(&pae(payload_type, payload));
    let e = base64::engine::general_purpose::STANDARD;
    serde_json::json!({
        "payloadType": payload_type,
        "payload": e.encode(payload),
        "signatures": [{ "keyid": keyid, "sig": e.encode(sig.to_bytes()) }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_spec_example() {
        // From the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn sign_verify_and_tamper() {
        let k = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let mut keys = TrustedKeys::new();
        keys.add("ci", k.verifying_key());
        let env = sign(IN_TOTO_PAYLOAD_TYPE, b"{}", "ci", &k);
        let bytes = serde_json::to_vec(&env).unwrap();
        assert_eq!(verify(&bytes, &keys).unwrap().signed_by, vec!["ci"]);
        let mut bad = env.clone();
        bad["payload"] =
            serde_json::json!(base64::engine::general_purpose::STANDARD.encode(b"{\"x\":1}"));
        assert!(verify(&serde_json::to_vec(&bad).unwrap(), &keys)
            .unwrap_err()
            .contains("does not verify"));
        let other = sign(IN_TOTO_PAYLOAD_TYPE, b"{}", "stranger", &k);
        assert!(verify(&serde_json::to_vec(&other).unwrap(), &keys)
            .unwrap_err()
            .contains("no signature by a trusted key"));
    }
}
