//! Kill and restart the nats-server and the relay while events are being written and
//! published: a follower (what every service view runs on) applies every committed event
//! exactly once, in order.

use crate::support::{self, pg_ledger};
use goose_bus::follow::Follower;
use goose_bus::jetstream::JetStreamBus;
use goose_bus::relay::OutboxRelay;
use goose_bus::Bus;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_event_arrives_exactly_once_through_crashes() {
    const TOTAL_BATCHES: u64 = 60;
    let (ledger, _url) = pg_ledger().await;

    let mut server = goose_testkit::NatsServer::start().unwrap();
    let nats = goose_testkit::nats().unwrap();
    let config = support::test_config(&nats);
    let bus: Arc<dyn Bus> = Arc::new(
        JetStreamBus::connect(&server.url(), config.clone())
            .await
            .unwrap(),
    );

    let start_relay = |ledger, bus| {
        let relay = OutboxRelay::new(ledger, bus, "relay");
        tokio::spawn(relay.run(futures::future::pending()))
    };
    let mut relay = start_relay(ledger.clone(), bus.clone());

    let writer = tokio::spawn({
        let ledger = ledger.clone();
        async move {
            for i in 0..TOTAL_BATCHES {
                support::append(&ledger, "service", &format!("s{}", i % 4), (i / 4) * 5, 5).await;
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        }
    });

    // The follower every service's views run on; a position applied twice or skipped fails.
    let seen: Arc<Mutex<BTreeSet<u64>>> = Arc::default();
    let twice: Arc<Mutex<Vec<u64>>> = Arc::default();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let follower = Follower::start(
        (*ledger).clone(),
        bus.clone(),
        &[],
        Arc::new({
            let (seen, twice) = (seen.clone(), twice.clone());
            move |ev| {
                if !seen.lock().unwrap().insert(ev.position) {
                    twice.lock().unwrap().push(ev.position);
                }
            }
        }),
        async move {
            let _ = stop_rx.await;
        },
    )
    .await
    .unwrap();

    // Crash the relay mid-publishing, then the server, then both again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    relay.abort();
    tokio::time::sleep(Duration::from_millis(100)).await;
    relay = start_relay(ledger.clone(), bus.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.kill().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.restart().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    relay.abort();
    relay = start_relay(ledger.clone(), bus.clone());

    writer.await.unwrap();
    let total = TOTAL_BATCHES * 5;
    follower
        .wait_applied(total, Duration::from_secs(90))
        .await
        .expect("the follower did not catch up");
    relay.abort();
    let _ = stop_tx.send(());

    assert_eq!(ledger.size().await.unwrap(), total);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len() as u64, total, "every committed event, once");
    assert_eq!(seen.first().copied(), Some(0));
    assert_eq!(seen.last().copied(), Some(total - 1));
    assert!(twice.lock().unwrap().is_empty(), "applied twice: {twice:?}");
}
