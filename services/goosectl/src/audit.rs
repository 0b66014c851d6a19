//! Audit exports on disk, and their offline check.
//!
//! `goosectl evidence export` / `goosectl promotion export` ask the orchestrator's export API
//! for the documents and the signed index, fetch each evidence blob (checked against its
//! SHA3-256 address) and, for every fact a file states, its tlog-proof, written beside the file
//! as `{file}.proofs/{event id}.tlog-proof`. The export's root holds `index.json` (the signed
//! payload, byte for byte), `index.dsse.json` and `signer.vkey`.
//!
//! `goosectl audit verify DIR` needs nothing but the directory and the keys: the index's
//! signature; every listed file present with its digest; no file that the index does not
//! list; every stated fact proven in the log under a signed checkpoint, and each evidence
//! blob's digest equal to the one its proven event records.

use crate::api::{send, Svc};
use crate::cli::Api;
use crate::keyfiles;
use crate::promote::{check_fact_at, proof_text};
use anyhow::{bail, Context as _, Result};
use base64::Engine as _;
use serde_json::Value;
use sha2::Digest as _;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// The DSSE payload type of an export's index (the orchestrator's `audit::INDEX_PAYLOAD_TYPE`).
const INDEX_PAYLOAD_TYPE: &str = "application/vnd.golden-goose.audit-index+json";
const ROOT_FILES: [&str; 3] = ["index.json", "index.dsse.json", "signer.vkey"];

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// A path from the index, refused unless it stays inside the export (no `..`, not absolute).
fn inside(root: &Path, rel: &str) -> Result<PathBuf> {
    let p = Path::new(rel);
    if rel.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
        bail!("the index names a path outside the export: {rel:?}");
    }
    Ok(root.join(p))
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn proof_path(file: &Path, event_id: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".proofs");
    PathBuf::from(name).join(format!("{event_id}.tlog-proof"))
}

fn sha3_hex(bytes: &[u8]) -> String {
    hex::encode(sha3::Sha3_256::digest(bytes))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The index signed in `envelope` (not yet checked: `verify` does that with a trusted key).
fn index_of(envelope: &Value) -> Result<(Vec<u8>, Value)> {
    let payload = base64::engine::general_purpose::STANDARD
        .decode(s(envelope, "payload"))
        .context("the index envelope's payload is not base64")?;
    let index = serde_json::from_slice(&payload).context("the index is not JSON")?;
    Ok((payload, index))
}

/// Fetches the export at `path` from the orchestrator and writes it under `out`.
pub async fn export(api: &Api, path: &str, out: &Path, wait_secs: u64) -> Result<ExitCode> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait_secs);
    let body: Value = send(api.request(Svc::Orchestrator, reqwest::Method::GET, path)?)
        .await?
        .json()?;
    let envelope = &body["envelope"];
    let (payload, index) = index_of(envelope)?;
    let documents = body["documents"].as_object().cloned().unwrap_or_default();
    let files = index["files"].as_array().cloned().unwrap_or_default();
    let mut proofs: BTreeMap<String, String> = BTreeMap::new();
    let (mut blobs, mut facts) = (0usize, 0usize);
    for f in &files {
        let rel = s(f, "path");
        let file = inside(out, rel)?;
        if let Some(sha3) = f.get("sha3_256").and_then(Value::as_str) {
            let blob = send(api.request(
                Svc::Evidence,
                reqwest::Method::GET,
                &format!("/v1/blobs/{sha3}"),
            )?)
            .await?;
            if sha3_hex(&blob.0) != sha3 {
                bail!("the evidence service served blob {sha3} with other contents");
            }
            write(&file, &blob.0)?;
            blobs += 1;
        } else {
            let text = documents
                .get(rel)
                .and_then(Value::as_str)
                .with_context(|| format!("the export lists {rel} but does not carry it"))?;
            if sha256_hex(text.as_bytes()) != s(f, "sha256") {
                bail!("{rel}: the document differs from its digest in the signed index");
            }
            write(&file, text.as_bytes())?;
        }
        for fact in f["facts"].as_array().into_iter().flatten() {
            let id = s(fact, "id");
            let text = match proofs.get(id) {
                Some(t) => t.clone(),
                None => {
                    let t = proof_text(api, id, deadline).await?;
                    proofs.insert(id.to_owned(), t.clone());
                    t
                }
            };
            write(&proof_path(&file, id), text.as_bytes())?;
            facts += 1;
        }
    }
    write(&out.join("index.json"), &payload)?;
    write(
        &out.join("index.dsse.json"),
        serde_json::to_string_pretty(envelope)?.as_bytes(),
    )?;
    write(
        &out.join("signer.vkey"),
        format!("{}\n", s(&body, "signer_vkey")).as_bytes(),
    )?;
    if let Some(n) = index["scope"]["promotions_past_retention"]
        .as_u64()
        .filter(|n| *n > 0)
    {
        println!(
            "{n} promotions are older than retention.audit_log_days ({}) and not exported",
            index["scope"]["retention_audit_log_days"]
        );
    }
    println!(
        "exported {} files ({blobs} evidence blobs) and {} proofs of {facts} stated facts to {}",
        files.len(),
        proofs.len(),
        out.display()
    );
    println!(
        "check it offline: goosectl audit verify {} --log-key <the log's vkey> --signer-key <the orchestrator's vkey>",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The signer an offline check trusts: `--signer-key`, else (said so) the export's own
/// `signer.vkey`.
pub(crate) fn export_signer(dir: &Path, signer_key: Option<&str>) -> Result<goose_ledger::Vkey> {
    match signer_key {
        Some(k) => keyfiles::parse_vkey_arg(k),
        None => {
            println!("note: trusting the signer key shipped in the export; pass --signer-key to check it against one obtained from the operator");
            keyfiles::parse_vkey_arg(&format!("@{}", dir.join("signer.vkey").display()))
        }
    }
}

/// The payload of the DSSE envelope in `dir/file` if `signer` signed it with `payload_type`
/// (`what` names it in the failure), else the failure to print.
pub(crate) fn signed_payload(
    dir: &Path,
    file: &str,
    signer: &goose_ledger::Vkey,
    payload_type: &str,
    what: &str,
) -> Result<Result<Vec<u8>, String>> {
    let envelope = std::fs::read(dir.join(file))
        .with_context(|| format!("reading {}", dir.join(file).display()))?;
    let mut keys = goose_evidence::dsse::TrustedKeys::new();
    keys.add(signer.key_id(), signer.key);
    Ok(match goose_evidence::dsse::verify(&envelope, &keys) {
        Err(e) => Err(format!("signature of {file}: {e}")),
        Ok(v) if v.payload_type != payload_type => {
            Err(format!("the envelope holds {}, not {what}", v.payload_type))
        }
        Ok(v) => Ok(v.payload),
    })
}

/// Prints the outcome of an offline check: the OK line, or every failure.
pub(crate) fn report(failures: &[String], ok: impl FnOnce() -> String) -> ExitCode {
    if failures.is_empty() {
        println!("{}", ok());
        ExitCode::SUCCESS
    } else {
        for f in failures {
            println!("FAILED: {f}");
        }
        ExitCode::FAILURE
    }
}

/// Every file under `dir`, relative to it.
fn walk(dir: &Path, base: &Path, out: &mut BTreeSet<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let p = e.path();
        if e.file_type()?.is_dir() {
            walk(&p, base, out)?;
        } else {
            out.insert(p.strip_prefix(base).unwrap_or(&p).to_owned());
        }
    }
    Ok(())
}

