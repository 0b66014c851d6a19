//! Promotions end to end, every service its own process over one PostgreSQL and one
//! nats-server, with two orchestrator replicas: onboard service-a, service-b (needs a) and
//! service-c (needs b); submit evidence written by real tools; race two promotions of one
//! service across the replicas (one wins, the other is told who holds the lock); promote a
//! package as an operator, refuse the requester's own approval, approve as someone else,
//! kill the replica driving it — the other resumes it from the events —, observe a, b, c in
//! order with c stopped by its coverage; export the signed manifest with its proofs and check
//! it offline; verify the whole chain.

use crate::support::{
    binary, spawn, token, user_with_token, verify_chain, wait_healthy, Env, Http, Proc,
};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"))
}

fn key(dir: &Path, file: &str, name: &str) -> String {
    goose_ledger::NoteKey::load_or_generate(&dir.join(file), name)
        .unwrap()
        .vkey()
}

async fn submit(e: &Http, tok: &str, service: &str, kind: &str, file: &Path) -> Value {
    // The evidence service learns the catalog from registry's events: a service onboarded a
    // moment ago may not be known to it yet.
    goose_testkit::eventually(Duration::from_secs(20), "evidence accepted", || async {
        let (s, v) = e
            .raw(
                "POST",
                &format!("/v1/evidence?service={service}&version=1.0.0&kind={kind}"),
                tok,
                "application/octet-stream",
                std::fs::read(file).unwrap(),
            )
            .await;
        assert!(s == 200 || s == 422, "{service} {kind}: {s} {v}");
        (s == 200).then_some(v)
    })
    .await
    .unwrap()
}

/// Waits until orchestrator `o` knows service-a and its evidence: a promotion citing an
/// unknown evidence ref is then refused for that reason, not for an unknown service.
async fn sees_catalog_and_evidence(o: &Http, tok: &str) {
    goose_testkit::eventually(Duration::from_secs(20), "the orchestrator sees the catalog", || async {
        let (s, v) = o
            .call(
                "POST",
                "/v1/promotions",
                Some(tok),
                Some(&json!({"service": "service-a", "version": "1.0.0", "evidence_refs": ["nope"]})),
            )
            .await;
        (s == 422 && v["detail"] == "evidence_refs not found for service-a@1.0.0: nope").then_some(())
    })
    .await
    .unwrap();
}

/// Waits until the promotion's recorded steps satisfy `done`, returning them.
async fn steps_until(
    o: &Http,
    tok: &str,
    id: &str,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    goose_testkit::eventually(Duration::from_secs(60), what, || async {
        let (s, v) = o
            .call(
                "GET",
                &format!("/v1/promotions/{id}/explain"),
                Some(tok),
                None,
            )
            .await;
        if s != 200 {
            return None;
        }
        let events = v["events"].as_array().cloned().unwrap_or_default();
        done(&events).then_some(events)
    })
    .await
    .unwrap()
}

fn position_of(events: &[Value], kind: &str, service: &str) -> Option<u64> {
    events
        .iter()
        .find(|e| e["event_type"] == kind && e["event"]["service"] == service)
        .and_then(|e| e["position"].as_u64())
}

