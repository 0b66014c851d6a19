//! Helpers: HTTP calls, users with tokens, service binaries.

use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone)]
pub struct Http {
    pub base: String,
    client: reqwest::Client,
}

impl Http {
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            base: base.into(),
            client: reqwest::Client::new(),
        }
    }

    /// Sends `method path` with an optional token and JSON body; returns status and JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        self.call_with(method, path, token, body, &[]).await
    }

    /// [`Http::call`] with extra request headers (a `traceparent`, say).
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut rb = self.client.request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{path}", self.base),
        );
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let resp = rb.send().await.expect("request");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned())),
        )
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        token: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let resp = self
            .client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{path}", self.base),
            )
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub async fn ok(&self, method: &str, path: &str, token: &str, body: Option<&Value>) -> Value {
        let (s, v) = self.call(method, path, Some(token), body).await;
        assert!((200..300).contains(&s), "{method} {path}: {s} {v}");
        v
    }
}

/// Creates `name` with `roles` (as `admin_token`'s holder) and returns a token for them.
pub async fn user_with_token(rbac: &Http, admin_token: &str, name: &str, roles: &[&str]) -> String {
    rbac.ok(
        "POST",
        "/v1/users",
        admin_token,
        Some(&json!({"name": name, "roles": roles})),
    )
    .await;
    let key = rbac
        .ok(
            "POST",
            &format!("/v1/users/{name}/api-keys"),
            admin_token,
            None,
        )
        .await;
    token(rbac, name, key["api_key"].as_str().unwrap()).await
}

pub async fn token(rbac: &Http, user: &str, api_key: &str) -> String {
    let (s, v) = rbac
        .call(
            "POST",
            "/v1/auth/token",
            None,
            Some(&json!({"user": user, "api_key": api_key.trim()})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v["access_token"].as_str().unwrap().to_owned()
}

/// A service binary built by `cargo build --workspace --bins` (the Makefile's `test` does it).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/e2e-<hash> -> target/debug/<name>
    let dir = exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the service binaries first (`cargo build --workspace --bins`, which `make test` runs)",
        path.display()
    );
    path
}

/// Kills the child when dropped.
pub struct Proc(pub std::process::Child, pub &'static str);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub async fn wait_healthy(http: &Http, proc: &mut Proc) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = proc.0.try_wait() {
            panic!("{} exited early: {status}", proc.1);
        }
        if let Ok(r) = reqwest::get(format!("{}/readyz", http.base)).await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} did not become ready",
            proc.1
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Where the services of one test connect.
pub struct Env {
    pub db: String,
    pub nats: String,
    pub stream: String,
    pub prefix: String,
    pub dir: std::path::PathBuf,
    /// Extra environment of every service (e.g. the S3 endpoint and credentials).
    pub vars: Vec<(String, String)>,
}

impl Env {
    /// The services of one test on `db` and `nats`, their keys in `dir`, no extra variables.
    pub fn new(
        db: &goose_testkit::TestDatabase,
        nats: &goose_testkit::TestNats,
        dir: &std::path::Path,
    ) -> Self {
        Self {
            db: db.url.clone(),
            nats: nats.url.clone(),
            stream: nats.stream.clone(),
            prefix: nats.subject_prefix.clone(),
            dir: dir.to_owned(),
            vars: Vec::new(),
        }
    }
}

/// The example catalog's service definitions (deploy/examples/services), as one multi-document
/// YAML body for `POST /v1/services`, in the order given.
pub fn example_catalog(services: &[&str]) -> String {
    let mut catalog = String::new();
    for s in services {
        catalog.push_str("---\n");
        catalog.push_str(
            &std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join(format!("../deploy/examples/services/{s}.yaml")),
            )
            .unwrap(),
        );
    }
    catalog
}

/// Starts a service binary on `port`, its key in the test's folder.
/// The log origin of the multi-process tests (their log keys carry this name).
pub const E2E_LOG_ORIGIN: &str = "e2e.test/ledger";

