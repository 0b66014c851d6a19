//! The sla chain across processes, as it runs in production: rbac, registry, evidence, the
//! orchestrator and sla as five processes over one PostgreSQL and one nats-server; a real
//! Prometheus scrapes service-a (one request in two failing) and remote-writes to goose-sla.
//! The violation is recorded, a critical `sla_breach` incident opens, the orchestrator demotes
//! service-a, service-b's promotion is blocked naming the incident; once it is resolved and
//! service-a promoted again, service-b goes through — and an auditor's compliance report shows
//! all of it, checked offline with proofs by `goosectl report verify`.

use crate::support::{binary, spawn, token, user_with_token, wait_healthy, Env, Http};
use axum::routing::get;
use goose_testkit::{eventually, Prometheus};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::BREACH_POLICY as POLICY;

fn key(dir: &Path, file: &str, name: &str) -> String {
    goose_ledger::NoteKey::load_or_generate(&dir.join(file), name)
        .unwrap()
        .vkey()
}

/// service-a as Prometheus sees it: each scrape, 50 more good and 50 more failed requests,
/// all within 100 ms.
async fn failing_target() -> u16 {
    let scrapes = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let n = scrapes.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                format!(
                    "# TYPE http_requests_total counter\n\
                     http_requests_total{{service=\"service-a\",code=\"200\"}} {ok}\n\
                     http_requests_total{{service=\"service-a\",code=\"503\"}} {ok}\n\
                     # TYPE http_request_duration_seconds histogram\n\
                     http_request_duration_seconds_bucket{{service=\"service-a\",le=\"0.1\"}} {all}\n\
                     http_request_duration_seconds_bucket{{service=\"service-a\",le=\"+Inf\"}} {all}\n\
                     http_request_duration_seconds_sum{{service=\"service-a\"}} {sum}\n\
                     http_request_duration_seconds_count{{service=\"service-a\"}} {all}\n",
                    ok = 50 * n,
                    all = 100 * n,
                    sum = 5 * n,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// Requests a promotion of `service@version` and waits for it to end.
async fn promote(o: &Http, token: &str, service: &str, version: &str) -> Value {
    let (s, v) = o
        .call(
            "POST",
            "/v1/promotions",
            Some(token),
            Some(&json!({"service": service, "version": version, "reason": "release"})),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(60), "the promotion ends", || async {
        let p = o
            .ok("GET", &format!("/v1/promotions/{id}"), token, None)
            .await;
        (!p["outcome"].is_null()).then_some(p)
    })
    .await
    .unwrap()
}

async fn compliance_of(o: &Http, token: &str, service: &str) -> String {
    let all = o
        .ok(
            "GET",
            &format!("/v1/compliance?service={service}"),
            token,
            None,
        )
        .await;
    all.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_to_report_across_processes() {
    let started = time::OffsetDateTime::now_utc();
    let db = goose_testkit::postgres().await.unwrap();
    let nats = goose_testkit::nats().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let env = Env {
        db: db.url.clone(),
        nats: nats.url.clone(),
        stream: nats.stream.clone(),
        prefix: nats.subject_prefix.clone(),
        dir: d.to_owned(),
        vars: vec![],
    };
    let token_vkey = key(d, "tokens.key", "e2e-tokens");
    let log_vkey = key(d, "log.key", "e2e.test/ledger");
    let mut ring = String::new();
    for name in [
        "goose-rbac",
        "goose-registry",
        "goose-evidence",
        "goose-orchestrator",
        "goose-sla",
    ] {
        ring.push_str(&key(d, &format!("{name}.key"), name));
        ring.push('\n');
    }
    std::fs::write(d.join("keyring"), &ring).unwrap();
    std::fs::write(d.join("policy.yaml"), POLICY).unwrap();
    let admin_key_file = d.join("admin.api-key");
    let ports: Vec<u16> = (0..5)
        .map(|_| goose_testkit::free_port().unwrap())
        .collect();
    let tok = format!("--token-vkey={token_vkey}");
    let trust = [
        format!("--keyring=@{}", d.join("keyring").display()),
        format!("--log-vkey={log_vkey}"),
    ];
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
            format!("--log-key-file={}", d.join("log.key").display()),
            "--checkpoint-interval=1".into(),
        ],
    );
    let mut orchestrator = spawn(
        &env,
        "goose-orchestrator",
        ports[3],
        &[
            tok.clone(),
            format!("--rbac-url=http://127.0.0.1:{}", ports[0]),
            format!("--policy={}", d.join("policy.yaml").display()),
            trust[0].clone(),
            trust[1].clone(),
        ],
    );
    let sla_args = [
        tok.clone(),
        "--evaluate-every=1".into(),
        trust[0].clone(),
        trust[1].clone(),
        format!("--snapshot-dir={}", d.join("sla-snapshots").display()),
    ];
    let mut sla = spawn(&env, "goose-sla", ports[4], &sla_args);
    let http = |p: u16| Http::new(format!("http://127.0.0.1:{p}"));
    let (r, g, e, o, s) = (
        http(ports[0]),
        http(ports[1]),
        http(ports[2]),
        http(ports[3]),
        http(ports[4]),
    );
    wait_healthy(&r, &mut rbac).await;
    wait_healthy(&g, &mut registry).await;
    wait_healthy(&e, &mut evidence).await;
    wait_healthy(&o, &mut orchestrator).await;
    wait_healthy(&s, &mut sla).await;
    let root = token(
        &r,
        "root",
        &std::fs::read_to_string(&admin_key_file).unwrap(),
    )
    .await;
    let olga = user_with_token(&r, &root, "olga", &["operator"]).await;
    let sam = user_with_token(&r, &root, "sam", &["operator"]).await;
    let audra = user_with_token(&r, &root, "audra", &["auditor"]).await;

    // Onboard a and b (b needs a); SLOs for a. Roles and the catalog reach every process
    // through the bus.
    let example = |f: &str| {
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../deploy/examples/{f}")))
            .unwrap()
    };
    for f in ["services/service-a.yaml", "services/service-b.yaml"] {
        eventually(Duration::from_secs(20), "registry onboards", || async {
            let (st, _) = g
                .raw(
                    "POST",
                    "/v1/services",
                    &olga,
                    "application/yaml",
                    example(f),
                )
                .await;
            (st == 200 || st == 201).then_some(())
        })
        .await
        .unwrap();
    }
    eventually(Duration::from_secs(20), "sla takes the SLOs", || async {
        let (st, _) = s
            .raw(
                "PUT",
                "/v1/slos",
                &olga,
                "application/yaml",
                example("slos/service-a.yaml"),
            )
            .await;
        (st == 200).then_some(())
    })
    .await
    .unwrap();
    let p = eventually(Duration::from_secs(30), "service-a promoted", || async {
        let p = promote(&o, &olga, "service-a", "1.0.0").await;
        (p["outcome"] == "succeeded").then_some(p)
    })
    .await
    .unwrap();
    assert_eq!(p["outcome"], "succeeded", "{p}");
    assert!(compliance_of(&o, &olga, "service-a")
        .await
        .contains("\"compliant\""));

    // Prometheus scrapes service-a failing half its requests and remote-writes to goose-sla.
    let target = failing_target().await;
    let sla_url = s.base.clone();
    let prom = Prometheus::start_with(|pdir| {
        let creds = pdir.join("goose-token");
        std::fs::write(&creds, &olga)?;
        Ok(format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             scrape_configs:\n  - job_name: service-a\n    static_configs: [{{targets: ['127.0.0.1:{target}']}}]\n\
             remote_write:\n  - url: {sla_url}/api/v1/write\n    authorization: {{credentials_file: {creds}}}\n\
             \x20   queue_config: {{batch_send_deadline: 500ms, min_backoff: 100ms, max_backoff: 1s}}\n",
            creds = creds.display()
        ))
    })
    .unwrap();
    let incident = eventually(
        Duration::from_secs(90),
        "a critical sla_breach incident",
        || async {
            let v = s.ok("GET", "/v1/incidents?status=open", &olga, None).await;
            v.as_array()?
                .iter()
                .find(|i| i["type"] == "sla_breach" && i["severity"] == "critical")
                .cloned()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\nprometheus log:\n{}", prom.log()));
    let id = incident["id"].as_str().unwrap().to_owned();
    assert!(
        !incident["caused_by"].as_array().unwrap().is_empty(),
        "{incident}"
    );

    // The orchestrator (another process) demotes service-a, citing the incident.
    eventually(Duration::from_secs(30), "service-a demoted", || async {
        let c = compliance_of(&o, &olga, "service-a").await;
        (c.contains("sandbox") && !c.contains("\"compliant\"")).then_some(())
    })
    .await
    .unwrap();
    let p = promote(&o, &sam, "service-b", "1.0.0").await;
    assert_eq!(p["outcome"], "failed", "{p}");
    assert!(
        p.to_string().contains(&id),
        "blocked naming the incident: {p}"
    );

    // The team fixes it: Prometheus stops, the incident is resolved, service-a promoted again.
    drop(prom);
    s.ok(
        "POST",
        &format!("/v1/incidents/{id}/acknowledge"),
        &olga,
        None,
    )
    .await;
    s.ok(
        "POST",
        &format!("/v1/incidents/{id}/resolve"),
        &olga,
        Some(&json!({"note": "rolled back"})),
    )
    .await;
    let p = promote(&o, &olga, "service-a", "1.0.1").await;
    assert_eq!(p["outcome"], "succeeded", "{p}");
    let p = eventually(Duration::from_secs(30), "service-b promoted", || async {
        let p = promote(&o, &sam, "service-b", "1.0.0").await;
        (p["outcome"] == "succeeded").then_some(p)
    })
    .await
    .unwrap();
    assert_eq!(p["outcome"], "succeeded", "{p}");

    // sla restarts from its snapshot (SIGTERM, as Kubernetes stops it): its incidents read
    // the same, and the report below is made from the restored view.
    let incidents = s.ok("GET", "/v1/incidents", &olga, None).await;
    crate::support::terminate(sla);
    let mut sla = spawn(&env, "goose-sla", ports[4], &sla_args);
    wait_healthy(&s, &mut sla).await;
    assert_eq!(
        crate::support::counter(
            &s,
            "goose_read_model_snapshots_restored_total",
            "view=\"sla\""
        )
        .await,
        1.0
    );
    assert_eq!(s.ok("GET", "/v1/incidents", &olga, None).await, incidents);

    // The auditor's report, as a bundle with proofs, checked offline.
    let out = d.join("report");
    let from = (started - time::Duration::minutes(5))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let goosectl = |args: &[&str]| {
        let o = std::process::Command::new(binary("goosectl"))
            .env("GOOSE_TOKEN", &audra)
            .env("GOOSE_SLA_URL", &s.base)
            .env("GOOSE_EVIDENCE_URL", &e.base)
            .args(args)
            .output()
            .unwrap();
        (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    };
    let (ok, said) = goosectl(&["report", "--from", &from, "--out", out.to_str().unwrap()]);
    assert!(ok, "{said}");
    let sla_vkey = goose_ledger::NoteKey::load(&d.join("goose-sla.key"))
        .unwrap()
        .vkey();
    let (ok, said) = goosectl(&[
        "report",
        "verify",
        out.to_str().unwrap(),
        "--log-key",
        &log_vkey,
        "--signer-key",
        &sla_vkey,
    ]);
    assert!(ok, "{said}");
    assert!(said.contains("OK: compliance report"), "{said}");
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let p = &report["promotions"];
    assert_eq!(
        (p["requested"].as_u64(), p["failed"].as_u64()),
        (Some(4), Some(1)),
        "{p}"
    );
    assert_eq!(p["succeeded"], 3, "{p}");
    assert!(
        !report["violations"].as_array().unwrap().is_empty(),
        "{report}"
    );
    assert_eq!(report["demotions"][0]["service"], "service-a", "{report}");
    let breach = report["incidents"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(breach["status"], "resolved", "{breach}");
    assert!(
        breach["time_to_acknowledge_seconds"].as_f64().is_some(),
        "{breach}"
    );
    let availability = report["sla"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["slo"] == "service-a-availability")
        .cloned()
        .unwrap();
    assert!(
        availability["errors"].as_u64().unwrap() > 0,
        "{availability}"
    );
    assert_eq!(
        availability["objectives"][0]["met"], false,
        "{availability}"
    );
    // The sla process verified the chain it reports on.
    assert!(report["chain"]["verify_failure"].is_null(), "{report}");
    assert!(report["chain"]["checkpoint"].as_str().is_some(), "{report}");
}
