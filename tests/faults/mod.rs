//! The fault harness: the services as separate processes on a PostgreSQL and a nats-server of
//! the harness's own, an operator and an approver at work (evidence uploads, promotions on
//! both orchestrator replicas, approvals), while the harness kills (SIGKILL) and freezes
//! (SIGSTOP/SIGCONT) nats-server and each service (sla with its measurements among them), stops PostgreSQL (fast and immediate) and
//! kills the replica leading the orchestrator's outbox relay. Afterwards: every acknowledged
//! command has its events, no event id twice (ledger or bus), the bus carries exactly the
//! ledger's events in each writer's order, every promotion ended, every read model equals one
//! rebuilt from the ledger by a fresh process, `goosectl verify` passes, no process crashed —
//! and the checkers are shown to fail on damaged copies and on a really damaged stream.
//!
//! Bounded: `GOOSE_FAULT_SECONDS` (default 60) of faults, continued until the minimum counts
//! (30 kills, 5 PostgreSQL stops, 3 relay-leader kills, 3 nats-server kills, 5 freezes) are
//! reached. The schedule is drawn from a seed, printed; `GOOSE_FAULT_SEED=<n>` replays it.

mod checks;
mod system;
mod workload;

use crate::support::verify_chain;
use async_nats::jetstream;
use checks::{BusMessage, LedgerEvent};
use futures::StreamExt as _;
use goose_ledger::postgres::PgBackend;
use goose_ledger::Backend as _;
use goose_testkit::PgStop;
use rand::{Rng as _, SeedableRng as _};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use system::{System, PREFIX, STREAM};
use workload::Workload;

const SERVICES: [&str; 6] = [
    "rbac",
    "registry",
    "evidence",
    "orchestrator-a",
    "orchestrator-b",
    "sla",
];

async fn ledger_events(db_url: &str) -> Vec<LedgerEvent> {
    let backend = PgBackend::connect(db_url).await.unwrap();
    let mut out = Vec::new();
    loop {
        let rows = backend.read_rows(out.len() as u64, 1000).await.unwrap();
        if rows.is_empty() {
            return out;
        }
        for row in rows {
            let e = row.decode().unwrap();
            out.push(LedgerEvent {
                position: e.position,
                event_id: e.event_id.to_string(),
                stream: e.stream.to_string(),
                event_type: e.event_type.clone(),
                payload: String::from_utf8_lossy(&e.payload).into_owned(),
            });
        }
    }
}

