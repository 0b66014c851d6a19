//! Offline checks of signed bundles — a package's manifest, a compliance report — laid out
//! the same way: `<name>.dsse.json` (the signed document), `signer.vkey`, `<name>-event.json`
//! (the fact of the event recording it) and `proofs/<event id>.tlog-proof` for that event
//! and for every fact the document lists under `cited_events`.

use crate::keyfiles;
use crate::promote::check_fact;
use anyhow::{Context as _, Result};
use base64::Engine as _;
use goose_ledger::{canonical, TlogProof};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// What a bundle holds.
pub(crate) struct Spec {
    pub envelope_file: &'static str,
    pub payload_type: &'static str,
    /// Names the document in failures.
    pub what: &'static str,
    pub event_file: &'static str,
    /// The field of the recording event that holds the document's SHA3-256.
    pub digest_field: &'static str,
}

/// The outcome of [`check`] once the signature holds.
pub(crate) struct Checked {
    /// The signed document.
    pub payload: Value,
    /// Its SHA3-256 (hex).
    pub digest: String,
    pub failures: Vec<String>,
    /// Checkpoint sizes the facts are proven in.
    pub sizes: BTreeSet<u64>,
    /// Cited facts checked.
    pub facts: usize,
    pub signer: goose_ledger::Vkey,
    pub log_key: goose_ledger::Vkey,
}

/// Checks the bundle in `dir`: the signature (else `Ok(Err(why))`), every cited fact's proof,
/// and that the event recording the document is proven and records this very document.
pub(crate) fn check(
    dir: &Path,
    log_key: &str,
    signer_key: Option<&str>,
    spec: &Spec,
) -> Result<Result<Checked, String>> {
    let log_key = keyfiles::parse_vkey_arg(log_key)?;
    let signer = crate::audit::export_signer(dir, signer_key)?;
    let payload = match crate::audit::signed_payload(
        dir,
        spec.envelope_file,
        &signer,
        spec.payload_type,
        spec.what,
    )? {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
    let document: Value =
        serde_json::from_slice(&payload).with_context(|| format!("{} JSON", spec.what))?;
    let digest = {
        use sha3::Digest as _;
        hex::encode(sha3::Sha3_256::digest(&payload))
    };
    let mut failures = Vec::new();
    let mut sizes = BTreeSet::new();
    let facts = document["cited_events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for f in &facts {
        match check_fact(dir, f, &log_key) {
            Ok(size) => {
                sizes.insert(size);
            }
            Err(e) => failures.push(e),
        }
    }
    // The document itself is on the chain: its event is proven and names this digest.
    let event_fact: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(spec.event_file))
            .with_context(|| format!("reading {}", spec.event_file))?,
    )?;
    match check_fact(dir, &event_fact, &log_key) {
        Ok(size) => {
            sizes.insert(size);
            let proof = std::fs::read_to_string(dir.join("proofs").join(format!(
                "{}.tlog-proof",
                event_fact["id"].as_str().unwrap_or_default()
            )))?;
            let extra = TlogProof::parse(&proof)?.extra.unwrap_or_default();
            let record = goose_ledger::Authorship::decode(&extra)?.record;
            let decoded = canonical::decode_record(&record, 0)?;
            let recorded: Value =
                serde_json::from_slice(&decoded.event.payload).unwrap_or(Value::Null);
            let recorded_payload = recorded["envelope"]["payload"].as_str().unwrap_or("");
            if recorded[spec.digest_field].as_str() != Some(digest.as_str())
                || recorded_payload != base64::engine::general_purpose::STANDARD.encode(&payload)
            {
                failures.push(format!(
                    "the {} recorded on the chain is not this one",
                    spec.what
                ));
            }
        }
        Err(e) => failures.push(format!("{}: {e}", spec.event_file)),
    }
    Ok(Ok(Checked {
        payload: document,
        digest,
        failures,
        sizes,
        facts: facts.len(),
        signer,
        log_key,
    }))
}
