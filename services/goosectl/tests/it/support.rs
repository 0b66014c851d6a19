use goose_ledger::postgres::PgBackend;
use goose_ledger::sqlite::SqliteBackend;
use goose_ledger::{Backend, Ledger, LedgerConfig, Metadata, NewEvent, NoteKey, StreamId};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

pub fn goosectl() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_goosectl"));
    c.env("RUST_LOG", "warn")
        .env_remove("GOOSE_DATABASE_URL")
        .env_remove("GOOSE_DATA_DIR")
        // The client's memory of checkpoints: this test process's own, never the user's.
        .env("GOOSE_STATE_DIR", state_dir());
    c
}

/// A state directory for this test process (each test's logs have their own keys, so their
/// remembered checkpoints never collide).
pub fn state_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

pub fn run(cmd: &mut Command) -> (i32, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    (status.code().unwrap_or(-1), text)
}

/// A ledger with keys in files, as an operator would have them.
pub struct KeyedLedger {
    pub ledger: Ledger,
    pub log_key: NoteKey,
    pub log_key_file: PathBuf,
    pub keyring_file: PathBuf,
    pub dir: tempfile::TempDir,
}

pub async fn keyed(backend: Arc<dyn Backend>) -> KeyedLedger {
    let dir = tempfile::tempdir().unwrap();
    let service =
        Arc::new(NoteKey::load_or_generate(&dir.path().join("svc.key"), "test-svc").unwrap());
    let log_key_file = dir.path().join("log.key");
    let log_key = NoteKey::load_or_generate(&log_key_file, "goose.test/ledger").unwrap();
    let keyring_file = dir.path().join("keyring");
    std::fs::write(&keyring_file, format!("# services\n{}\n", service.vkey())).unwrap();
    let config = LedgerConfig {
        origin: "goose.test/ledger".into(),
        ..LedgerConfig::default()
    };
    let ledger = Ledger::open(backend, service, config).await.unwrap();
    KeyedLedger {
        ledger,
        log_key,
        log_key_file,
        keyring_file,
        dir,
    }
}

pub async fn postgres_ledger() -> (KeyedLedger, String) {
    let db = goose_testkit::postgres().await.unwrap();
    let backend = Arc::new(PgBackend::connect(&db.url).await.unwrap());
    (keyed(backend).await, db.url)
}

pub async fn sqlite_ledger(path: &Path) -> KeyedLedger {
    keyed(Arc::new(SqliteBackend::open(path).await.unwrap())).await
}

/// Appends `n` events (to two new streams, so it can be called again).
pub async fn fill(ledger: &Ledger, n: u64) -> Vec<uuid::Uuid> {
    let mut ids = Vec::new();
    let batch = uuid::Uuid::new_v4().simple().to_string();
    for i in 0..n {
        let s = StreamId::new("widget", format!("w{}-{batch}", i % 2)).unwrap();
        let ev =
            NewEvent::json("Tick", &serde_json::json!({ "i": i }), Metadata::now("t")).unwrap();
        ids.push(ev.event_id);
        ledger.append(&s, i / 2, vec![ev]).await.unwrap();
    }
    ids
}
