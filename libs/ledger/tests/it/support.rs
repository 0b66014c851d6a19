use goose_ledger::postgres::PgBackend;
use goose_ledger::sqlite::SqliteBackend;
use goose_ledger::verify::{self, Failure, Outcome, Report};
use goose_ledger::{Backend, Keyring, Ledger, LedgerConfig, Metadata, NewEvent, NoteKey, Vkey};
use std::sync::Arc;

/// A ledger under test, with what keeps it alive and the keys to verify it.
pub struct Fixture {
    pub ledger: Ledger,
    pub backend: Arc<dyn Backend>,
    pub log_key: NoteKey,
    pub keyring: Keyring,
    pub database_url: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl Fixture {
    pub async fn verify(&self) -> Result<Report, Failure> {
        self.verify_outcome().await.verdict
    }

    /// The verdict and the checkpoint rows set aside as intrusions.
    pub async fn verify_outcome(&self) -> Outcome {
        verify::verify_backend(
            self.backend.clone(),
            self.keyring.clone(),
            &self.log_vkey(),
            Vec::new(),
            |_, _| {},
        )
        .await
        .unwrap()
    }

    pub fn log_vkey(&self) -> Vkey {
        Vkey::parse(&self.log_key.vkey()).unwrap()
    }

    /// Another ledger handle (as another process would have) on the same store, own key.
    pub async fn second_writer(&mut self, name: &str) -> Ledger {
        let key = Arc::new(NoteKey::generate(name).unwrap());
        self.keyring.add_key(&key);
        Ledger::open(self.backend.clone(), key, config())
            .await
            .unwrap()
    }
}

/// The log's origin: the log key's name.
pub const ORIGIN: &str = "goose.test/log";

pub fn config() -> LedgerConfig {
    LedgerConfig {
        origin: ORIGIN.into(),
        ..LedgerConfig::default()
    }
}

fn keys() -> (Arc<NoteKey>, NoteKey, Keyring) {
    let service = Arc::new(NoteKey::generate("test-service").unwrap());
    let log = NoteKey::generate(ORIGIN).unwrap();
    let mut ring = Keyring::new();
    ring.add_key(&service);
    (service, log, ring)
}

pub async fn postgres() -> Fixture {
    let db = goose_testkit::postgres().await.unwrap();
    let backend: Arc<dyn Backend> = Arc::new(PgBackend::connect(&db.url).await.unwrap());
    let (service, log_key, keyring) = keys();
    let ledger = Ledger::open(backend.clone(), service, config())
        .await
        .unwrap();
    Fixture {
        ledger,
        backend,
        log_key,
        keyring,
        database_url: Some(db.url),
        _dir: None,
    }
}

pub async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let backend: Arc<dyn Backend> = Arc::new(
        SqliteBackend::open(&dir.path().join("ledger.db"))
            .await
            .unwrap(),
    );
    let (service, log_key, keyring) = keys();
    let ledger = Ledger::open(backend.clone(), service, config())
        .await
        .unwrap();
    Fixture {
        ledger,
        backend,
        log_key,
        keyring,
        database_url: None,
        _dir: Some(dir),
    }
}

pub fn event(kind: &str, n: u64) -> NewEvent {
    NewEvent::json(
        kind,
        &serde_json::json!({ "n": n, "note": "ünïcode ✓" }),
        Metadata::now("tester"),
    )
    .unwrap()
}

/// Polls `f` every 50 ms until it returns `Some` (at most 10 s).
pub async fn eventually_some<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("condition not met within 10 s");
}
