//! The same contract for JetStream and the in-process bus.

use crate::support::{self, append, Env};
use goose_bus::Delivery;
use std::sync::Arc;
use std::time::Duration;

macro_rules! bus_suite {
    ($bus:ident) => {
        mod $bus {
            use super::*;
            #[tokio::test]
            async fn publishes_in_order_and_drops_duplicates() {
                in_order_impl(support::$bus().await).await
            }
            #[tokio::test]
            async fn unacknowledged_deliveries_come_back() {
                redelivery_impl(support::$bus().await).await
            }
            #[tokio::test]
            async fn consumers_can_filter_by_aggregate() {
                filter_impl(support::$bus().await).await
            }
        }
    };
}

bus_suite!(jetstream);
bus_suite!(memory);

async fn fetch_n(sub: &mut Box<dyn goose_bus::Subscription>, n: usize) -> Vec<Delivery> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while out.len() < n && tokio::time::Instant::now() < deadline {
        out.extend(
            sub.fetch(n - out.len(), Duration::from_millis(500))
                .await
                .unwrap(),
        );
    }
    out
}

async fn in_order_impl(env: Env) {
    append(&env.ledger, "service", "a", 0, 5).await;
    append(&env.ledger, "model", "m", 0, 3).await;
    let events = env.ledger.read_all(0, 100).await.unwrap();
    env.bus.publish(&events).await.unwrap();
    env.bus.publish(&events[2..]).await.unwrap(); // a relay restarting mid-way
    let mut sub = env.bus.subscribe("all", None).await.unwrap();
    let got = fetch_n(&mut sub, 8).await;
    let positions: Vec<u64> = got.iter().map(|d| d.event.position).collect();
    assert_eq!(positions, (0..8).collect::<Vec<_>>());
    for (d, e) in got.iter().zip(&events) {
        assert_eq!(d.event.digest, e.digest, "the record travels byte for byte");
    }
    for d in got {
        d.ack().await.unwrap();
    }
    assert!(
        sub.fetch(10, Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty(),
        "no duplicates"
    );
    assert!(env.bus.subscribe("bad name!", None).await.is_err());
}

async fn redelivery_impl(env: Env) {
    append(&env.ledger, "service", "a", 0, 4).await;
    env.bus
        .publish(&env.ledger.read_all(0, 10).await.unwrap())
        .await
        .unwrap();
    let mut sub = env.bus.subscribe("worker", None).await.unwrap();
    let mut got = fetch_n(&mut sub, 4).await;
    assert_eq!(got.len(), 4);
    let first = got.remove(0);
    first.ack().await.unwrap();
    drop(got); // crashed before acknowledging the rest
    drop(sub);
    let mut sub = env.bus.subscribe("worker", None).await.unwrap();
    // Acknowledge as we go: anything left unacknowledged past ack_wait would come back again.
    let mut positions = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while positions.len() < 3 && tokio::time::Instant::now() < deadline {
        for d in sub.fetch(3, Duration::from_millis(500)).await.unwrap() {
            positions.insert(d.event.position);
            d.ack().await.unwrap();
        }
    }
    assert_eq!(
        positions.into_iter().collect::<Vec<_>>(),
        vec![1, 2, 3],
        "the acknowledged one stays acknowledged"
    );
}

async fn filter_impl(env: Env) {
    append(&env.ledger, "service", "a", 0, 2).await;
    append(&env.ledger, "model", "m", 0, 2).await;
    append(&env.ledger, "service", "b", 0, 1).await;
    env.bus
        .publish(&env.ledger.read_all(0, 10).await.unwrap())
        .await
        .unwrap();
    let mut sub = env
        .bus
        .subscribe("services-only", Some("service"))
        .await
        .unwrap();
    let got = fetch_n(&mut sub, 3).await;
    let positions: Vec<u64> = got.iter().map(|d| d.event.position).collect();
    assert_eq!(positions, vec![0, 1, 4]);
}

#[tokio::test]
async fn jetstream_messages_carry_cloudevents_headers_and_msg_id() {
    let env = support::jetstream().await;
    append(&env.ledger, "service", "a", 0, 1).await;
    let ev = env.ledger.read_all(0, 1).await.unwrap().remove(0);
    env.bus.publish(std::slice::from_ref(&ev)).await.unwrap();
    let nats = goose_testkit::nats().unwrap();
    let client = async_nats::connect(&nats.url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let stream = js.get_stream(&env.config.stream).await.unwrap();
    let msg = stream.get_raw_message(1).await.unwrap();
    assert_eq!(
        msg.subject.as_str(),
        format!("{}.service.Happened", env.config.subject_prefix)
    );
    let h = &msg.headers;
    let get = |k: &str| h.get(k).map(|v| v.as_str().to_owned());
    assert_eq!(get("Nats-Msg-Id"), Some(ev.event_id.to_string()));
    assert_eq!(get("ce-id"), Some(ev.event_id.to_string()));
    assert_eq!(get("ce-type"), Some("Happened".to_owned()));
    assert_eq!(
        get("ce-source"),
        Some(goose_bus::jetstream::CE_SOURCE.to_owned())
    );
    assert!(get("ce-time").is_some_and(|t| t.contains('T')));
    assert_eq!(msg.payload.as_ref(), ev.record.as_slice());
}

#[tokio::test]
async fn a_follower_that_does_not_reach_a_position_in_time_says_it_is_stale() {
    let env = crate::support::memory().await;
    let seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = seen.clone();
    let follower = goose_bus::follow::Follower::start(
        (*env.ledger).clone(),
        env.bus.clone(),
        &[],
        Arc::new(move |_| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }),
        std::future::pending(),
    )
    .await
    .unwrap();
    append(&env.ledger, "t", "stale", 0, 1).await;
    let size = env.ledger.size().await.unwrap();
    follower
        .wait_applied(size, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), size);
    // A position nobody has written: the wait ends in Stale, naming where the model is.
    let stale = follower
        .wait_applied(size + 10, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert_eq!(stale.applied, size);
    assert_eq!(stale.wanted, size + 10);
}
