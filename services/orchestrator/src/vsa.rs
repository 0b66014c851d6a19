//! SLSA Verification Summary Attestations (https://slsa.dev/spec/v1.0/verification_summary):
//! for a target a promotion made compliant, an in-toto Statement v1 naming the policy (by
//! digest), the gates that passed and the facts they cited, DSSE-signed by this orchestrator's
//! key — what a deployment admission controller can require. A pure function of the recorded
//! events and the key (Ed25519 signatures are deterministic: the same request, the same bytes).

use goose_ledger::{NoteKey, RecordedEvent};
use serde_json::{json, Value};

/// DSSE payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The VSA predicate type.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/verification_summary/v1";
/// The level a compliant version reaches (a custom level: not an `SLSA_` one).
pub const LEVEL: &str = "GOLDEN_GOOSE_COMPLIANT";

/// The statement for `service` in the promotion whose recorded events are `events`, or why
/// there is none.
pub fn statement(
    promotion_id: &str,
    service: &str,
    events: &[RecordedEvent],
    verifier: &str,
) -> Result<Value, String> {
    let payload =
        |ev: &RecordedEvent| serde_json::from_slice::<Value>(&ev.payload).unwrap_or(Value::Null);
    let requested = events
        .iter()
        .find(|e| e.event_type == "PromotionRequested")
        .map(payload)
        .ok_or("the promotion has no request")?;
    let promoted = events
        .iter()
        .find(|e| e.event_type == "TargetPromoted" && payload(e)["service"] == service)
        .ok_or_else(|| format!("{service} was not promoted by promotion {promotion_id}"))?;
    let version = payload(promoted)["version"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut gates = Vec::new();
    let mut inputs = std::collections::BTreeMap::new();
    for e in events.iter().filter(|e| e.event_type == "GateEvaluated") {
        let v = payload(e);
        if v["service"] != service || v["outcome"] != "pass" {
            continue;
        }
        for c in v["checks"].as_array().into_iter().flatten() {
            gates.push(json!({"gate": v["gate"], "check": c["check"], "detail": c["detail"], "event": e.event_id.to_string()}));
            for f in c["inputs"].as_array().into_iter().flatten() {
                if let (Some(id), Some(d)) = (f["id"].as_str(), f["digest"].as_str()) {
                    if f["position"].is_u64() {
                        inputs.insert(id.to_owned(), d.to_owned());
                    }
                }
            }
        }
    }
    let recorded_at = promoted
        .metadata
        .recorded_at
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| e.to_string())?;
    Ok(json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{
            "name": format!("{service}@{version}"),
            // The version's promotion event on the log (the log holds no image digest).
            "digest": {"sha3_256": hex::encode(promoted.digest)},
        }],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "verifier": {"id": verifier},
            "timeVerified": recorded_at,
            "resourceUri": format!("goose:service/{service}@{version}"),
            "policy": {
                "uri": "goose:policy/promotion_gates.yaml",
                "digest": {"sha3_256": requested["policy_digest"]},
            },
            "inputAttestations": inputs
                .iter()
                .map(|(id, d)| json!({"uri": format!("goose:event/{id}"), "digest": {"sha3_256": d}}))
                .collect::<Vec<_>>(),
            "verificationResult": "PASSED",
            "verifiedLevels": [LEVEL],
            "goldenGoose": {"promotion": promotion_id, "checksPassed": gates},
        },
    }))
}

/// The statement signed into a DSSE envelope by `key`.
pub fn envelope(statement: &Value, key: &NoteKey) -> Value {
    // Serialising a JSON value cannot fail.
    let payload = serde_json::to_vec(statement).unwrap_or_default();
    goose_evidence::dsse::sign(PAYLOAD_TYPE, &payload, key.key_id(), key.signing_key())
}
