//! `loadtest evidence` and `loadtest authz`: in-process measurements of evidence parsing
//! (throughput and peak heap over the file's own size) and of authorization decisions.

use anyhow::Result;
use goose_domain::evidence::EvidenceKind;
use goose_domain::rbac::{Permission, Role};
use goose_evidence::dsse::TrustedKeys;
use goose_runtime::auth::{MemoryDirectory, RoleDirectory as _, TokenIssuer, TokenVerifier};
use hdrhistogram::Histogram;
use serde_json::json;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// A SARIF 2.1.0 log of about `target` bytes, shaped like a real scanner's: 200 rules with
/// descriptions and CVSS scores, results with locations, messages and fingerprints.
pub fn synthetic_sarif(target: usize) -> Vec<u8> {
    let rules: Vec<_> = (0..200)
        .map(|i| {
            json!({
                "id": format!("RULE{i:04}"),
                "name": format!("rule-number-{i}"),
                "shortDescription": {"text": format!("Potential issue class {i}")},
                "fullDescription": {"text": "A longer description of the weakness, what it allows an attacker to do, and how to fix it in the code."},
                "helpUri": format!("https://scanner.example/rules/{i}"),
                "properties": {"security-severity": format!("{:.1}", (i % 10) as f64 + 0.5), "tags": ["security", "external/cwe/cwe-79"]}
            })
        })
        .collect();
    let mut results = Vec::new();
    let mut size = 0;
    let mut i = 0usize;
    while size < target {
        let r = json!({
            "ruleId": format!("RULE{:04}", i % 200),
            "level": ["error", "warning", "note"][i % 3],
            "message": {"text": format!("Untrusted data flows from parameter `input{i}` into a sink without sanitisation")},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": format!("src/module_{}/file_{}.rs", i % 50, i % 700), "uriBaseId": "%SRCROOT%"},
                "region": {"startLine": i % 2000 + 1, "startColumn": 5, "endLine": i % 2000 + 3, "endColumn": 40}
            }}],
            "partialFingerprints": {"primaryLocationLineHash": format!("{:016x}:1", i.wrapping_mul(0x9e37_79b9_7f4a_7c15))}
        });
        size += r.to_string().len() + 1;
        results.push(r);
        i += 1;
    }
    serde_json::to_vec(&json!({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{"tool": {"driver": {"name": "synthetic-scanner", "version": "1.0.0", "rules": rules}}, "results": results}]
    }))
    .unwrap_or_default()
}

