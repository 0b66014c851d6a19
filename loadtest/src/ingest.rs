//! `loadtest evidence` and `loadtest authz`: in-process measurements of evidence parsing
//! (throughput and peak heap over the file's own size) and of authorization decisions.

use anyhow::Result;
use goose_domain::evidence::EvidenceKind;
use goose_domain::rbac::{Permission, Role};
use goose_evidence::dsse::TrustedKeys;
use goose_platform::users::Users;
use goose_runtime::auth::{TokenIssuer, TokenVerifier};
use hdrhistogram::Histogram;
use serde_json::json;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

const LEVELS: [&str; 3] = ["error", "warning", "note"];
const LICENSES: [&str; 3] = ["MIT", "Apache-2.0", "BSD-3-Clause"];

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
            "level": LEVELS[i % 3],
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
            "licenses": [{"license": {"id": LICENSES[i % 3]}}],
            "hashes": [{"alg": "SHA-256", "content": format!("{:064x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15))}],
            "externalReferences": [{"type": "vcs", "url": format!("https://github.com/example/crate-{i}")}]
        });
        size += c.to_string().len() + 1;
        if i.is_multiple_of(20) {
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
    // The directory every service keeps (the platform's users view), behind its lock.
    let dir = parking_lot::RwLock::new(Users::default());
    for i in 0..10_000 {
        let u = format!("user{i}");
        let role = Role::ALL[i % 5];
        dir.write().apply_event(
            &u,
            &goose_domain::user::UserEvent::RoleAssigned {
                role,
                assigned_by: "bench".into(),
            },
        );
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let token = issuer
        .issue("user2", &[Role::Approver], now, None)?
        .access_token;
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
        let roles = dir.read().roles_of("user2").unwrap_or_default();
        allowed += u64::from(goose_domain::rbac::authorize("user2", &roles, p).is_ok());
        decision.record(t.elapsed().as_nanos() as u64)?;

        let t = Instant::now();
        let claims = verifier.verify(&token)?;
        let roles = dir.read().roles_of(&claims.sub).unwrap_or_default();
        allowed += u64::from(goose_domain::rbac::authorize(&claims.sub, &roles, p).is_ok());
        cached.record(t.elapsed().as_nanos() as u64)?;
    }
    for _ in 0..(samples / 100).max(100) {
        let t = Instant::now();
        let claims = verifier.verify_uncached(&token)?;
        let roles = dir.read().roles_of(&claims.sub).unwrap_or_default();
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

/// The whole ingestion path in process: the evidence service's router (auth, parse, blob into
/// PostgreSQL, event on the ledger) called without a network, `rounds` uploads per file.
/// Peak heap is measured from just before the request (whose body is the file) to its end.
pub async fn measure_ingest(
    database_url: &str,
    files: &[(EvidenceKind, Vec<u8>)],
    rounds: u32,
    peak: &peak_alloc::PeakAlloc,
) -> Result<String> {
    use goose_platform::{BusChoice, Platform, PlatformConfig, Storage};
    use std::sync::Arc;
    use tower::ServiceExt as _;
    let dir = tempfile_dir()?;
    let token_key = Arc::new(goose_ledger::NoteKey::generate("bench-tokens")?);
    let mut platform = Platform::start(PlatformConfig {
        storage: Storage::Postgres(database_url.to_owned()),
        bus: BusChoice::Memory(goose_bus::memory::MemoryBus::new()),
        service_key: Arc::new(goose_ledger::NoteKey::generate("bench-service")?),
        token_keys: vec![goose_ledger::Vkey::parse(&token_key.vkey())?],
        relay: goose_platform::Relay::All,
        log_origin: "bench.test/log".into(),
        service_name: None,
        snapshot_dir: None,
    })
    .await?;
    // A benchmark measures throughput, not the rate limits.
    platform.rate_limits = goose_runtime::auth::RateLimits {
        public_per_minute: 0,
        writes_per_second: 0,
    };
    let key_file = dir.join("admin.key");
    let issuer = TokenIssuer::new(
        token_key.signing_key(),
        token_key.key_id(),
        goose_platform::TOKEN_ISSUER,
        Duration::from_secs(3600),
    );
    let rbac = goose_rbac::build(
        &platform,
        goose_rbac::RbacConfig {
            token_key,
            token_ttl: Duration::from_secs(3600),
            approvals: Default::default(),
            identity: None,
            bootstrap: Some(goose_rbac::Bootstrap {
                admin: "bench-admin".into(),
                key_file,
            }),
        },
    )
    .await?;
    let registry =
        goose_registry::build(&platform, goose_registry::RegistryConfig::new(None)?).await?;
    let pool = sqlx::PgPool::connect(database_url).await?;
    let evidence = goose_evidence_service::build(
        &platform,
        goose_evidence_service::EvidenceConfig {
            blobs: Arc::new(goose_evidence::blob::PgBlobStore::connect(pool).await?),
            attestation_keys: TrustedKeys::new(),
            log_key: Arc::new(goose_ledger::NoteKey::generate("bench.test/log")?),
            checkpoint_interval: Duration::from_secs(3600),
            checkpoint_dir: None,
            checkpoint_archive: None,
            witnesses: Vec::new(),
            witness_threshold: 0,
        },
    )
    .await?;
    let app = rbac.merge(registry).merge(evidence);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let admin = issuer.issue("bench-admin", &[], now, None)?.access_token;
    let call = |method: &str, uri: &str, token: &str, ct: &str, body: Vec<u8>| {
        axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", ct)
            .body(axum::body::Body::from(body))
    };
    let r = app
        .clone()
        .oneshot(call(
            "POST",
            "/v1/users",
            &admin,
            "application/json",
            br#"{"name":"bench-op","roles":["operator"]}"#.to_vec(),
        )?)
        .await?;
    anyhow::ensure!(
        r.status().is_success(),
        "creating the operator: {}",
        r.status()
    );
    let op = issuer.issue("bench-op", &[], now, None)?.access_token;
    let svc = br#"[{"service":{"name":"bench-svc","spec":{"api_version":"v1","compliance_mode":"sandbox"}}}]"#.to_vec();
    let r = app
        .clone()
        .oneshot(call("POST", "/v1/services", &op, "application/json", svc)?)
        .await?;
    anyhow::ensure!(r.status().is_success(), "onboarding: {}", r.status());
    // Let the evidence service's catalog view see the service (the relay carries it over).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut out = String::new();
    for (kind, bytes) in files {
        let mut hist = Histogram::<u64>::new(3)?;
        let mut worst_peak = 0usize;
        let start = Instant::now();
        for i in 0..rounds {
            // A different file each round (trailing spaces): a new blob every time.
            let mut body = bytes.clone();
            body.extend(std::iter::repeat_n(b' ', i as usize + 1));
            let uri = format!("/v1/evidence?service=bench-svc&version=1.0.{i}&kind={kind}");
            let req = call("POST", &uri, &op, "application/octet-stream", body)?;
            let before = peak.current_usage();
            peak.reset_peak_usage();
            let t = Instant::now();
            let resp = app.clone().oneshot(req).await?;
            let status = resp.status();
            let _ = axum::body::to_bytes(resp.into_body(), 1 << 20).await?;
            hist.record(t.elapsed().as_micros() as u64)?;
            worst_peak = worst_peak.max(peak.peak_usage().saturating_sub(before));
            anyhow::ensure!(status.is_success(), "upload {i} of {kind}: {status}");
        }
        let secs = start.elapsed().as_secs_f64();
        let mb = bytes.len() as f64 / 1e6;
        writeln!(
            out,
            "| {kind} | {mb:.2} MB | {rounds} | {:.1} MB/s | {:.1} ms | {:.1} ms | {:.2} MB | {:.2}x |",
            mb * f64::from(rounds) / secs,
            hist.value_at_quantile(0.5) as f64 / 1000.0,
            hist.value_at_quantile(0.99) as f64 / 1000.0,
            worst_peak as f64 / 1e6,
            worst_peak as f64 / bytes.len() as f64
        )?;
    }
    platform.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("goose-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
