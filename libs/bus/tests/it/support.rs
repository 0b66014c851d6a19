use goose_bus::jetstream::JetStreamBus;
use goose_bus::memory::MemoryBus;
use goose_bus::{Bus, BusConfig};
use goose_ledger::postgres::PgBackend;
use goose_ledger::sqlite::SqliteBackend;
use goose_ledger::{Backend, Ledger, LedgerConfig, Metadata, NewEvent, NoteKey, StreamId};
use std::sync::Arc;
use std::time::Duration;

pub struct Env {
    pub ledger: Ledger,
    pub bus: Arc<dyn Bus>,
    pub config: BusConfig,
    _dir: Option<tempfile::TempDir>,
}

pub fn test_config(nats: &goose_testkit::TestNats) -> BusConfig {
    BusConfig {
        stream: nats.stream.clone(),
        subject_prefix: nats.subject_prefix.clone(),
        ack_wait: Duration::from_secs(1),
    }
}

async fn sqlite_ledger() -> (Ledger, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let backend: Arc<dyn Backend> =
        Arc::new(SqliteBackend::open(&dir.path().join("l.db")).await.unwrap());
    let key = Arc::new(NoteKey::generate("bus-test").unwrap());
    (
        Ledger::open(backend, key, LedgerConfig::default())
            .await
            .unwrap(),
        dir,
    )
}

pub async fn pg_ledger() -> (Ledger, String) {
    let db = goose_testkit::postgres().await.unwrap();
    let backend: Arc<dyn Backend> = Arc::new(PgBackend::connect(&db.url).await.unwrap());
    let key = Arc::new(NoteKey::generate("bus-test").unwrap());
    (
        Ledger::open(backend, key, LedgerConfig::default())
            .await
            .unwrap(),
        db.url,
    )
}

pub async fn jetstream() -> Env {
    let nats = goose_testkit::nats().unwrap();
    let config = test_config(&nats);
    let bus = JetStreamBus::connect(&nats.url, config.clone())
        .await
        .unwrap();
    let (ledger, dir) = sqlite_ledger().await;
    Env {
        ledger,
        bus: Arc::new(bus),
        config,
        _dir: Some(dir),
    }
}

pub async fn memory() -> Env {
    let (ledger, dir) = sqlite_ledger().await;
    Env {
        ledger,
        bus: Arc::new(MemoryBus::new()),
        config: BusConfig::default(),

        _dir: Some(dir),
    }
}

pub async fn append(ledger: &Ledger, aggregate: &str, id: &str, expected: u64, n: u64) {
    let stream = StreamId::new(aggregate, id).unwrap();
    let events = (0..n)
        .map(|i| {
            NewEvent::json(
                "Happened",
                &serde_json::json!({ "i": expected + i }),
                Metadata::now("t"),
            )
            .unwrap()
        })
        .collect();
    ledger.append(&stream, expected, events).await.unwrap();
}
