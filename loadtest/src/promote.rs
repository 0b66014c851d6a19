//! `loadtest promotions` and `loadtest dag`: the whole system in this process (rbac,
//! registry, evidence and orchestrator on one platform over real PostgreSQL and NATS
//! JetStream, served over HTTP on loopback), with the shipped policy's gates but an automatic
//! approval_check. Latency is measured from sending `POST /v1/promotions` to a JetStream
//! subscriber receiving the promotion's `TargetPromoted` event.

use anyhow::{bail, Context as _, Result};
use futures::StreamExt as _;
use goose_bus::BusConfig;
use goose_ledger::{Keyring, NoteKey, Vkey};
use goose_platform::{BusChoice, Platform, PlatformConfig, Storage};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use rand::Rng as _;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

const JUNIT: &[u8] = include_bytes!("../../tests/fixtures/evidence/passing/junit.xml");
const LCOV: &[u8] = include_bytes!("../../tests/fixtures/evidence/passing/coverage.lcov");
const SARIF: &[u8] = include_bytes!("../../tests/fixtures/evidence/clippy.sarif");
const SBOM: &[u8] = include_bytes!("../../tests/fixtures/evidence/sbom.cdx.json");

/// The system under test.
pub struct System {
    pub platform: Platform,
    base: String,
    client: reqwest::Client,
    token: String,
    /// A token for `bench-analyst` (empty without analytics).
    analyst_token: String,
    /// Promotion id → (event type → when the subscriber got it).
    seen: Arc<Mutex<HashMap<String, HashMap<String, Instant>>>>,
    arrived: Arc<Notify>,
}

impl System {
    /// Starts everything on a fresh database created next to `database_url`'s.
    ///
    /// With `analytics`, the analytics service runs too (in-memory tables of every event) and
    /// [`System::query`] asks it, as user `bench-analyst`.
    pub async fn start(
        database_url: &str,
        nats_url: &str,
        max_parallel: u32,
        analytics: bool,
    ) -> Result<Self> {
        let tag = format!(
            "{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis()
        );
        let db_name = format!("goose_bench_promotions_{tag}");
        {
            use sqlx::Connection as _;
            let mut c = sqlx::PgConnection::connect(database_url).await?;
            sqlx::query(&format!("CREATE DATABASE {db_name}"))
                .execute(&mut c)
                .await?;
        }
        let base_url = database_url.trim_end_matches('/');
        let url = match base_url.rfind('/') {
            Some(i) if i > "postgres://".len() => format!("{}/{db_name}", &base_url[..i]),
            _ => format!("{base_url}/{db_name}"),
        };
        println!("database {db_name}");
        let service_key = Arc::new(NoteKey::generate("bench-services")?);
        let log_key = Arc::new(NoteKey::generate("bench.test/ledger")?);
        let token_key = Arc::new(NoteKey::generate("bench-tokens")?);
        let mut platform = Platform::start(PlatformConfig {
            storage: Storage::Postgres(url.clone()),
            bus: BusChoice::Nats {
                credentials: None,
                url: nats_url.to_owned(),
                config: BusConfig {
                    stream: format!("BENCH_{tag}"),
                    subject_prefix: format!("bench{tag}.evt"),
                    ..BusConfig::default()
                },
            },
            service_key: service_key.clone(),
            token_keys: vec![Vkey::parse(&token_key.vkey())?],
            relay: goose_platform::Relay::All,
            log_origin: "bench.test/ledger".into(),
            service_name: None,
            snapshot_dir: None,
        })
        .await?;
        // A benchmark measures throughput, not the rate limits.
        platform.rate_limits = goose_runtime::auth::RateLimits {
            public_per_minute: 0,
            writes_per_second: 0,
        };
        let dir = tempfile::tempdir()?;
        let admin_key = dir.path().join("admin.key");
        let rbac = goose_rbac::build(
            &platform,
            goose_rbac::RbacConfig {
                token_key,
                token_ttl: Duration::from_secs(3600),
                approvals: goose_domain::approval::ApprovalPolicy::default(),
                identity: None,
                bootstrap: Some(goose_rbac::Bootstrap {
                    admin: "admin".into(),
                    key_file: admin_key.clone(),
                }),
            },
        )
        .await?;
        let registry =
            goose_registry::build(&platform, goose_registry::RegistryConfig::new(None)?).await?;
        let pool = sqlx::PgPool::connect(&url).await?;
        let evidence = goose_evidence_service::build(
            &platform,
            goose_evidence_service::EvidenceConfig {
                blobs: Arc::new(goose_evidence::blob::PgBlobStore::connect(pool).await?),
                attestation_keys: goose_evidence::dsse::TrustedKeys::new(),
                log_key: log_key.clone(),
                checkpoint_interval: Duration::from_secs(1),
                checkpoint_dir: None,
                checkpoint_archive: None,
                witnesses: Vec::new(),
                witness_threshold: 0,
            },
        )
        .await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        // The shipped policy with its one manual gate made automatic.
        let text = goose_domain::policy::DEFAULT_POLICY_YAML
            .replace("    type: manual", "    type: automatic")
            .replace("max_parallel: 16", &format!("max_parallel: {max_parallel}"));
        let (policy, policy_digest) = goose_orchestrator::load_policy(&text)?;
        let mut keyring = Keyring::new();
        keyring.add_key(&service_key);
        let orchestrator = goose_orchestrator::build(
            &platform,
            goose_orchestrator::OrchestratorConfig {
                policy,
                policy_digest,
                approvals: Arc::new(goose_orchestrator::approvals::HttpApprovals::new(&base)),
                leases: Arc::new(goose_orchestrator::lease::PgLeases::new(&url)),
                keyring: Some(keyring),
                log_key: Some(Vkey::parse(&log_key.vkey())?),
                witness_policy: Default::default(),
                bundles: None,
            },
        )
        .await?;
        let mut api = rbac.merge(registry).merge(evidence).merge(orchestrator);
        if analytics {
            api = api.merge(goose_analytics_service::build(&platform, Default::default()).await?);
        }
        let app = goose_platform::service_router(&platform, api, goose_orchestrator::openapi());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let client = reqwest::Client::new();
        let admin = token(
            &client,
            &base,
            "admin",
            &std::fs::read_to_string(&admin_key)?,
        )
        .await?;
        let mut me = Self {
            platform,
            base,
            client,
            token: admin,
            analyst_token: String::new(),
            seen: Arc::default(),
            arrived: Arc::new(Notify::new()),
        };
        if analytics {
            me.analyst_token = me.user("bench-analyst", "analyst").await?;
        }
        me.token = me.user("bench-operator", "operator").await?;
        me.subscribe().await?;
        Ok(me)
    }

