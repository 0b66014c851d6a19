//! Kill and restart the nats-server and the relay while events are being written and
//! published: every committed event reaches the read model exactly once in effect.

use crate::support::{self, pg_ledger};
use goose_bus::jetstream::JetStreamBus;
use goose_bus::projection::{PgHandler, PgReadModel, Projection, ReadModel as _};
use goose_bus::relay::OutboxRelay;
use goose_bus::{Bus, Result};
use goose_ledger::RecordedEvent;
use std::sync::Arc;
use std::time::Duration;

/// Inserts each applied position; the primary key makes a double application fail loudly.
#[derive(Clone)]
struct SeenTable;

impl PgHandler for SeenTable {
    async fn handle(&self, tx: &mut sqlx::PgConnection, event: &RecordedEvent) -> Result<()> {
        sqlx::query("INSERT INTO seen (position) VALUES ($1)")
            .bind(event.position as i64)
            .execute(tx)
            .await?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_event_arrives_exactly_once_through_crashes() {
    const TOTAL_BATCHES: u64 = 60;
    let (ledger, url) = pg_ledger().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE seen (position BIGINT PRIMARY KEY)")
        .execute(&pool)
        .await
        .unwrap();

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

    let read_model = PgReadModel::new(pool.clone(), "seen", SeenTable)
        .await
        .unwrap();
    let consumer = tokio::spawn({
        let bus = bus.clone();
        let ledger = ledger.clone();
        async move {
            let mut projection = None;
            loop {
                // Done when the read model holds everything (a step that failed after applying
                // some events still applied them: count what is stored, not what was reported).
                if read_model.next_position().await.unwrap_or(0) >= TOTAL_BATCHES * 5 {
                    return;
                }
                if projection.is_none() {
                    match bus.subscribe("seen", None).await {
                        Ok(sub) => {
                            projection = Some(Projection::new(
                                sub,
                                ledger.clone(),
                                read_model.clone(),
                                None,
                            ))
                        }
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    }
                }
                let Some(p) = projection.as_mut() else {
                    continue;
                };
                if p.step(Duration::from_millis(300)).await.is_err() {
                    projection = None; // the server went away: resubscribe
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });

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
    tokio::time::timeout(Duration::from_secs(90), consumer)
        .await
        .expect("consumer did not catch up")
        .unwrap();
    relay.abort();

    let total = TOTAL_BATCHES * 5;
    let (count, min, max): (i64, i64, i64) =
        sqlx::query_as("SELECT count(*), min(position), max(position) FROM seen")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((count, min, max), (total as i64, 0, total as i64 - 1));
    assert_eq!(ledger.size().await.unwrap(), total);
}