/// The trace context the test sends with the package promotion request.
const CALLER_TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// The package promotion is one trace: the orchestrator's request span continues the
/// caller's; rbac's span for the approval request the orchestrator raised is its child (HTTP
/// `traceparent`); the replica that resumed the promotion after the first died drives it in
/// the same trace (the request event's `traceparent`); other services consume its events in
/// the same trace (NATS `traceparent` headers, copied by the relay from the events).
async fn one_trace_across_services(otlp: &goose_testkit::OtlpReceiver) {
    let spans = otlp
        .wait_for(Duration::from_secs(30), |spans| {
            let ours = || spans.iter().filter(|s| s.trace_id == CALLER_TRACE);
            ours().any(|s| s.service == "goose-rbac" && s.kind == 2)
                && ours().any(|s| s.name == "promotion" && s.service == "goose-orchestrator")
                && ours().any(|s| s.kind == 5 && s.service != "goose-orchestrator")
        })
        .await;
    let all = otlp.spans();
    let Some(spans) = spans else {
        let ours: Vec<_> = all.iter().filter(|s| s.trace_id == CALLER_TRACE).collect();
        panic!(
            "the promotion's trace is incomplete ({} spans received in all); ours: {ours:#?}",
            all.len()
        );
    };
    let ours: Vec<_> = spans
        .iter()
        .filter(|s| s.trace_id == CALLER_TRACE)
        .collect();
    let request = ours
        .iter()
        .find(|s| {
            s.service == "goose-orchestrator"
                && s.kind == 2
                && s.name == "POST /v1/packages/{id}/promote"
        })
        .unwrap_or_else(|| panic!("no server span of the promote request: {ours:#?}"));
    assert_eq!(
        request.parent_span_id, "00f067aa0ba902b7",
        "continues the caller's span"
    );
    assert_eq!(request.attributes["http.response.status_code"], "202");
    let by_id = |id: &str| ours.iter().find(|s| s.span_id == id);
    let rbac = ours
        .iter()
        .find(|s| s.service == "goose-rbac" && s.kind == 2 && s.name == "POST /v1/approvals")
        .unwrap_or_else(|| panic!("no rbac span for the approval request: {ours:#?}"));
    assert_eq!(
        by_id(&rbac.parent_span_id).map(|p| p.service.as_str()),
        Some("goose-orchestrator"),
        "rbac's span is a child of the orchestrator's: {ours:#?}"
    );
    let driver = ours
        .iter()
        .find(|s| s.name == "promotion")
        .unwrap_or_else(|| panic!("no driver span: {ours:#?}"));
    assert!(
        !driver.parent_span_id.is_empty(),
        "the driver continues the request's trace"
    );
    let consumers: std::collections::BTreeSet<&str> = ours
        .iter()
        .filter(|s| s.kind == 5)
        .map(|s| s.service.as_str())
        .collect();
    assert!(
        consumers.iter().any(|s| *s != "goose-orchestrator"),
        "another service consumed the promotion's events in its trace: {consumers:?}"
    );
    // Every span of the trace hangs off the caller's: no orphan parent within it, except the
    // spans of the replica that was killed before it could export them.
    assert!(
        ours.iter().all(|s| s.parent_span_id.len() == 16),
        "{ours:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotions_across_processes() {
    let db = goose_testkit::postgres().await.unwrap();
    let nats = goose_testkit::nats().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Evidence files live in an S3 bucket with Object Lock (WORM), on an S3 server of the
    // test's own.
    let s3 = goose_testkit::S3Server::start().unwrap();
    let (key_id, secret) = goose_testkit::S3_TEST_KEY;
    let bucket = goose_evidence::blob::s3::S3Config {
        bucket: "goose-e2e".into(),
        endpoint: Some(s3.endpoint()),
        region: "us-east-1".into(),
        access_key_id: key_id.into(),
        secret_access_key: secret.into(),
        prefix: "evidence".into(),
    };
    goose_evidence::blob::s3::S3BlobStore::create_bucket(bucket.clone(), 1)
        .await
        .unwrap();
    // Every service exports its spans to an OTLP receiver of the test's own.
    let otlp = goose_testkit::OtlpReceiver::start().await.unwrap();
    let env = Env {
        db: db.url.clone(),
        nats: nats.url.clone(),
        stream: nats.stream.clone(),
        prefix: nats.subject_prefix.clone(),
        dir: d.to_owned(),
        vars: [
            ("AWS_ENDPOINT_URL", s3.endpoint()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", key_id.into()),
            ("AWS_SECRET_ACCESS_KEY", secret.into()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.endpoint().to_owned()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
    };
    // Every key exists before the services start, so the orchestrators can be told which
    // service keys to trust and the log's checkpoint key.
    let token_vkey = key(d, "tokens.key", "e2e-tokens");
    let log_vkey = key(d, "log.key", "e2e.test/ledger");
    let mut ring = String::new();
    for (file, name) in [
        ("goose-rbac.key", "goose-rbac"),
        ("goose-registry.key", "goose-registry"),
        ("goose-evidence.key", "goose-evidence"),
        ("orchestrator-a.key", "goose-orchestrator-a"),
        ("orchestrator-b.key", "goose-orchestrator-b"),
    ] {
        ring.push_str(&key(d, file, name));
        ring.push('\n');
    }
    std::fs::write(d.join("keyring"), &ring).unwrap();
    let admin_key_file = d.join("admin.api-key");
    let ports: Vec<u16> = (0..6)
        .map(|_| goose_testkit::free_port().unwrap())
        .collect();
    let tok = format!("--token-vkey={token_vkey}");
    let mut rbac = spawn(
        &env,
        "goose-rbac",
        ports[0],
        &[
            format!("--token-key-file={}", d.join("tokens.key").display()),
            "--bootstrap-admin=root".into(),
            format!("--bootstrap-key-file={}", admin_key_file.display()),
        ],
    );
    let mut registry = spawn(&env, "goose-registry", ports[1], std::slice::from_ref(&tok));
    let mut evidence = spawn(
        &env,
        "goose-evidence",
        ports[2],
        &[
            tok.clone(),
            "--relay".into(),
            format!("--log-key-file={}", d.join("log.key").display()),
            // No periodic checkpoint during the test: the gates' own requests must get them
            // (a gate passes only on facts a verified checkpoint covers).
            "--checkpoint-interval=3600".into(),
            "--blob-store=s3://goose-e2e/evidence".into(),
            "--blob-stats-interval=1".into(),
        ],
    );
    let orchestrator = |port: u16, key_file: &str, rbac_port: u16| -> Proc {
        spawn(
            &env,
            "goose-orchestrator",
            port,
            &[
                tok.clone(),
                format!("--service-key-file={}", d.join(key_file).display()),
                format!("--rbac-url=http://127.0.0.1:{rbac_port}"),
                format!("--keyring=@{}", d.join("keyring").display()),
                format!("--log-vkey={log_vkey}"),
                "--bundle-store=s3://goose-e2e".into(),
                // Each replica keeps its read models' snapshots in a directory of its own.
                format!(
                    "--snapshot-dir={}",
                    d.join(format!("snapshots-{port}")).display()
                ),
            ],
        )
    };
    let mut orch_a = orchestrator(ports[3], "orchestrator-a.key", ports[0]);
    let mut orch_b = orchestrator(ports[4], "orchestrator-b.key", ports[0]);
    // A third replica that cannot reach rbac (nothing listens on port 1).
    let mut orch_c = orchestrator(ports[5], "orchestrator-b.key", 1);
    let http = |p: u16| Http::new(format!("http://127.0.0.1:{p}"));
    let (r, g, e, oa, ob) = (
        http(ports[0]),
        http(ports[1]),
        http(ports[2]),
        http(ports[3]),
        http(ports[4]),
    );
    wait_healthy(&r, &mut rbac).await;
    wait_healthy(&g, &mut registry).await;
    wait_healthy(&e, &mut evidence).await;
    wait_healthy(&oa, &mut orch_a).await;
    wait_healthy(&ob, &mut orch_b).await;
    // The replica that cannot reach rbac serves but is not ready, and says why.
    let oc = http(ports[5]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let not_ready = loop {
        if let Ok(Some(status)) = orch_c.0.try_wait() {
            panic!("goose-orchestrator exited early: {status}");
        }
        if let Ok(r) = reqwest::get(format!("{}/readyz", oc.base)).await {
            let status = r.status();
            break (status, r.text().await.unwrap_or_default());
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replica without rbac never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(not_ready.0, 503, "{}", not_ready.1);
    assert!(
        not_ready
            .1
            .contains("rbac is down: http://127.0.0.1:1/healthz"),
        "{}",
        not_ready.1
    );

    let root = token(
        &r,
        "root",
        &std::fs::read_to_string(&admin_key_file).unwrap(),
    )
    .await;
    let olga = user_with_token(&r, &root, "olga", &["operator"]).await;
    let ada = user_with_token(&r, &root, "ada", &["approver"]).await;
    // Holds both roles: segregation of duties must still keep them from approving their own.
    let sam = user_with_token(&r, &root, "sam", &["operator", "approver"]).await;
    // Explain and proofs are the audit trail: audit.read.
    let audrey = user_with_token(&r, &root, "audrey", &["auditor"]).await;

    // Onboard a, b (needs a), c (needs b), given in reverse order.
    let catalog = crate::support::example_catalog(&["service-c", "service-b", "service-a"]);
    let (s, v) = g
        .raw(
            "POST",
            "/v1/services",
            &olga,
            "application/yaml",
            catalog.into_bytes(),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["onboarded"],
        json!(["service-a", "service-b", "service-c"])
    );

    // Evidence written by real tools (tests/fixtures/evidence/README.md): c's coverage is 40%.
    let ev = fixtures().join("evidence");
    for svc in ["service-a", "service-b", "service-c"] {
        let run = if svc == "service-c" {
            "low-coverage"
        } else {
            "passing"
        };
        submit(&e, &olga, svc, "junit", &ev.join(run).join("junit.xml")).await;
        submit(&e, &olga, svc, "lcov", &ev.join(run).join("coverage.lcov")).await;
        submit(&e, &olga, svc, "sarif", &ev.join("clippy.sarif")).await;
        submit(&e, &olga, svc, "cyclonedx", &ev.join("sbom.cdx.json")).await;
    }
    // The files are in the WORM bucket; every download is recorded (who, which, when), and
    // only auditors read that record.
    let junit = submit(
        &e,
        &olga,
        "service-a",
        "junit",
        &ev.join("passing").join("junit.xml"),
    )
    .await;
    let digest = junit["digest"].as_str().unwrap().to_owned();
    let (s, bytes) = e
        .raw(
            "GET",
            &format!("/v1/blobs/{digest}"),
            &ada,
            "application/octet-stream",
            vec![],
        )
        .await;
    assert_eq!(s, 200, "{bytes}");
    let (s, _) = e
        .call(
            "GET",
            &format!("/v1/blobs/{digest}/downloads"),
            Some(&olga),
            None,
        )
        .await;
    assert_eq!(s, 403, "the download record is the audit trail");
    let (s, downloads) = e
        .call(
            "GET",
            &format!("/v1/blobs/{digest}/downloads"),
            Some(&audrey),
            None,
        )
        .await;
    assert_eq!(s, 200, "{downloads}");
    assert_eq!(downloads[0]["by"], "ada", "{downloads}");
    assert!(
        downloads[0]["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == &junit["id"]),
        "{downloads}"
    );
    let worm = goose_evidence::blob::s3::S3BlobStore::connect(bucket)
        .await
        .unwrap();
    assert_eq!(
        worm.force_delete_version(&digest).await.unwrap().as_u16(),
        403,
        "the bucket refuses deleting a retained file, even to its owner"
    );
    goose_testkit::eventually(Duration::from_secs(20), "the WORM metrics", || async {
        let (_, m) = e.call("GET", "/metrics", None, None).await;
        let m = m.as_str().map(str::to_owned).unwrap_or_default();
        m.lines()
            .find(|l| l.starts_with("goose_worm_objects{backend=\"s3\"}"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .filter(|n| *n >= 4.0)
            .map(|_| {
                assert!(
                    m.contains("goose_worm_retention_horizon_timestamp_seconds{backend=\"s3\"}"),
                    "{m}"
                )
            })
    })
    .await
    .unwrap();

    // The orchestrators learn the catalog and the evidence from the events.
    for o in [&oa, &ob] {
        sees_catalog_and_evidence(o, &olga).await;
    }

    // Bad input: clear errors, nothing recorded.
    let (s, v) = oa
        .call(
            "POST",
            "/v1/promotions",
            Some(&olga),
            Some(&json!({"service": "service-a", "version": "1.0.0", "bogus": 1})),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("bogus"), "{v}");
    let (s, v) = oa
        .call(
            "POST",
            "/v1/promotions",
            Some(&olga),
            Some(&json!({"service": "service-a", "version": "1.0.0", "target_state": "sandbox"})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    let (s, v) = oa
        .call(
            "POST",
            "/v1/promotions",
            Some(&olga),
            Some(&json!({"service": "service-z", "version": "1.0.0"})),
        )
        .await;
    assert_eq!(
        (s, v["detail"].as_str()),
        (
            422,
            Some("service service-z is not in the catalog; onboard it first")
        ),
        "{v}"
    );
    let (s, _) = oa
        .call(
            "POST",
            "/v1/promotions",
            Some(&ada),
            Some(&json!({"service": "service-a", "version": "1.0.0"})),
        )
        .await;
    assert_eq!(s, 403, "an approver may not request promotions");

    // rbac unreachable when the approval request must be raised: a clear 503, and nothing is
    // left behind — the lock it took is released (the race below needs it free).
    sees_catalog_and_evidence(&oc, &olga).await;
    let (s, v) = oc
        .call(
            "POST",
            "/v1/promotions",
            Some(&olga),
            Some(&json!({"service": "service-a", "version": "1.0.0"})),
        )
        .await;
    assert_eq!(s, 503, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .starts_with("rbac is unreachable at http://127.0.0.1:1/v1/approvals"),
        "{v}"
    );
    drop(orch_c);

    // Two promotions of service-a at once, one per replica: the lock holds across them.
    let body = json!({"service": "service-a", "version": "1.0.0", "reason": "race"});
    let ((s1, v1), (s2, v2)) = tokio::join!(
        oa.call("POST", "/v1/promotions", Some(&olga), Some(&body)),
        ob.call("POST", "/v1/promotions", Some(&olga), Some(&body)),
    );
    let mut statuses = [s1, s2];
    statuses.sort_unstable();
    assert_eq!(statuses, [202, 409], "{v1} {v2}");
    let (winner, loser) = if s1 == 202 { (&v1, &v2) } else { (&v2, &v1) };
    let raced = winner["id"].as_str().unwrap().to_owned();
    assert!(
        loser["detail"].as_str().unwrap().contains(&format!(
            "service-a: a promotion is already in flight for this service: {raced}"
        )),
        "{loser}"
    );
    // Rejected by an approver: the target fails with the reason and the lock is released.
    let approval = winner["request"]["approval_id"]
        .as_str()
        .unwrap()
        .to_owned();
    r.ok(
        "POST",
        &format!("/v1/approvals/{approval}/reject"),
        &ada,
        Some(&json!({"comment": "not this one"})),
    )
    .await;
    let events = steps_until(&oa, &audrey, &raced, "the raced promotion ends", |ev| {
        ev.iter().any(|e| e["event_type"] == "PromotionCompleted")
    })
    .await;
    let failed = events
        .iter()
        .find(|e| e["event_type"] == "TargetFailed")
        .unwrap();
    assert_eq!(
        failed["event"]["reason"], "approval_granted: rejected by ada: not this one",
        "{failed}"
    );

    // The package, created on one replica and promoted on the other.
    let pkg = oa
        .ok(
            "POST",
            "/v1/packages",
            &olga,
            Some(&json!({"services": ["service-c", "service-a", "service-b"], "version": "1.0.0"})),
        )
        .await;
    let pkg_id = pkg["id"].as_str().unwrap().to_owned();
    goose_testkit::eventually(
        Duration::from_secs(10),
        "replica b sees the package",
        || async {
            let (s, _) = ob
                .call("GET", &format!("/v1/packages/{pkg_id}"), Some(&sam), None)
                .await;
            (s == 200).then_some(())
        },
    )
    .await
    .unwrap();
    // The caller's trace (W3C traceparent) is the promotion's trace, across every process.
    let (s, started) = ob
        .call_with(
            "POST",
            &format!("/v1/packages/{pkg_id}/promote"),
            Some(&sam),
            Some(&json!({"reason": "release 1.0.0"})),
            &[("traceparent", CALLER_TRACEPARENT)],
        )
        .await;
    assert_eq!(s, 202, "{started}");
    let promotion = started["id"].as_str().unwrap().to_owned();
    let approval = started["request"]["approval_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let order: Vec<&str> = started["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["spec"]["service"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["service-a", "service-b", "service-c"]);

    // service-a reaches the manual gate; the requester may not pass it, even holding the role.
    let waiting = steps_until(
        &ob,
        &audrey,
        &promotion,
        "service-a waits for its approval",
        |ev| {
            ev.iter().any(|e| {
                e["event"]["gate"] == "approval_check" && e["event"]["outcome"] == "missing"
            })
        },
    )
    .await;
    assert_eq!(
        waiting.last().unwrap()["actor"],
        "goose-orchestrator-b",
        "b drives what it started"
    );
    let (s, v) = r
        .call(
            "POST",
            &format!("/v1/approvals/{approval}/grant"),
            Some(&sam),
            Some(&json!({})),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("segregation of duties"),
        "{v}"
    );

    // Replica b, which drives the promotion, dies; the approval arrives; replica a resumes it
    // from the events.
    // (A killed process loses the spans its batch exporter has not sent: wait for b's span
    // of the promote request first.)
    otlp.wait_for(Duration::from_secs(10), |spans| {
        spans
            .iter()
            .any(|s| s.trace_id == CALLER_TRACE && s.name == "POST /v1/packages/{id}/promote")
    })
    .await
    .expect("replica b exported its span of the promote request");
    drop(orch_b);
    r.ok(
        "POST",
        &format!("/v1/approvals/{approval}/grant"),
        &ada,
        Some(&json!({"comment": "evidence reviewed"})),
    )
    .await;
    let events = steps_until(
        &oa,
        &audrey,
        &promotion,
        "the package promotion ends on replica a",
        |ev| ev.iter().any(|e| e["event_type"] == "PromotionCompleted"),
    )
    .await;
    one_trace_across_services(&otlp).await;
    // The chain check waited for a checkpoint covering the facts it cited (none was periodic)
    // and passed once the evidence service signed one on the gate's request.
    let waited = events.iter().any(|e| {
        e["event"]["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| {
                c["check"] == "evidence_chain_valid"
                    && c["outcome"] == "missing"
                    && c["detail"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("awaiting a checkpoint")
            })
    });
    assert!(waited, "no gate waited for a checkpoint");
    let promoted = |svc| position_of(&events, "TargetPromoted", svc);
    let (pa, pb) = (
        promoted("service-a").unwrap(),
        promoted("service-b").unwrap(),
    );
    let started_b = position_of(&events, "TargetStarted", "service-b").unwrap();
    let started_c = position_of(&events, "TargetStarted", "service-c").unwrap();
    assert!(
        pa < started_b && pb < started_c,
        "order a, b, c: {events:?}"
    );
    let failed_c = events
        .iter()
        .find(|e| e["event_type"] == "TargetFailed" && e["event"]["service"] == "service-c")
        .unwrap();
    assert_eq!(
        failed_c["event"]["reason"],
        "test_coverage_threshold: below threshold: line coverage 40.00% (4 of 10 lines), threshold 80%"
    );
    let completed = events.last().unwrap();
    assert_eq!(
        completed["event"]["outcome"], "partially_succeeded",
        "{completed}"
    );
    // Decisions after the crash were written by replica a's key.
    let after_crash: Vec<&str> = events
        .iter()
        .filter(|e| e["position"].as_u64() > Some(pa))
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert!(
        after_crash.iter().all(|a| *a == "goose-orchestrator-a"),
        "{after_crash:?}"
    );
    // Every decision cites its facts with digests: c's coverage evaluation cites the lcov event.
    let gate = events
        .iter()
        .find(|e| {
            e["event"]["service"] == "service-c" && e["event"]["gate"] == "evidence_collection"
        })
        .unwrap();
    assert_eq!(gate["event"]["outcome"], "fail");
    let coverage = gate["event"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "test_coverage_threshold")
        .unwrap();
    let input = &coverage["inputs"][0];
    assert_eq!(input["kind"], "evidence");
    assert_eq!(input["digest"].as_str().unwrap().len(), 64);

    // Compliance states, as the orchestrator sees them.
    let states = oa.ok("GET", "/v1/compliance", &ada, None).await;
    let state = |svc: &str| {
        states
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["service"] == svc)
            .map(|s| s["state"].clone())
    };
    assert_eq!(state("service-a"), Some(json!("compliant")));
    assert_eq!(state("service-b"), Some(json!("compliant")));
    assert_eq!(state("service-c"), None, "c never left sandbox");

    // The signed manifest, exported with its proofs and checked offline by goosectl.
    goose_testkit::eventually(
        Duration::from_secs(20),
        "the manifest is signed",
        || async {
            let (s, _) = oa
                .call(
                    "GET",
                    &format!("/v1/packages/{pkg_id}/manifest"),
                    Some(&olga),
                    None,
                )
                .await;
            (s == 200).then_some(())
        },
    )
    .await
    .unwrap();
    // The manifest event itself is newer than any checkpoint a gate asked for: an operator of
    // the log signs one now (what `goosectl checkpoint` does), so its proof exists.
    let (s, v) = e
        .call("POST", "/v1/chain/checkpoints", Some(&root), None)
        .await;
    assert_eq!(s, 200, "{v}");
    let goosectl = |args: &[&str]| {
        // Exports and explain read the audit trail: an auditor's token.
        let out = Command::new(binary("goosectl"))
            .env("GOOSE_TOKEN", &audrey)
            .env("GOOSE_URL", &oa.base)
            .env("GOOSE_RBAC_URL", &r.base)
            .env("GOOSE_REGISTRY_URL", &g.base)
            .env("GOOSE_EVIDENCE_URL", &e.base)
            .env("GOOSE_ORCHESTRATOR_URL", &oa.base)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let export = d.join("export");
    let (ok, text) = goosectl(&[
        "package",
        "export",
        &pkg_id,
        "--out",
        export.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let signer = goose_ledger::NoteKey::load(&d.join("orchestrator-b.key"))
        .unwrap()
        .vkey();
    let (ok, text) = goosectl(&[
        "package",
        "verify",
        export.to_str().unwrap(),
        "--log-key",
        &log_vkey,
        "--signer-key",
        &signer,
    ]);
    // Replica a finished the promotion, so it signed the manifest.
    assert!(!ok, "the manifest was signed by replica a, not b: {text}");
    let signer = goose_ledger::NoteKey::load(&d.join("orchestrator-a.key"))
        .unwrap()
        .vkey();
    let (ok, text) = goosectl(&[
        "package",
        "verify",
        export.to_str().unwrap(),
        "--log-key",
        &log_vkey,
        "--signer-key",
        &signer,
    ]);
    assert!(ok, "{text}");
    assert!(
        text.contains("service-c@1.0.0: failed — test_coverage_threshold"),
        "{text}"
    );
    // The bundle was kept in the WORM bucket when first built (by the export above); asked
    // again, it is served from there, the same files.
    let (s, first) = oa
        .call(
            "GET",
            &format!("/v1/packages/{pkg_id}/bundle"),
            Some(&audrey),
            None,
        )
        .await;
    assert_eq!(s, 200, "{first}");
    let (s, again) = oa
        .call(
            "GET",
            &format!("/v1/packages/{pkg_id}/bundle"),
            Some(&audrey),
            None,
        )
        .await;
    assert_eq!((s, &again["files"]), (200, &first["files"]));
    let (s, _) = oa
        .call(
            "GET",
            &format!("/v1/packages/{pkg_id}/bundle"),
            Some(&olga),
            None,
        )
        .await;
    assert_eq!(s, 403, "the bundle's proofs are the audit trail");
    let (ok, text) = goosectl(&["promotion", "explain", &promotion]);
    assert!(ok && text.contains("cites evidence"), "{text}");
    let out = Command::new(binary("goosectl"))
        .env("GOOSE_TOKEN", &olga)
        .env("GOOSE_URL", &oa.base)
        .env("GOOSE_ORCHESTRATOR_URL", &oa.base)
        .args(["promotion", "explain", &promotion])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("audit.read"),
        "an operator does not read the audit trail: {text}"
    );

    // The verification summary of a promoted target, checked with securesystemslib (PyPI);
    // a target that was not promoted has none.
    let (s, vsa) = oa
        .call(
            "GET",
            &format!("/v1/promotions/{promotion}/targets/service-b/vsa"),
            Some(&olga),
            None,
        )
        .await;
    assert_eq!(s, 200, "{vsa}");
    let vsa_file = d.join("vsa.json");
    std::fs::write(&vsa_file, vsa.to_string()).unwrap();
    let python = goose_testkit::python_env(&["securesystemslib[crypto]>=1,<2"]).unwrap();
    let out = Command::new(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/vsa_check.py"))
        .arg(&vsa_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (s, v) = oa
        .call(
            "GET",
            &format!("/v1/promotions/{promotion}/targets/service-c/vsa"),
            Some(&olga),
            None,
        )
        .await;
    assert_eq!(s, 404, "{v}");

    // A violation found after the fact: service-a@1.0.0 goes back to sandbox, with its reason;
    // service-b, which depends on it, is reported. An operator may not; a second demotion is
    // refused (it is not compliant any more).
    let path = "/v1/compliance/service-a/1.0.0/demote";
    let reason = json!({"reason": "CVE-2026-0001 in the base image"});
    let (s, v) = oa.call("POST", path, Some(&olga), Some(&reason)).await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = oa.call("POST", path, Some(&ada), Some(&reason)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "sandbox", "{v}");
    assert_eq!(v["dependants"], json!(["service-b"]), "{v}");
    assert!(v["event"]["position"].is_u64(), "{v}");
    let (s, v) = oa.call("POST", path, Some(&ada), Some(&reason)).await;
    assert_eq!(s, 409, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("not compliant"),
        "{v}"
    );
    let states = oa
        .ok("GET", "/v1/compliance?service=service-a", &ada, None)
        .await;
    assert_eq!(states[0]["state"], "sandbox", "{states}");

    // Replica a restarts from its snapshot (SIGTERM, as Kubernetes stops it) and answers as
    // before: the promotion's explain view, compliance, the package.
    let watched = [
        format!("/v1/promotions/{promotion}/explain"),
        "/v1/compliance".to_owned(),
        format!("/v1/packages/{pkg_id}"),
    ];
    let mut before = Vec::new();
    for p in &watched {
        before.push(oa.ok("GET", p, &audrey, None).await);
    }
    crate::support::terminate(orch_a);
    let mut orch_a = orchestrator(ports[3], "orchestrator-a.key", ports[0]);
    wait_healthy(&oa, &mut orch_a).await;
    assert_eq!(
        crate::support::counter(
            &oa,
            "goose_read_model_snapshots_restored_total",
            "view=\"orchestrator\""
        )
        .await,
        1.0
    );
    for (p, b) in watched.iter().zip(&before) {
        assert_eq!(&oa.ok("GET", p, &audrey, None).await, b, "{p}");
    }

    // A subscriber that is not ours (Python, nats-py) consumes every event of these
    // promotions and checks each against the AsyncAPI document the services serve.
    let (status, doc) = oa.call("GET", "/asyncapi.json", None, None).await;
    assert_eq!(status, 200, "{doc}");
    let doc_file = d.join("asyncapi.json");
    std::fs::write(&doc_file, doc.to_string()).unwrap();
    let python = goose_testkit::python_env(&["nats-py>=2.6,<3", "jsonschema>=4.18,<5"]).unwrap();
    let out = Command::new(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/subscriber.py"))
        .args([&env.nats, &env.stream, &env.prefix])
        .arg(&doc_file)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(report.trim()).unwrap();
    for ty in [
        "UserCreated",
        "ServiceOnboarded",
        "EvidenceAccepted",
        "ApprovalRequested",
        "ApprovalGranted",
        "PromotionRequested",
        "GateEvaluated",
        "TargetTransitioned",
        "LockAcquired",
        "PackageCreated",
        "PackageManifestSigned",
        "VersionDemoted",
        "BlobDownloaded",
    ] {
        assert!(report["types"][ty].as_u64() > Some(0), "{ty}: {report}");
    }

    // Every checkpoint the evidence service signed is also kept in the WORM bucket.
    use object_store::{ObjectStore as _, ObjectStoreExt as _};
    let bucket = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name("goose-e2e")
        .with_region("us-east-1")
        .with_endpoint(s3.endpoint())
        .with_allow_http(true)
        .with_access_key_id(key_id)
        .with_secret_access_key(secret)
        .build()
        .unwrap();
    let kept: Vec<_> =
        futures::TryStreamExt::try_collect::<Vec<_>>(bucket.list(Some(&"checkpoints".into())))
            .await
            .unwrap();
    assert!(!kept.is_empty(), "checkpoints in the bucket");
    let bundles: Vec<_> = futures::TryStreamExt::try_collect::<Vec<_>>(
        bucket.list(Some(&format!("bundles/{pkg_id}").as_str().into())),
    )
    .await
    .unwrap();
    assert_eq!(bundles.len(), 1, "one bundle per signed manifest");
    let vkey = goose_ledger::Vkey::parse(&log_vkey).unwrap();
    for o in &kept {
        let note = bucket
            .get(&o.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        goose_ledger::SignedCheckpoint::verify(std::str::from_utf8(&note).unwrap(), &vkey)
            .unwrap_or_else(|e| panic!("{}: {e}", o.location));
    }

    // The whole history verifies with every service's key.
    drop((rbac, registry, evidence, orch_a));
    verify_chain(&db.url, &d.join("keyring"), &log_vkey);
}