    /// Creates `name` with `role` and returns a token for it.
    async fn user(&self, name: &str, role: &str) -> Result<String> {
        self.call(
            "POST",
            "/v1/users",
            Some(json!({"name": name, "roles": [role]})),
        )
        .await?;
        let key = self
            .call("POST", &format!("/v1/users/{name}/api-keys"), None)
            .await?;
        token(
            &self.client,
            &self.base,
            name,
            key["api_key"].as_str().unwrap_or_default(),
        )
        .await
    }

    /// Runs `sql` on the analytics service (started with `analytics`): its JSON answer.
    pub async fn query(&self, sql: &str) -> Result<Value> {
        let resp = self
            .client
            .post(format!("{}/v1/analytics/query", self.base))
            .bearer_auth(&self.analyst_token)
            .json(&json!({ "sql": sql }))
            .send()
            .await?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("query {sql}: {status}: {v}");
        }
        Ok(v)
    }

    /// Records when the subscriber receives each promotion event.
    async fn subscribe(&self) -> Result<()> {
        let mut sub = self.platform.bus.subscribe_live(Some("promotion")).await?;
        let seen = self.seen.clone();
        let arrived = self.arrived.clone();
        tokio::spawn(async move {
            loop {
                let Ok(batch) = sub.fetch(512, Duration::from_millis(200)).await else {
                    continue;
                };
                let now = Instant::now();
                {
                    let mut s = seen.lock();
                    for d in &batch {
                        s.entry(d.event.stream.aggregate_id().to_owned())
                            .or_default()
                            .entry(d.event.event_type.clone())
                            .or_insert(now);
                    }
                }
                if !batch.is_empty() {
                    arrived.notify_waiters();
                }
                for d in batch {
                    let _ = d.ack().await;
                }
            }
        });
        Ok(())
    }

    /// Waits until the subscriber has seen `event_type` of promotion `id`.
    async fn seen(&self, id: &str, event_type: &str, timeout: Duration) -> Result<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            if let Some(t) = self.seen.lock().get(id).and_then(|m| m.get(event_type)) {
                return Ok(*t);
            }
            if Instant::now() > deadline {
                bail!("promotion {id}: no {event_type} within {timeout:?}");
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let mut rb = self
            .client
            .request(method.parse()?, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{method} {path}: {status}: {v}");
        }
        Ok(v)
    }

    /// Onboards services (`name` → dependencies) in one catalog batch.
    pub async fn onboard(&self, services: &[(String, Vec<String>)]) -> Result<()> {
        let docs: Vec<Value> = services
            .iter()
            .map(|(n, deps)| json!({"service": {"name": n, "spec": {"api_version": "v1", "compliance_mode": "sandbox", "dependencies": {"runtime": deps}}}}))
            .collect();
        self.call("POST", "/v1/services", Some(Value::Array(docs)))
            .await?;
        Ok(())
    }

    /// Submits passing evidence (JUnit, LCOV, SARIF, CycloneDX) for each `service@1.0.0`.
    pub async fn evidence(&self, services: &[String]) -> Result<()> {
        let jobs = services.iter().flat_map(|s| {
            [
                ("junit", JUNIT),
                ("lcov", LCOV),
                ("sarif", SARIF),
                ("cyclonedx", SBOM),
            ]
            .into_iter()
            .map(move |(kind, bytes)| (s.clone(), kind, bytes))
        });
        let results: Vec<Result<()>> = futures::stream::iter(jobs)
            .map(|(s, kind, bytes)| async move {
                // The evidence service learns the catalog from registry's events: a service
                // onboarded a moment ago may not be known to it yet.
                for _ in 0..100 {
                    let resp = self
                        .client
                        .post(format!(
                            "{}/v1/evidence?service={s}&version=1.0.0&kind={kind}",
                            self.base
                        ))
                        .bearer_auth(&self.token)
                        .body(bytes.to_vec())
                        .send()
                        .await?;
                    if resp.status().is_success() {
                        return Ok(());
                    }
                    let text = resp.text().await?;
                    if !text.contains("not in the catalog") {
                        bail!("evidence {s} {kind}: {text}");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                bail!("evidence {s} {kind}: the service never became known")
            })
            .buffer_unordered(16)
            .collect()
            .await;
        results.into_iter().collect::<Result<Vec<()>>>()?;
        Ok(())
    }

    /// Waits for a signed checkpoint covering everything written so far (the
    /// evidence_chain_valid rule needs one), and for the chain watch to verify it.
    pub async fn settle(&self) -> Result<()> {
        let size = self.platform.ledger.size().await?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(cp) = self.platform.ledger.latest_checkpoint().await? {
                if cp.size >= size {
                    break;
                }
            }
            if Instant::now() > deadline {
                bail!("no checkpoint covering {size} events");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The chain watch polls every 500 ms; give it a moment to verify the new events.
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok(())
    }

    /// Requests the promotion of `service@1.0.0` and returns its id and latency to the
    /// subscriber's `TargetPromoted`.
    pub async fn promote_one(&self, service: &str) -> Result<Duration> {
        let start = Instant::now();
        let v = self
            .call(
                "POST",
                "/v1/promotions",
                Some(json!({"service": service, "version": "1.0.0"})),
            )
            .await?;
        let id = v["id"].as_str().context("no promotion id")?.to_owned();
        let at = self
            .seen(&id, "TargetPromoted", Duration::from_secs(60))
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "{e} (failed? {:?})",
                    self.seen
                        .lock()
                        .get(&id)
                        .map(|x| x.keys().cloned().collect::<Vec<_>>())
                )
            })?;
        Ok(at - start)
    }

    pub async fn create_package(&self, services: &[String]) -> Result<String> {
        let v = self
            .call(
                "POST",
                "/v1/packages",
                Some(json!({"services": services, "version": "1.0.0"})),
            )
            .await?;
        Ok(v["id"].as_str().context("no package id")?.to_owned())
    }

    /// Promotes a package; returns the time to the subscriber's `PromotionCompleted` and the
    /// completion event as recorded.
    pub async fn promote_package(&self, id: &str) -> Result<(Duration, Value)> {
        let start = Instant::now();
        let v = self
            .call(
                "POST",
                &format!("/v1/packages/{id}/promote"),
                Some(json!({})),
            )
            .await?;
        let pid = v["id"].as_str().context("no promotion id")?.to_owned();
        let answered = start.elapsed();
        let at = self
            .seen(&pid, "PromotionCompleted", Duration::from_secs(1800))
            .await?;
        let requested_seen = self
            .seen(&pid, "PromotionRequested", Duration::from_secs(1))
            .await?;
        println!(
            "breakdown: request answered (locks, request recorded) after {:.0} ms; PromotionRequested reached the subscriber after {:.0} ms; PromotionCompleted after {:.0} ms",
            answered.as_secs_f64() * 1000.0,
            (requested_seen - start).as_secs_f64() * 1000.0,
            (at - start).as_secs_f64() * 1000.0
        );
        let p = self
            .call("GET", &format!("/v1/promotions/{pid}"), None)
            .await?;
        Ok((at - start, json!({"outcome": p["outcome"]})))
    }
}

