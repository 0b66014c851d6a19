//! Relays of one scope in several processes elect one leader; when the leader's database
//! session ends another takes over, and every event still arrives once. A scoped relay
//! publishes only its aggregates' events, and all of them.

use crate::support::{self, pg_ledger};
use goose_bus::jetstream::JetStreamBus;
use goose_bus::relay::OutboxRelay;
use goose_bus::{Bus, Subscription};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

async fn drain(sub: &mut Box<dyn Subscription>, want: usize) -> BTreeMap<u64, usize> {
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < want && tokio::time::Instant::now() < deadline {
        for d in sub.fetch(100, Duration::from_millis(300)).await.unwrap() {
            *seen.entry(d.event.position).or_default() += 1;
            d.ack().await.unwrap();
        }
    }
    // Anything more (a duplicate) would come now.
    for d in sub.fetch(100, Duration::from_millis(500)).await.unwrap() {
        *seen.entry(d.event.position).or_default() += 1;
        d.ack().await.unwrap();
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_relay_leads_and_another_takes_over() {
    let (ledger, _url) = pg_ledger().await;
    let nats = goose_testkit::nats().unwrap();
    let config = support::test_config(&nats);
    let bus: Arc<dyn Bus> = Arc::new(JetStreamBus::connect(&nats.url, config).await.unwrap());
    let relay = |ledger| {
        let r = OutboxRelay::scoped(ledger, bus.clone(), "rbac", ["user", "approval"])
            .contend_every(Duration::from_millis(100));
        tokio::spawn(r.run(futures::future::pending()))
    };
    // Two replicas' relays: each contends with a database session of its own.
    let first = relay(ledger.clone());
    let mut sub = bus.subscribe("check", None).await.unwrap();
    support::append(&ledger, "user", "ada", 0, 5).await;
    support::append(&ledger, "catalog", "default", 0, 3).await; // the registry's, not ours
    support::append(&ledger, "approval", "x", 0, 2).await;
    let seen = drain(&mut sub, 7).await;
    let positions: Vec<u64> = seen.keys().copied().collect();
    assert_eq!(
        positions,
        vec![0, 1, 2, 3, 4, 8, 9],
        "only user and approval events"
    );
    // The first leads; the second stands by.
    let second = relay(ledger.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    support::append(&ledger, "approval", "x", 2, 1).await;
    let seen = drain(&mut sub, 1).await;
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![(10, 1)]);

    // The leader goes away mid-stream (its task dropped: its session closes); the standby
    // leads and publishes the rest, each event once.
    first.abort();
    support::append(&ledger, "user", "bob", 0, 4).await;
    let seen = drain(&mut sub, 4).await;
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        vec![11, 12, 13, 14]
    );
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    second.abort();
}
