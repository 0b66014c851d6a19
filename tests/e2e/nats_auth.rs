//! The production NATS authorization (`goosectl nats-config`) on a real nats-server with auth
//! on: rbac and registry run as their own NATS users and work end to end (each one's outbox
//! relay publishes its own events; each reads everyone's); then, holding a service's NATS
//! password, an attacker tries to publish another service's event, to delete or purge the
//! stream, to remove a message — refused, and nothing of it reaches the stream. Then sla, as
//! its own user, records raw samples an instrumented service publishes as the `telemetry`
//! user (which can publish nothing else), and counts a burst of 403s the registry reports.

use crate::support::{spawn, token, user_with_token, wait_healthy, Env, Http};
use async_nats::jetstream;
use futures::StreamExt as _;
use goose_bus::BusConfig;
use goose_platform::nats_auth;
use serde_json::json;
use std::time::Duration;

fn password(user: &str) -> String {
    format!("pw-{user}-{}", uuid::Uuid::new_v4().simple())
}

async fn connect(url: &str, user: &str, password: &str) -> jetstream::Context {
    let client = async_nats::ConnectOptions::with_user_and_password(user.into(), password.into())
        .connect(url)
        .await
        .unwrap();
    let mut js = jetstream::new(client);
    js.set_timeout(Duration::from_secs(2));
    js
}