/// A CycloneDX 1.5 BOM of about `target` bytes: components with purls, licenses, hashes,
/// and vulnerabilities naming one in twenty.
pub fn synthetic_cyclonedx(target: usize) -> Vec<u8> {
    let mut components = Vec::new();
    let mut vulns = Vec::new();
    let mut size = 0;
    let mut i = 0usize;
    while size < target {
        let c = json!({
            "type": "library",
            "bom-ref": format!("pkg:cargo/crate-{i}@1.{}.{}", i % 40, i % 7),
            "name": format!("crate-{i}"),
            "version": format!("1.{}.{}", i % 40, i % 7),
            "description": "A library that does one useful thing and is depended on by many others.",
            "purl": format!("pkg:cargo/crate-{i}@1.{}.{}", i % 40, i % 7),
            "licenses": [{"license": {"id": ["MIT", "Apache-2.0", "BSD-3-Clause"][i % 3]}}],
            "hashes": [{"alg": "SHA-256", "content": format!("{:064x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15))}],
            "externalReferences": [{"type": "vcs", "url": format!("https://github.com/example/crate-{i}")}]
        });
        size += c.to_string().len() + 1;
        if i % 20 == 0 {
            vulns.push(json!({"id": format!("CVE-2026-{i:05}"), "ratings": [{"severity": "high"}], "affects": [{"ref": c["bom-ref"]}]}));
        }
        components.push(c);
        i += 1;
    }
    serde_json::to_vec(&json!({
        "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
        "metadata": {"component": {"type": "application", "name": "service-a", "version": "1.0.0"}},
        "components": components, "vulnerabilities": vulns
    }))
    .unwrap_or_default()
}

/// Parses `bytes` `rounds` times; prints MB/s and the peak heap the parse added.
pub fn measure_parse(
    kind: EvidenceKind,
    bytes: &[u8],
    rounds: u32,
    peak: &peak_alloc::PeakAlloc,
) -> Result<String> {
    let keys = TrustedKeys::new();
    // Peak memory: one parse, measured from the heap in use just before it.
    let before = peak.current_usage();
    peak.reset_peak_usage();
    let summary = goose_evidence::formats::summarize(kind, bytes, &keys)?;
    let added = peak.peak_usage().saturating_sub(before);
    let start = Instant::now();
    for _ in 0..rounds {
        goose_evidence::formats::summarize(kind, bytes, &keys)?;
    }
    let secs = start.elapsed().as_secs_f64();
    let mb = bytes.len() as f64 / 1e6;
    let mut out = String::new();
    writeln!(
        out,
        "| {kind} | {mb:.2} MB | {:.1} MB/s | {:.2} MB | {:.2}x |",
        mb * f64::from(rounds) / secs,
        added as f64 / 1e6,
        added as f64 / bytes.len() as f64
    )?;
    tracing_free_summary(&summary, &mut out)?;
    Ok(out)
}

fn tracing_free_summary(
    s: &goose_domain::evidence::EvidenceSummary,
    out: &mut String,
) -> Result<()> {
    writeln!(out, "  summary: {}", serde_json::to_string(s)?)?;
    Ok(())
}

/// Authorization latency: the decision alone (current roles + permission bit), and the whole
/// middleware path for a repeat caller (cached token + decision) and a first-time token.
pub fn measure_authz(samples: u64) -> Result<String> {
    let key = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    let issuer = TokenIssuer::new(&key, "bench+00", "goose-rbac", Duration::from_secs(3600));
    let verifier = TokenVerifier::new([("bench+00".to_owned(), key.verifying_key())], "goose-rbac");
    let dir = MemoryDirectory::new();
    for i in 0..10_000 {
        let u = format!("user{i}");
        dir.grant(&u, Role::ALL[i % 5]);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let token = issuer.issue("user2", &[Role::Approver], now)?.access_token;
    let mut decision = Histogram::<u64>::new(3)?;
    let mut cached = Histogram::<u64>::new(3)?;
    let mut fresh = Histogram::<u64>::new(3)?;
    let perms = [
        Permission::PromotionApprove,
        Permission::EvidenceSubmit,
        Permission::ServiceRead,
    ];
    let mut allowed = 0u64;
    for i in 0..samples {
        let p = perms[(i % 3) as usize];
        let t = Instant::now();
        let roles = dir.roles_of("user2").unwrap_or_default();
        allowed += u64::from(goose_domain::rbac::authorize("user2", &roles, p).is_ok());
        decision.record(t.elapsed().as_nanos() as u64)?;

        let t = Instant::now();
        let claims = verifier.verify(&token)?;
        let roles = dir.roles_of(&claims.sub).unwrap_or_default();
        allowed += u64::from(goose_domain::rbac::authorize(&claims.sub, &roles, p).is_ok());
        cached.record(t.elapsed().as_nanos() as u64)?;
    }
    for _ in 0..(samples / 100).max(100) {
        let t = Instant::now();
        let claims = verifier.verify_uncached(&token)?;
        let roles = dir.roles_of(&claims.sub).unwrap_or_default();
        allowed += u64::from(
            goose_domain::rbac::authorize(&claims.sub, &roles, Permission::ServiceRead).is_ok(),
        );
        fresh.record(t.elapsed().as_nanos() as u64)?;
    }
    let mut out = String::new();
    writeln!(out, "| path | samples | p50 | p99 | p99.9 | max |")?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|")?;
    for (name, h) in [
        ("decision (roles lookup + permission)", &decision),
        ("token (cached) + decision", &cached),
        ("token (first sight, Ed25519 verify) + decision", &fresh),
    ] {
        writeln!(
            out,
            "| {name} | {} | {:.2} µs | {:.2} µs | {:.2} µs | {:.2} µs |",
            h.len(),
            h.value_at_quantile(0.5) as f64 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0,
            h.value_at_quantile(0.999) as f64 / 1000.0,
            h.max() as f64 / 1000.0
        )?;
    }
    writeln!(out, "({allowed} allowed decisions)")?;
    Ok(out)
}