/// `goosectl audit verify DIR`: see the module documentation. Exit 0 when all holds, 1 with
/// every failure listed otherwise.
pub fn verify(dir: &Path, log_key: &str, signer_key: Option<&str>) -> Result<ExitCode> {
    let log_key = keyfiles::parse_vkey_arg(log_key)?;
    let signer = export_signer(dir, signer_key)?;
    let payload = match signed_payload(
        dir,
        "index.dsse.json",
        &signer,
        INDEX_PAYLOAD_TYPE,
        "an audit export index",
    )? {
        Ok(p) => p,
        Err(e) => return Ok(report(&[e], String::new)),
    };
    let index: Value = serde_json::from_slice(&payload).context("index JSON")?;
    let mut failures = Vec::new();
    match std::fs::read(dir.join("index.json")) {
        Ok(b) if b == payload => {}
        Ok(_) => failures.push("index.json is not the signed index".to_owned()),
        Err(e) => failures.push(format!("index.json: {e}")),
    }
    let mut expected: BTreeSet<PathBuf> = ROOT_FILES.iter().map(PathBuf::from).collect();
    let (mut files, mut facts, mut sizes) = (0usize, 0usize, BTreeSet::new());
    for f in index["files"].as_array().into_iter().flatten() {
        let rel = s(f, "path");
        let path = match inside(dir, rel) {
            Ok(p) => p,
            Err(e) => {
                failures.push(e.to_string());
                continue;
            }
        };
        expected.insert(PathBuf::from(rel));
        files += 1;
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                failures.push(format!("{rel}: {e}"));
                continue;
            }
        };
        let blob = f.get("sha3_256").and_then(Value::as_str);
        match blob {
            Some(d) if sha3_hex(&bytes) != d => {
                failures.push(format!("{rel}: SHA3-256 differs from the signed index"))
            }
            None if sha256_hex(&bytes) != s(f, "sha256") => {
                failures.push(format!("{rel}: SHA-256 differs from the signed index"))
            }
            _ => {}
        }
        for fact in f["facts"].as_array().into_iter().flatten() {
            let id = s(fact, "id");
            let proof = proof_path(&path, id);
            expected.insert(proof.strip_prefix(dir).unwrap_or(&proof).to_owned());
            facts += 1;
            match check_fact_at(&proof, fact, &log_key) {
                Ok((size, payload)) => {
                    sizes.insert(size);
                    // An evidence blob is the file its proven event records.
                    if let Some(d) = blob {
                        let recorded: Value =
                            serde_json::from_slice(&payload).unwrap_or(Value::Null);
                        if s(&recorded, "digest") != d {
                            failures.push(format!(
                                "{rel}: the proven evidence event records digest {}, not this file's",
                                s(&recorded, "digest")
                            ));
                        }
                    }
                }
                Err(e) => failures.push(format!("{rel}: {e}")),
            }
        }
    }
    let mut present = BTreeSet::new();
    walk(dir, dir, &mut present)?;
    for extra in present.difference(&expected) {
        failures.push(format!(
            "{}: not in the signed index (added after the export)",
            extra.display()
        ));
    }
    Ok(report(&failures, || {
        format!(
            "OK: audit export {} signed by {} on {}: {files} files, {facts} stated facts proven in the log {} (checkpoint sizes {:?})",
            index["scope"],
            signer.key_id(),
            s(&index, "exported_at"),
            log_key.key_id(),
            sizes
        )
    }))
}