pub fn spawn(env: &Env, bin: &'static str, port: u16, extra: &[String]) -> Proc {
    let mut cmd = std::process::Command::new(binary(bin));
    cmd.env("GOOSE_DATABASE_URL", &env.db)
        .env("GOOSE_NATS_URL", &env.nats)
        .env("GOOSE_NATS_STREAM", &env.stream)
        .env("GOOSE_NATS_SUBJECT_PREFIX", &env.prefix)
        .env("GOOSE_LISTEN", format!("127.0.0.1:{port}"))
        .env("GOOSE_SERVICE_KEY_FILE", env.dir.join(format!("{bin}.key")))
        // Every service seals its commits for the log whose key is named so.
        .env("GOOSE_LOG_ORIGIN", E2E_LOG_ORIGIN)
        .env("RUST_LOG", "warn")
        .envs(env.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit());
    Proc(cmd.spawn().expect("spawn service"), bin)
}

/// `goosectl verify` of the whole PostgreSQL ledger at `db_url`, with the services' keyring
/// file and the log's vkey; fails the test with goosectl's output otherwise.
pub fn verify_chain(db_url: &str, keyring: &std::path::Path, log_vkey: &str) {
    let out = std::process::Command::new(binary("goosectl"))
        .args([
            "--database-url",
            db_url,
            "verify",
            "--no-state",
            "--keyring",
        ])
        .arg(keyring)
        .args(["--log-key", log_vkey])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "verify failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What differs between the in-process assemblies of the four services.
pub struct InProcess {
    pub platform: goose_platform::Platform,
    pub token_key: std::sync::Arc<goose_ledger::NoteKey>,
    pub log_key: std::sync::Arc<goose_ledger::NoteKey>,
    pub blobs: std::sync::Arc<dyn goose_evidence::blob::BlobStore>,
    pub leases: std::sync::Arc<dyn goose_orchestrator::lease::Leases>,
    /// Where rbac writes the bootstrapped admin's (`root`) API key.
    pub admin_key_file: PathBuf,
    /// The orchestrator's promotion policy (YAML); the shipped one when None.
    pub policy: Option<String>,
    /// rbac's trusted OpenID providers (none: API keys only).
    pub identity: Option<goose_domain::identity::IdentityConfig>,
}

/// rbac, registry, evidence, the orchestrator, sla and analytics on one platform, served on a fresh port as
/// `goosectl dev` serves them. Returns the client and the admin's token.
pub async fn serve_in_process(s: InProcess) -> (Http, String) {
    use std::sync::Arc;
    let p = &s.platform;
    let rbac = goose_rbac::build(
        p,
        goose_rbac::RbacConfig {
            token_key: s.token_key,
            token_ttl: Duration::from_secs(600),
            approvals: Default::default(),
            identity: s.identity.clone(),
            bootstrap: Some(goose_rbac::Bootstrap {
                admin: "root".into(),
                key_file: s.admin_key_file.clone(),
            }),
        },
    )
    .await
    .unwrap();
    // The in-process platform signs events and checkpoints with the one log key.
    let trust = goose_platform::chain_watch::ChainTrust {
        keyring: Some({
            let mut k = goose_ledger::Keyring::new();
            k.add_key(&s.log_key);
            k
        }),
        log_key: Some(goose_ledger::Vkey::parse(&s.log_key.vkey()).unwrap()),
        witness_policy: Default::default(),
    };
    let sla = goose_sla::build(
        p,
        goose_sla::SlaConfig {
            evaluate_every: Duration::from_secs(1),
            chain: trust.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let evidence = goose_evidence_service::build(
        p,
        goose_evidence_service::EvidenceConfig {
            blobs: s.blobs,
            attestation_keys: Default::default(),
            log_key: s.log_key.clone(),
            checkpoint_interval: Duration::from_secs(3600),
            checkpoint_dir: None,
            checkpoint_archive: None,
            witnesses: Vec::new(),
            witness_threshold: 0,
        },
    )
    .await
    .unwrap();
    let analytics = goose_analytics_service::build(
        p,
        goose_analytics_service::AnalyticsConfig {
            export: Some(goose_analytics_service::ExportConfig {
                location: s
                    .admin_key_file
                    .with_file_name("analytics-parquet")
                    .display()
                    .to_string(),
                every: Duration::from_millis(500),
            }),
            chain: trust.clone(),
            // Mesa's lavapipe stands in for a GPU (CI installs it), from 10,000 rows.
            accel: goose_analytics::accel::AccelConfig {
                allow_software: true,
                min_rows: 10_000,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = Http::new(format!("http://{}", listener.local_addr().unwrap()));
    let registry = goose_registry::build(
        p,
        goose_registry::RegistryConfig::new(Some(Arc::new(
            goose_orchestrator::approvals::HttpApprovals::new(&http.base),
        )))
        .unwrap(),
    )
    .await
    .unwrap();
    let (policy, policy_digest) = goose_orchestrator::load_policy(
        s.policy
            .as_deref()
            .unwrap_or(goose_domain::policy::DEFAULT_POLICY_YAML),
    )
    .unwrap();
    let orchestrator = goose_orchestrator::build(
        p,
        goose_orchestrator::OrchestratorConfig {
            policy,
            policy_digest,
            approvals: Arc::new(goose_orchestrator::approvals::HttpApprovals::new(
                &http.base,
            )),
            leases: s.leases,
            keyring: None,
            log_key: None,
            witness_policy: Default::default(),
            bundles: None,
        },
    )
    .await
    .unwrap();
    let app = goose_platform::service_router(
        p,
        rbac.merge(registry)
            .merge(evidence)
            .merge(orchestrator)
            .merge(sla)
            .merge(analytics),
        goose_rbac::openapi(),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let admin_key = std::fs::read_to_string(&s.admin_key_file).unwrap();
    let admin = token(&http, "root", admin_key.trim()).await;
    (http, admin)
}

/// A promotion policy whose gates need no evidence (only dependencies), and whose critical
/// SLA breaches demote: for flows about what happens around promotions.
pub const BREACH_POLICY: &str = "gates:
  dependency_check: {type: blocking}
  evidence_collection: {type: blocking, required: []}
  approval_check: {type: automatic}
rules:
  all_tests_passing: {enabled: false}
  sast_results_clean: {enabled: false}
  no_known_vulnerabilities: {enabled: false}
  test_coverage_threshold: {enabled: false, min_line_percent: 80}
  evidence_chain_valid: {enabled: false}
  signatures_verified: {enabled: false}
incidents:
  demote_on_critical_sla_breach: true
scheduling:
  missing_data_timeout_seconds: 2
";

/// Sends the last half hour of `service`'s requests as `token`: one every 6 s, one in five a
/// 500 (200 times the error rate a 99.9 % objective allows) — a breach as the sla service
/// sees one.
pub async fn failing_half_hour(h: &Http, token: &str, service: &str) {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let samples: Vec<serde_json::Value> = (0..300)
        .map(|i| {
            let t = time::OffsetDateTime::from_unix_timestamp(now - 1_800 + i * 6).unwrap();
            serde_json::json!({
                "at": t.format(&time::format_description::well_known::Rfc3339).unwrap(),
                "latency_ms": 40.0,
                "status": if i % 5 == 0 { 500 } else { 200 },
            })
        })
        .collect();
    h.ok(
        "POST",
        "/v1/measurements",
        token,
        Some(&serde_json::json!({"service": service, "samples": samples})),
    )
    .await;
}

/// Stops the process as Kubernetes does (SIGTERM) and waits for it to exit.
pub fn terminate(mut p: Proc) {
    let pid = p.0.id().to_string();
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(ok.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = p.0.try_wait().unwrap() {
            assert!(status.success(), "{} exited with {status}", p.1);
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{} did not stop", p.1);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A counter's value from the service's /metrics (0 when absent).
pub async fn counter(http: &Http, name: &str, labels: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", http.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("{name}{{{labels}}}");
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}
