//! What users do while the faults happen: an operator uploads evidence, requests promotions
//! and sends measurements, an approver grants promotions. Every 2xx answer is an acknowledged
//! command, remembered with the event it promises; nothing else is assumed to have happened.

use crate::faults::checks::Ack;
use crate::faults::system::System;
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub const SERVICES: usize = 4;
/// The SLO the workload measures against (of svc-0).
pub const SLO: &str = "svc-0-availability";

/// A client that never panics: transport errors (a killed or frozen service) are answers too.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

pub enum Body {
    None,
    Json(Value),
    File(Vec<u8>),
}

impl Client {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Body,
    ) -> Result<(u16, Value), String> {
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        rb = match body {
            Body::None => rb,
            Body::Json(v) => rb.json(&v),
            Body::File(b) => rb
                .header("content-type", "application/octet-stream")
                .body(b),
        };
        let resp = rb.send().await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }
}

/// Counts of what the workload tried and got.
#[derive(Debug, Default)]
pub struct Counts {
    pub attempts: AtomicU64,
    pub acknowledged: AtomicU64,
    pub transport_errors: AtomicU64,
    pub server_errors: AtomicU64,
}

impl Counts {
    fn note(&self, r: &Result<(u16, Value), String>) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        match r {
            Ok((s, _)) if (200..300).contains(s) => {
                self.acknowledged.fetch_add(1, Ordering::Relaxed);
            }
            Ok((s, _)) if *s >= 500 => {
                self.server_errors.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(_) => {
                self.transport_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

pub struct Workload {
    pub rbac: Client,
    pub registry: Client,
    pub evidence: Client,
    pub orchestrators: [Client; 2],
    pub sla: Client,
    pub operator: String,
    pub approver: String,
    pub admin: String,
    pub acks: Mutex<Vec<Ack>>,
    pub counts: Counts,
    pub stop: AtomicBool,
    /// Promotions acknowledged (id).
    pub promotions: Mutex<Vec<String>>,
    /// Measurement batches acknowledged.
    pub batches: AtomicU64,
}

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/evidence"))
}

async fn exchange(rbac: &Client, user: &str, key: &str) -> String {
    let http = reqwest::Client::new();
    let v: Value = http
        .post(format!("{}/v1/auth/token", rbac.base))
        .json(&json!({"user": user, "api_key": key.trim()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

impl Workload {
    /// Users and the catalog, before the faults start.
    pub async fn prepare(system: &System) -> Arc<Self> {
        let c = |name: &str| Client::new(&system.http(name).base);
        let rbac = c("rbac");
        let admin_key = std::fs::read_to_string(&system.admin_key_file).unwrap();
        let admin = exchange(&rbac, "root", &admin_key).await;
        let mut tokens = Vec::new();
        for (user, role) in [("olga", "operator"), ("ada", "approver")] {
            let (s, v) = rbac
                .call(
                    reqwest::Method::POST,
                    "/v1/users",
                    &admin,
                    Body::Json(json!({"name": user, "roles": [role]})),
                )
                .await
                .unwrap();
            assert!((200..300).contains(&s), "{v}");
            let (s, v) = rbac
                .call(
                    reqwest::Method::POST,
                    &format!("/v1/users/{user}/api-keys"),
                    &admin,
                    Body::None,
                )
                .await
                .unwrap();
            assert!((200..300).contains(&s), "{v}");
            tokens.push(exchange(&rbac, user, v["api_key"].as_str().unwrap()).await);
        }
        let w = Arc::new(Self {
            registry: c("registry"),
            evidence: c("evidence"),
            orchestrators: [c("orchestrator-a"), c("orchestrator-b")],
            sla: c("sla"),
            rbac,
            approver: tokens.pop().unwrap(),
            operator: tokens.pop().unwrap(),
            admin,
            acks: Mutex::default(),
            counts: Counts::default(),
            stop: AtomicBool::new(false),
            promotions: Mutex::default(),
            batches: AtomicU64::new(0),
        });
        let mut catalog = String::new();
        for i in 0..SERVICES {
            catalog.push_str(&format!(
                "---\nservice:\n  name: svc-{i}\n  spec:\n    api_version: v1\n    compliance_mode: sandbox\n"
            ));
        }
        let (s, v) = goose_testkit::eventually(Duration::from_secs(30), "onboarding", || async {
            let r = w
                .registry
                .http
                .post(format!("{}/v1/services", w.registry.base))
                .bearer_auth(&w.operator)
                .header("content-type", "application/yaml")
                .body(catalog.clone())
                .send()
                .await
                .ok()?;
            let s = r.status().as_u16();
            (s == 200).then_some((s, r.json::<Value>().await.ok()?))
        })
        .await
        .unwrap();
        assert_eq!(s, 200, "{v}");
        for i in 0..SERVICES {
            w.ack(Ack::new(
                &format!("onboarding of svc-{i}"),
                "catalog/default",
                "ServiceOnboarded",
                Some(&format!("svc-{i}")),
            ));
        }
        let slo = format!(
            "apiVersion: openslo/v1
kind: SLO
metadata: {{name: {SLO}}}
spec:
  service: svc-0
  budgetingMethod: Occurrences
  timeWindow: [{{duration: 1h, isRolling: true}}]
  indicator:
    metadata: {{name: svc-0-requests}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{type: golden-goose, spec: {{signal: requests}}}}}}
        total: {{metricSource: {{type: golden-goose, spec: {{signal: requests}}}}}}
  objectives: [{{displayName: availability, target: 0.99}}]
"
        );
        goose_testkit::eventually(Duration::from_secs(30), "the SLO applied", || async {
            let r = w
                .sla
                .http
                .put(format!("{}/v1/slos", w.sla.base))
                .bearer_auth(&w.operator)
                .header("content-type", "application/yaml")
                .body(slo.clone())
                .send()
                .await
                .ok()?;
            (r.status().as_u16() == 200).then_some(())
        })
        .await
        .unwrap();
        w.ack(Ack::new(
            "the SLO",
            &format!("slo/{SLO}"),
            "SloApplied",
            None,
        ));
        w
    }

    /// svc-0's requests of the last minute, one batch after the other until stopped (one in
    /// twenty fails, so the SLO's alerts fire and incidents open along the way). A batch is
    /// retried with its id until answered: recorded once, whatever the faults.
    pub async fn measure(self: Arc<Self>) {
        let mut n = 0u32;
        while !self.stopped() {
            let batch = format!("b-{n}");
            n += 1;
            let now = time::OffsetDateTime::now_utc();
            let samples: Vec<Value> = (0..60)
                .map(|i| {
                    let at = now - time::Duration::seconds(60 - i);
                    json!({
                        "at": at.format(&time::format_description::well_known::Rfc3339).unwrap(),
                        "latency_ms": 10.0 + i as f64,
                        "status": if i % 20 == 0 { 503 } else { 200 },
                    })
                })
                .collect();
            let body = json!({"service": "svc-0", "batch_id": batch, "samples": samples});
            let Some(_) = self
                .until(
                    &self.sla,
                    reqwest::Method::POST,
                    "/v1/measurements",
                    &self.operator,
                    || Body::Json(body.clone()),
                    |s| s == 200,
                )
                .await
            else {
                return;
            };
            self.batches.fetch_add(1, Ordering::Relaxed);
            self.ack(Ack::new(
                &format!("measurement batch {batch}"),
                &format!("measurement/svc-0:{batch}"),
                "MinuteSummarized",
                None,
            ));
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    fn ack(&self, ack: Ack) {
        self.acks.lock().push(ack);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Calls until an answer in `done` (returned) or the workload stops (None); pauses between
    /// tries.
    async fn until(
        &self,
        client: &Client,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: impl Fn() -> Body,
        done: impl Fn(u16) -> bool,
    ) -> Option<(u16, Value)> {
        loop {
            if self.stopped() {
                return None;
            }
            let r = client.call(method.clone(), path, token, body()).await;
            self.counts.note(&r);
            if let Ok((s, v)) = r {
                if done(s) {
                    return Some((s, v));
                }
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    async fn upload(&self, service: &str, version: &str, kind: &str, file: &str) {
        let bytes = std::fs::read(fixtures().join(file)).unwrap();
        let path = format!("/v1/evidence?service={service}&version={version}&kind={kind}");
        if let Some((_, v)) = self
            .until(
                &self.evidence,
                reqwest::Method::POST,
                &path,
                &self.operator,
                || Body::File(bytes.clone()),
                |s| s == 200,
            )
            .await
        {
            let id = v["id"].as_str().unwrap_or_default().to_owned();
            self.ack(Ack::new(
                &format!("evidence {kind} of {service}@{version}"),
                &format!("evidence/{service}@{version}"),
                "EvidenceAccepted",
                Some(&id),
            ));
        }
    }

    /// One service's releases, one after the other, until stopped: evidence, a promotion
    /// request (on either replica), the approver's grant.
    pub async fn promote_releases(self: Arc<Self>, service: usize) {
        let svc = format!("svc-{service}");
        let mut n = 0u32;
        while !self.stopped() {
            let version = format!("1.0.{n}");
            n += 1;
            for (kind, file) in [
                ("junit", "passing/junit.xml"),
                ("lcov", "passing/coverage.lcov"),
                ("sarif", "clippy.sarif"),
                ("cyclonedx", "sbom.cdx.json"),
            ] {
                self.upload(&svc, &version, kind, file).await;
            }
            let orchestrator = &self.orchestrators[(service + n as usize) % 2];
            let body = json!({"service": svc, "version": version, "reason": "fault harness"});
            // 409: the previous release's promotion still holds the service's lock; 422: the
            // replica has not seen the catalog or the evidence yet; 503: a dependency is down.
            let Some((_, started)) = self
                .until(
                    orchestrator,
                    reqwest::Method::POST,
                    "/v1/promotions",
                    &self.operator,
                    || Body::Json(body.clone()),
                    |s| s == 202,
                )
                .await
            else {
                return;
            };
            let id = started["id"].as_str().unwrap_or_default().to_owned();
            self.ack(Ack::new(
                &format!("promotion request {id}"),
                &format!("promotion/{id}"),
                "PromotionRequested",
                None,
            ));
            self.promotions.lock().push(id);
            if let Some(approval) = started["request"]["approval_id"].as_str() {
                self.grant(approval).await;
            }
        }
    }

    /// Grants an approval as the approver (409: already decided, e.g. by an earlier try whose
    /// answer was lost).
    pub async fn grant(&self, approval: &str) {
        let path = format!("/v1/approvals/{approval}/grant");
        if let Some((s, _)) = self
            .until(
                &self.rbac,
                reqwest::Method::POST,
                &path,
                &self.approver,
                || Body::Json(json!({"comment": "reviewed"})),
                |s| s == 200 || s == 409,
            )
            .await
        {
            if s == 200 {
                self.ack(Ack::new(
                    &format!("grant of approval {approval}"),
                    &format!("approval/{approval}"),
                    "ApprovalGranted",
                    Some("ada"),
                ));
            }
        }
    }

    /// After the faults: grants every approval still pending (requests whose requester never
    /// heard back, and grants cut off by the stop), so every promotion can end.
    pub async fn grant_pending(&self) {
        let r = self
            .rbac
            .call(
                reqwest::Method::GET,
                "/v1/approvals?status=pending",
                &self.admin,
                Body::None,
            )
            .await;
        let Ok((200, Value::Array(pending))) = r else {
            panic!("listing pending approvals: {r:?}");
        };
        for a in pending {
            if let Some(id) = a["id"].as_str() {
                self.grant(id).await;
            }
        }
    }
}