async fn bus_messages(nats_url: &str) -> Vec<BusMessage> {
    let client = async_nats::connect(nats_url).await.unwrap();
    let js = jetstream::new(client);
    let stream = js.get_stream(STREAM).await.unwrap();
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::Config {
            ack_policy: jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut out = Vec::new();
    loop {
        let mut batch = consumer
            .fetch()
            .max_messages(1000)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .unwrap();
        let before = out.len();
        while let Some(m) = batch.next().await {
            let m = m.unwrap();
            let header = |name: &str| {
                m.headers
                    .as_ref()
                    .and_then(|h| h.get(name))
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default()
            };
            out.push(BusMessage {
                subject: m.subject.to_string(),
                event_id: header("ce-id"),
                position: header(goose_bus::jetstream::POSITION_HEADER)
                    .parse()
                    .unwrap_or(u64::MAX),
            });
        }
        if out.len() == before {
            return out;
        }
    }
}

/// Compares what the live (faulted) process answers with what a fresh process, rebuilt from
/// the ledger, answers, until they agree (the live one may still be catching up).
async fn same_as_replay(system: &System, live: &str, paths: &[String], token: &str) {
    let (fresh, mut child) = system.fresh_replica(live).await;
    let live_http = system.http(live);
    let client = workload::Client::new(&live_http.base);
    let replay = workload::Client::new(&fresh.base);
    for path in paths {
        let last = parking_lot::Mutex::new((None, None));
        let agreed =
            goose_testkit::eventually(Duration::from_secs(30), "read model = replay", || async {
                let a = client
                    .call(reqwest::Method::GET, path, token, workload::Body::None)
                    .await
                    .ok();
                let b = replay
                    .call(reqwest::Method::GET, path, token, workload::Body::None)
                    .await
                    .ok();
                let same = matches!((&a, &b), (Some((200, x)), Some((200, y))) if x == y);
                *last.lock() = (a, b);
                same.then_some(())
            })
            .await;
        assert!(
            agreed.is_ok(),
            "{live} {path}: the live read model differs from a replay of the ledger:\nlive:   {:?}\nreplay: {:?}",
            last.lock().0,
            last.lock().1
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    KillService,
    KillNats,
    Freeze,
    KillRelayLeader,
    StopPostgres,
    Rest,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_system_survives_kills_freezes_and_database_restarts() {
    let seed: u64 = std::env::var("GOOSE_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let seconds: u64 = std::env::var("GOOSE_FAULT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    eprintln!("fault harness: seed {seed} (GOOSE_FAULT_SEED={seed} replays this schedule), {seconds} s of faults");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let system = System::start().await;
    let work = Workload::prepare(&system).await;
    let mut workers: Vec<_> = (0..workload::SERVICES)
        .map(|i| tokio::spawn(work.clone().promote_releases(i)))
        .collect();
    workers.push(tokio::spawn(work.clone().measure()));
    let supervising = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let supervisor = tokio::spawn({
        let (system, on) = (system.clone(), supervising.clone());
        async move {
            while on.load(Ordering::Relaxed) {
                system.supervise();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });

    // Faults.
    let started = Instant::now();
    let mut pg_immediate = false;
    loop {
        let elapsed = started.elapsed();
        let t = system.tally.lock().clone();
        let nats_kills = t.kills.get("nats-server").copied().unwrap_or(0);
        let freezes: u32 = t.pauses.values().sum();
        let owed = [
            (t.total_kills() < 30, Fault::KillService),
            (t.pg_stops.len() < 5, Fault::StopPostgres),
            (t.relay_leader_kills < 3, Fault::KillRelayLeader),
            (nats_kills < 3, Fault::KillNats),
            (freezes < 5, Fault::Freeze),
        ];
        let due = elapsed >= Duration::from_secs(seconds);
        if due && owed.iter().all(|(o, _)| !o) {
            break;
        }
        assert!(
            elapsed < Duration::from_secs(seconds * 4),
            "the minimum faults were not reached in time: {t:?}"
        );
        let fault = match (due, owed.iter().find(|(o, _)| *o)) {
            (true, Some((_, f))) => *f,
            _ => match rng.gen_range(0..100) {
                0..=39 => Fault::KillService,
                40..=49 => Fault::KillNats,
                50..=61 => Fault::Freeze,
                62..=71 => Fault::KillRelayLeader,
                72..=84 => Fault::StopPostgres,
                _ => Fault::Rest,
            },
        };
        match fault {
            Fault::KillService => {
                system.kill(SERVICES[rng.gen_range(0..SERVICES.len())]);
                tokio::time::sleep(Duration::from_millis(rng.gen_range(300..1500))).await;
            }
            Fault::KillNats => {
                system.kill_nats();
                tokio::time::sleep(Duration::from_millis(rng.gen_range(300..1000))).await;
                system.start_nats();
            }
            Fault::Freeze => {
                let hold = Duration::from_millis(rng.gen_range(500..2500));
                if rng.gen_bool(0.2) {
                    system.freeze_nats(true);
                    tokio::time::sleep(hold).await;
                    system.freeze_nats(false);
                } else {
                    let name = SERVICES[rng.gen_range(0..SERVICES.len())];
                    system.freeze(name, true);
                    tokio::time::sleep(hold).await;
                    system.freeze(name, false);
                }
            }
            Fault::KillRelayLeader => {
                if let Some(leader) = system.relay_leader().await {
                    system.kill(leader);
                    system.tally.lock().relay_leader_kills += 1;
                }
                tokio::time::sleep(Duration::from_millis(rng.gen_range(300..1000))).await;
            }
            Fault::StopPostgres => {
                pg_immediate = !pg_immediate;
                system.stop_pg(if pg_immediate {
                    PgStop::Immediate
                } else {
                    PgStop::Fast
                });
                tokio::time::sleep(Duration::from_millis(rng.gen_range(500..2000))).await;
                system.start_pg();
            }
            Fault::Rest => tokio::time::sleep(Duration::from_millis(1000)).await,
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(200..800))).await;
    }
    let fault_time = started.elapsed();

    // Calm: the users stop, everything comes back.
    work.stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    system.heal().await;
    supervising.store(false, Ordering::Relaxed);
    supervisor.await.unwrap();
    work.stop.store(false, Ordering::Relaxed);

    // Every promotion ends once the approvals still pending are granted.
    let mut ledger = Vec::new();
    for _ in 0..90 {
        work.grant_pending().await;
        ledger = ledger_events(&system.db_url).await;
        if checks::unfinished(&ledger).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    // The relays publish what is left.
    let mut bus = Vec::new();
    for _ in 0..60 {
        ledger = ledger_events(&system.db_url).await;
        bus = bus_messages(&system.nats_url).await;
        if checks::bus_differs(&ledger, &bus).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let acks = work.acks.lock().clone();
    let problems = checks::all(&acks, &ledger, &bus, PREFIX);
    let tally = system.tally.lock().clone();
    let promotions = work.promotions.lock().len();
    let c = &work.counts;
    eprintln!(
        "fault harness: seed {seed}; {:.0} s of faults: {} kills {:?}, {} freezes {:?}, PostgreSQL stops {:?}, \
         relay-leader kills {}, restarts {}, start failures while a dependency was down {}; \
         commands: {} tried, {} acknowledged ({} promotions), {} transport errors, {} 5xx; \
         ledger {} events, bus {} messages; problems: {}",
        fault_time.as_secs_f64(),
        tally.total_kills(),
        tally.kills,
        tally.pauses.values().sum::<u32>(),
        tally.pauses,
        tally.pg_stops,
        tally.relay_leader_kills,
        tally.restarts,
        tally.start_failures,
        c.attempts.load(Ordering::Relaxed),
        c.acknowledged.load(Ordering::Relaxed),
        promotions,
        c.transport_errors.load(Ordering::Relaxed),
        c.server_errors.load(Ordering::Relaxed),
        ledger.len(),
        bus.len(),
        problems.len(),
    );
    assert!(problems.is_empty(), "seed {seed}: {problems:#?}");
    assert!(tally.crashes.is_empty(), "seed {seed}: {:?}", tally.crashes);
    assert!(
        promotions >= workload::SERVICES,
        "too little work got through: {promotions} promotions"
    );

    // Read models equal a replay of the ledger by a fresh process.
    let mut evidence_paths = Vec::new();
    for i in 0..workload::SERVICES {
        evidence_paths.push(format!("/v1/evidence?service=svc-{i}&version=1.0.0"));
    }
    let admin = work.admin.clone();
    same_as_replay(
        &system,
        "rbac",
        &["/v1/users".into(), "/v1/approvals".into()],
        &admin,
    )
    .await;
    same_as_replay(
        &system,
        "registry",
        &["/v1/services".into(), "/v1/graph".into()],
        &admin,
    )
    .await;
    same_as_replay(&system, "evidence", &evidence_paths, &admin).await;
    let at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    same_as_replay(
        &system,
        "sla",
        &[
            "/v1/slos".into(),
            "/v1/incidents".into(),
            format!("/v1/slos/{}/status?at={at}", workload::SLO),
        ],
        &admin,
    )
    .await;
    let measured = work.batches.load(Ordering::Relaxed);
    assert!(measured > 0, "no measurement batch got through");
    for o in ["orchestrator-a", "orchestrator-b"] {
        same_as_replay(
            &system,
            o,
            &[
                "/v1/promotions".into(),
                "/v1/compliance".into(),
                "/v1/packages".into(),
            ],
            &admin,
        )
        .await;
    }

    // The chain holds.
    verify_chain(
        &system.db_url,
        &system.dir.path().join("keyring"),
        &system.log_vkey,
    );

    // Canaries: the checkers fail on damaged copies of this run's data...
    let missed = checks::canaries(&acks, &ledger, &bus);
    assert!(missed.is_empty(), "checkers missed: {missed:?}");
    // ...and on the real stream, damaged: a message deleted, an event published twice.
    let js = jetstream::new(async_nats::connect(&system.nats_url).await.unwrap());
    let stream = js.get_stream(STREAM).await.unwrap();
    assert!(stream.delete_message(2).await.unwrap());
    let victim = &ledger[ledger.len() - 1];
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(
        async_nats::header::NATS_MESSAGE_ID,
        uuid::Uuid::new_v4().to_string().as_str(),
    );
    headers.insert("ce-id", victim.event_id.as_str());
    headers.insert(
        goose_bus::jetstream::POSITION_HEADER,
        victim.position.to_string().as_str(),
    );
    let subject = bus
        .iter()
        .find(|m| m.event_id == victim.event_id)
        .map(|m| m.subject.clone())
        .unwrap();
    js.publish_with_headers(subject, headers, bytes::Bytes::new())
        .await
        .unwrap()
        .await
        .unwrap();
    let damaged = bus_messages(&system.nats_url).await;
    assert!(
        !checks::bus_differs(&ledger, &damaged).is_empty(),
        "a deleted bus message went unnoticed"
    );
    assert!(
        !checks::duplicates(damaged.iter().map(|m| m.event_id.as_str())).is_empty(),
        "an event published twice went unnoticed"
    );
}

/// Commit-order visibility at CI size (docs/benchmarks.md has the 16 x 1M run): `loadtest
/// tail`, 16 appenders with ledger handles of their own and a tail that must see every
/// position once, in order, chained.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_appenders_and_a_tail_that_misses_nothing() {
    let db = goose_testkit::postgres().await.unwrap();
    let out = std::process::Command::new(crate::support::binary("loadtest"))
        .args(["tail", "--database-url", &db.url])
        .args([
            "--writers",
            "16",
            "--events-per-writer",
            "2000",
            "--batch",
            "50",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("32000 of 32000 events seen in order, 0 missed, 0 twice"),
        "{text}"
    );
}