/// Every message on the stream (subject, body), read as the `reader` user.
async fn messages(url: &str, reader_pw: &str, stream: &str) -> Vec<(String, Vec<u8>)> {
    let js = connect(url, nats_auth::READER, reader_pw).await;
    let s = js.get_stream(stream).await.unwrap();
    let consumer = s
        .create_consumer(jetstream::consumer::pull::Config {
            ack_policy: jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut batch = consumer
        .fetch()
        .max_messages(10_000)
        .expires(Duration::from_secs(1))
        .messages()
        .await
        .unwrap();
    while let Some(m) = batch.next().await {
        let m = m.unwrap();
        out.push((m.subject.to_string(), m.payload.to_vec()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_service_publishes_only_its_own_events() {
    let db = goose_testkit::postgres().await.unwrap();
    let names = goose_testkit::nats().unwrap();
    let bus = BusConfig {
        stream: names.stream.clone(),
        subject_prefix: names.subject_prefix.clone(),
        ..Default::default()
    };
    // The shipped file is what the generator prints for the defaults.
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/nats/goose-authorization.conf"
    ))
    .unwrap();
    assert_eq!(
        shipped,
        nats_auth::authorization(&BusConfig::default()),
        "deploy/nats/goose-authorization.conf is stale: run `goosectl nats-config > deploy/nats/goose-authorization.conf`"
    );

    let mut users: Vec<String> = nats_auth::users(&bus).into_keys().collect();
    users.push(nats_auth::TELEMETRY.to_owned());
    let passwords: Vec<(String, String)> = users.iter().map(|u| (u.clone(), password(u))).collect();
    let pw = |u: &str| {
        passwords
            .iter()
            .find(|(n, _)| n == u)
            .map(|(_, p)| p.clone())
            .unwrap()
    };
    let server = goose_testkit::NatsServer::start_with_config(
        &nats_auth::authorization(&bus),
        passwords
            .iter()
            .map(|(u, p)| (nats_auth::password_variable(u), p.clone()))
            .collect(),
    )
    .unwrap();
    let url = server.url();

    let dir = tempfile::tempdir().unwrap();
    let env = Env {
        db: db.url.clone(),
        nats: url.clone(),
        stream: bus.stream.clone(),
        prefix: bus.subject_prefix.clone(),
        dir: dir.path().to_owned(),
        vars: vec![],
    };
    let as_user = |user: &str| -> Vec<String> {
        let file = dir.path().join(format!("{user}.nats-password"));
        std::fs::write(&file, pw(user)).unwrap();
        vec![
            format!("--nats-user={user}"),
            format!("--nats-password-file={}", file.display()),
        ]
    };
    let token_key =
        goose_ledger::NoteKey::load_or_generate(&dir.path().join("tokens.key"), "e2e-tokens")
            .unwrap();
    let admin_key_file = dir.path().join("admin.api-key");
    let (pr, pg) = (
        goose_testkit::free_port().unwrap(),
        goose_testkit::free_port().unwrap(),
    );
    let mut rbac_args = as_user("rbac");
    rbac_args.extend([
        format!(
            "--token-key-file={}",
            dir.path().join("tokens.key").display()
        ),
        "--bootstrap-admin=root".into(),
        format!("--bootstrap-key-file={}", admin_key_file.display()),
    ]);
    let mut rbac = spawn(&env, "goose-rbac", pr, &rbac_args);
    let mut registry_args = as_user("registry");
    registry_args.push(format!("--token-vkey={}", token_key.vkey()));
    let mut registry = spawn(&env, "goose-registry", pg, &registry_args);
    let (r, g) = (
        Http::new(format!("http://127.0.0.1:{pr}")),
        Http::new(format!("http://127.0.0.1:{pg}")),
    );
    wait_healthy(&r, &mut rbac).await;
    wait_healthy(&g, &mut registry).await;

    // The system works: olga's role (rbac's event) reaches the registry over NATS, and her
    // onboarding (the registry's event) is published by the registry's relay.
    let root = token(
        &r,
        "root",
        &std::fs::read_to_string(&admin_key_file).unwrap(),
    )
    .await;
    let olga = user_with_token(&r, &root, "olga", &["operator"]).await;
    let spec = json!([{"service": {"name": "service-a", "spec": {"api_version": "v1", "compliance_mode": "sandbox"}}}]);
    goose_testkit::eventually(Duration::from_secs(20), "registry knows olga", || async {
        let (s, _) = g
            .call("POST", "/v1/services", Some(&olga), Some(&spec))
            .await;
        (s == 200 || s == 201).then_some(())
    })
    .await
    .unwrap();
    let prefix = &bus.subject_prefix;
    let seen =
        goose_testkit::eventually(Duration::from_secs(20), "both relays published", || async {
            let m = messages(&url, &pw(nats_auth::READER), &bus.stream).await;
            (m.iter()
                .any(|(x, _)| x.starts_with(&format!("{prefix}.user.")))
                && m.iter()
                    .any(|(x, _)| x.starts_with(&format!("{prefix}.catalog."))))
            .then_some(m)
        })
        .await
        .unwrap();

    // Attacks with a service's NATS password.
    let rbac_nats = connect(&url, "rbac", &pw("rbac")).await;
    let forged = format!("{prefix}.promotion.PromotionCompleted");
    let publish = rbac_nats
        .publish(forged.clone(), bytes::Bytes::from_static(b"{}"))
        .await;
    let acked = match publish {
        Ok(ack) => ack.await.is_ok(),
        Err(_) => false,
    };
    assert!(!acked, "rbac's user published a promotion event");
    assert!(
        rbac_nats.delete_stream(&bus.stream).await.is_err(),
        "rbac's user deleted the stream"
    );
    let stream = rbac_nats.get_stream(&bus.stream).await.unwrap();
    assert!(
        stream.purge().await.is_err(),
        "rbac's user purged the stream"
    );
    assert!(
        stream.delete_message(1).await.is_err(),
        "rbac's user deleted a message"
    );
    // The reader publishes nothing at all.
    let reader = connect(&url, nats_auth::READER, &pw(nats_auth::READER)).await;
    let by_reader = reader
        .publish(
            format!("{prefix}.user.UserCreated"),
            bytes::Bytes::from_static(b"{}"),
        )
        .await;
    let acked = match by_reader {
        Ok(ack) => ack.await.is_ok(),
        Err(_) => false,
    };
    assert!(!acked, "the reader published an event");
    // A wrong password does not get in.
    let wrong = async_nats::ConnectOptions::with_user_and_password("rbac".into(), "guess".into())
        .connect(&url)
        .await;
    assert!(wrong.is_err(), "a wrong password connected");

    // Nothing of it is on the stream (every real event is a canonical record, never `{}`),
    // and nothing was removed.
    let after = messages(&url, &pw(nats_auth::READER), &bus.stream).await;
    assert!(
        !after.iter().any(|(s, body)| s == &forged || body == b"{}"),
        "a forged message is on the stream"
    );
    assert!(after.len() >= seen.len() && after[0] == seen[0]);

    // Telemetry: an instrumented service publishes raw samples as the `telemetry` user; sla,
    // as its own user, records them as exact minute summaries.
    let ps = goose_testkit::free_port().unwrap();
    let mut sla_args = as_user("sla");
    sla_args.extend([
        format!("--token-vkey={}", token_key.vkey()),
        "--telemetry-flush-every=1".into(),
        "--telemetry-grace=0".into(),
    ]);
    let mut sla = spawn(&env, "goose-sla", ps, &sla_args);
    let sla_http = Http::new(format!("http://127.0.0.1:{ps}"));
    wait_healthy(&sla_http, &mut sla).await;
    let slos = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/examples/slos/service-a.yaml"
    ))
    .unwrap();
    goose_testkit::eventually(Duration::from_secs(20), "sla takes the SLOs", || async {
        let (s, _) = sla_http
            .raw("PUT", "/v1/slos", &olga, "application/yaml", slos.clone())
            .await;
        (s == 200).then_some(())
    })
    .await
    .unwrap();
    let publisher = async_nats::ConnectOptions::with_user_and_password(
        nats_auth::TELEMETRY.into(),
        pw(nats_auth::TELEMETRY),
    )
    .connect(&url)
    .await
    .unwrap();
    // Ten minutes ago (a closed minute): 1,000 requests at 1..=1000 ms, every 100th failing.
    let at = (time::OffsetDateTime::now_utc().unix_timestamp() - 600) * 1000;
    let samples: Vec<(i64, u64, u16)> = (1..=1000u64)
        .map(|i| {
            (
                at + i as i64,
                i * 1000,
                if i % 100 == 0 { 503 } else { 200 },
            )
        })
        .collect();
    for chunk in samples.chunks(250) {
        publisher
            .publish(
                "goose.telemetry.service-a",
                serde_json::to_vec(chunk).unwrap().into(),
            )
            .await
            .unwrap();
    }
    // Not valid telemetry, and a service nobody onboarded: dropped, counted.
    publisher
        .publish("goose.telemetry.service-a", "nonsense".into())
        .await
        .unwrap();
    publisher
        .publish("goose.telemetry.ghost", "[[1, 1, 200]]".into())
        .await
        .unwrap();
    publisher.flush().await.unwrap();
    let st = goose_testkit::eventually(Duration::from_secs(30), "telemetry recorded", || async {
        let (_, st) = sla_http
            .call(
                "GET",
                "/v1/slos/service-a-latency/status",
                Some(&olga),
                None,
            )
            .await;
        (st["requests"] == 1000).then_some(st)
    })
    .await
    .unwrap();
    assert_eq!(st["errors"], 10, "{st}");
    assert_eq!(st["approximate_latency"], false, "{st}");
    // Exact: the 950th of 1..=1000 ms is 950 ms (within HdrHistogram's 0.1 %).
    let p95 = st["p95_ms"].as_f64().unwrap();
    assert!((p95 - 950.0).abs() <= 1.0, "{st}");
    let metrics = reqwest::get(format!("http://127.0.0.1:{ps}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for reason in ["malformed", "unknown_service"] {
        assert!(
            metrics.contains(&format!(
                "goose_sla_telemetry_dropped_messages_total{{reason=\"{reason}\"}} 1"
            )),
            "{reason}: {metrics}"
        );
    }
    // The telemetry user publishes nothing else: an event subject is refused.
    let js = connect(&url, nats_auth::TELEMETRY, &pw(nats_auth::TELEMETRY)).await;
    let by_telemetry = js
        .publish(format!("{prefix}.incident.IncidentResolved"), "{}".into())
        .await;
    let acked = match by_telemetry {
        Ok(ack) => ack.await.is_ok(),
        Err(_) => false,
    };
    assert!(!acked, "the telemetry user published an event");

    // 403s across processes: ana, an analyst, tries to onboard a service at the registry
    // twenty times; the registry reports each refusal on its own NATS subject, and sla (as
    // its own user) counts the burst and opens an `unauthorized_access` incident.
    let ana = user_with_token(&r, &root, "ana", &["analyst"]).await;
    goose_testkit::eventually(Duration::from_secs(20), "registry knows ana", || async {
        let (s, _) = g
            .call("POST", "/v1/services", Some(&ana), Some(&spec))
            .await;
        (s == 403).then_some(())
    })
    .await
    .unwrap();
    for _ in 0..19 {
        let (s, v) = g
            .call("POST", "/v1/services", Some(&ana), Some(&spec))
            .await;
        assert_eq!(s, 403, "{v}");
    }
    let burst = goose_testkit::eventually(Duration::from_secs(30), "a burst incident", || async {
        let (_, v) = sla_http
            .call("GET", "/v1/incidents", Some(&olga), None)
            .await;
        v.as_array()?
            .iter()
            .find(|i| {
                i["cause"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("access:ana:"))
            })
            .cloned()
    })
    .await
    .unwrap();
    assert_eq!(burst["type"], "unauthorized_access", "{burst}");
    assert_eq!(burst["service"], "registry", "{burst}");
    // Holding the registry's NATS password, an attacker cannot report refusals as another
    // service (the server refuses the subject): twenty forged notices open nothing.
    let forger =
        async_nats::ConnectOptions::with_user_and_password("registry".into(), pw("registry"))
            .connect(&url)
            .await
            .unwrap();
    let forged_notice = json!({"service": "rbac", "user": "victim", "at_ms": 0, "request": "GET /v1/users", "reason": "forged"});
    for k in 0..20 {
        let mut n = forged_notice.clone();
        n["at_ms"] = json!(k);
        let _ = forger
            .publish(
                "goose.refusals.rbac",
                serde_json::to_vec(&n).unwrap().into(),
            )
            .await;
    }
    let _ = forger.flush().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, all) = sla_http
        .call("GET", "/v1/incidents", Some(&olga), None)
        .await;
    assert!(
        !all.to_string().contains("access:victim:"),
        "a forged refusal burst opened an incident: {all}"
    );
    assert!(
        burst["title"]
            .as_str()
            .unwrap()
            .starts_with("ana was refused 20 requests"),
        "{burst}"
    );
}