async fn token(client: &reqwest::Client, base: &str, user: &str, key: &str) -> Result<String> {
    let v: Value = client
        .post(format!("{base}/v1/auth/token"))
        .json(&json!({"user": user, "api_key": key.trim()}))
        .send()
        .await?
        .json()
        .await?;
    Ok(v["access_token"]
        .as_str()
        .context("no access token")?
        .to_owned())
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// Promotion latency at each concurrency: `per_level` promotions of distinct services.
pub async fn run_latency(sys: &System, levels: &[usize], per_level: usize) -> Result<String> {
    let total: usize = levels.len() * per_level;
    let names: Vec<String> = (0..total).map(|i| format!("lat-{i:05}")).collect();
    let t = Instant::now();
    sys.onboard(
        &names
            .iter()
            .map(|n| (n.clone(), vec![]))
            .collect::<Vec<_>>(),
    )
    .await?;
    sys.evidence(&names).await?;
    sys.settle().await?;
    println!(
        "setup: {total} services with 4 evidence files each in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut out = String::from("| concurrent promotions | promotions | p50 | p90 | p99 | max | promotions/s |\n|---|---|---|---|---|---|---|\n");
    let mut chunks = names.chunks(per_level);
    for &c in levels {
        let Some(chunk) = chunks.next() else { break };
        let hist = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
        let start = Instant::now();
        let results: Vec<Result<()>> = futures::stream::iter(chunk.iter().cloned())
            .map(|s| {
                let hist = hist.clone();
                async move {
                    let d = sys.promote_one(&s).await?;
                    hist.lock().record(d.as_micros() as u64)?;
                    Ok(())
                }
            })
            .buffer_unordered(c)
            .collect()
            .await;
        results.into_iter().collect::<Result<Vec<()>>>()?;
        let secs = start.elapsed().as_secs_f64();
        let h = hist.lock();
        let line = format!(
            "| {c} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.0} |\n",
            h.len(),
            ms(&h, 0.5),
            ms(&h, 0.9),
            ms(&h, 0.99),
            h.max() as f64 / 1000.0,
            h.len() as f64 / secs
        );
        print!("{line}");
        out.push_str(&line);
    }
    Ok(out)
}

/// A random DAG of `n` services in `depth` levels: each service below the first depends on
/// one to three services of the level above (so the longest chain is exactly `depth`).
pub fn random_dag(n: usize, depth: usize) -> Vec<(String, Vec<String>)> {
    let mut rng = rand::thread_rng();
    let per = n.div_ceil(depth);
    let name = |i: usize| format!("dag-{i:05}");
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let level = i / per;
        let deps = if level == 0 {
            vec![]
        } else {
            let above = (level - 1) * per..level * per;
            let k = rng.gen_range(1..=3);
            let mut d: Vec<String> = (0..k).map(|_| name(rng.gen_range(above.clone()))).collect();
            d.sort();
            d.dedup();
            d
        };
        out.push((name(i), deps));
    }
    out
}

/// A 1,000-service DAG promoted as one package, against the critical-path lower bound
/// (depth x the p50 time to promote one service alone).
pub async fn run_dag(sys: &System, n: usize, depth: usize, solo: usize) -> Result<String> {
    let dag = random_dag(n, depth);
    let names: Vec<String> = dag.iter().map(|(n, _)| n.clone()).collect();
    let solos: Vec<String> = (0..solo).map(|i| format!("solo-{i:03}")).collect();
    let t = Instant::now();
    sys.onboard(&dag).await?;
    sys.onboard(
        &solos
            .iter()
            .map(|n| (n.clone(), vec![]))
            .collect::<Vec<_>>(),
    )
    .await?;
    sys.evidence(&names).await?;
    sys.evidence(&solos).await?;
    sys.settle().await?;
    println!(
        "setup: {} services in {:.1} s",
        n + solo,
        t.elapsed().as_secs_f64()
    );
    let mut h = Histogram::<u64>::new(3)?;
    for s in &solos {
        h.record(sys.promote_one(s).await?.as_micros() as u64)?;
    }
    let one = ms(&h, 0.5);
    let package = sys.create_package(&names).await?;
    let (took, outcome) = sys.promote_package(&package).await?;
    let total = took.as_secs_f64() * 1000.0;
    let bound = one * depth as f64;
    let line = format!(
        "| {n} services, depth {depth} | {:.0} ms | {one:.1} ms | {bound:.0} ms | {:.2}x | {} |\n",
        total,
        total / bound,
        outcome["outcome"]
    );
    println!("| DAG | package promotion (request to PromotionCompleted) | one service alone (p50 of {solo}) | critical-path bound (depth x one) | ratio | outcome |\n|---|---|---|---|---|---|");
    print!("{line}");
    Ok(line)
}
