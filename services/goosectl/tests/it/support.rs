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

/// A `goosectl dev` process, killed when dropped.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `goosectl dev` on a data directory of its own, as the quick start runs it, with the
/// admin's token.
pub struct Dev {
    pub data: tempfile::TempDir,
    pub port: u16,
    pub url: String,
    pub admin: String,
    server: Option<KillOnDrop>,
    /// More `goosectl dev` flags (e.g. `--identity-config`).
    extra: Vec<std::ffi::OsString>,
}

impl Dev {
    pub async fn start() -> Dev {
        Self::start_with(&[]).await
    }

    /// [`Dev::start`] with more `goosectl dev` flags.
    pub async fn start_with(extra: &[&std::ffi::OsStr]) -> Dev {
        let data = tempfile::tempdir().unwrap();
        let port = goose_testkit::free_port().unwrap();
        let mut dev = Dev {
            url: format!("http://127.0.0.1:{port}"),
            data,
            port,
            admin: String::new(),
            server: None,
            extra: extra.iter().map(|a| a.to_os_string()).collect(),
        };
        dev.up().await;
        let (code, admin) = run(goosectl()
            .env("GOOSE_URL", &dev.url)
            .args(["token", "--user", "admin", "--api-key-file"])
            .arg(dev.data.path().join("admin.api-key")));
        assert_eq!(code, 0, "{admin}");
        dev.admin = admin.trim().to_owned();
        dev
    }

    /// Starts the server (again) and waits until it is ready.
    pub async fn up(&mut self) {
        self.server = Some(KillOnDrop(
            goosectl()
                .arg("--data-dir")
                .arg(self.data.path())
                .args([
                    "dev",
                    "--listen",
                    &format!("127.0.0.1:{}", self.port),
                    "--checkpoint-interval",
                    "1",
                ])
                .args(&self.extra)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        ));
        let port = self.port;
        goose_testkit::eventually(
            std::time::Duration::from_secs(30),
            "goosectl dev to answer",
            || async {
                crate::cli::http_get(port, "/readyz").filter(|r| r.starts_with("HTTP/1.1 200"))
            },
        )
        .await
        .unwrap();
    }

    /// Kills the server (as a crash would).
    pub fn kill(&mut self) {
        if let Some(mut s) = self.server.take() {
            s.0.kill().unwrap();
            s.0.wait().unwrap();
        }
    }

    /// goosectl as a client of this server, with `token`.
    pub fn cli(&self, token: &str) -> Command {
        let mut c = goosectl();
        c.env("GOOSE_URL", &self.url)
            .env("GOOSE_TOKEN", token)
            .arg("--data-dir")
            .arg(self.data.path());
        c
    }

    /// Creates `name` with `role` through the CLI and returns a token for them.
    pub fn user(&self, name: &str, role: &str) -> String {
        let (code, out) = run(self
            .cli(&self.admin)
            .args(["user", "create", name, "--role", role]));
        assert_eq!(code, 0, "{out}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let key_file = self.data.path().join(format!("{name}.key"));
        std::fs::write(&key_file, v["api_key"].as_str().unwrap()).unwrap();
        let (code, t) = run(goosectl()
            .env("GOOSE_URL", &self.url)
            .args(["token", "--user", name, "--api-key-file"])
            .arg(&key_file));
        assert_eq!(code, 0, "{t}");
        t.trim().to_owned()
    }

    /// `goosectl evidence add` of one file.
    pub fn evidence(&self, token: &str, service: &str, kind: &str, file: &Path) {
        let (code, out) = run(self
            .cli(token)
            .args([
                "evidence",
                "add",
                "--service",
                service,
                "--version",
                "1.0.0",
                "--kind",
                kind,
            ])
            .arg(file));
        assert_eq!(code, 0, "{kind}: {out}");
    }
}

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The quick start's promotion, as an operator runs it: services a, b, c onboarded with
/// their evidence (service-c's coverage too low), a package of the three promoted. Returns
/// (package id, promotion id) once service-a waits for its approval.
pub async fn quick_start_promotion(dev: &Dev, olga: &str) -> (String, String) {
    let package = quick_start_package(dev, olga).await;
    let (code, out) =
        run(dev
            .cli(olga)
            .args(["package", "promote", &package, "--reason", "quick start"]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("approval request"), "{out}");
    let promotion = out.split_whitespace().nth(1).unwrap().to_owned();
    goose_testkit::eventually(
        std::time::Duration::from_secs(20),
        "service-a waits for approval",
        || async {
            let (_, out) = run(dev.cli(olga).args(["promotion", "status", &promotion]));
            out.contains("approval_granted: missing — awaiting approval")
                .then_some(())
        },
    )
    .await
    .unwrap();
    (package, promotion)
}

/// The quick start up to its package: services a, b, c onboarded with their evidence
/// (service-c's coverage too low) and a package of the three created. Returns its id.
pub async fn quick_start_package(dev: &Dev, olga: &str) -> String {
    let root = repo_root();
    let (code, out) = run(dev
        .cli(olga)
        .args(["service", "apply", "-f"])
        .arg(root.join("deploy/examples/services")));
    assert_eq!(code, 0, "{out}");
    let ev = root.join("tests/fixtures/evidence");
    for svc in ["service-a", "service-b", "service-c"] {
        let run_dir = if svc == "service-c" {
            "low-coverage"
        } else {
            "passing"
        };
        for (kind, file) in [
            ("junit", ev.join(run_dir).join("junit.xml")),
            ("lcov", ev.join(run_dir).join("coverage.lcov")),
            ("sarif", ev.join("clippy.sarif")),
            ("cyclonedx", ev.join("sbom.cdx.json")),
        ] {
            let (code, out) = run(dev
                .cli(olga)
                .args([
                    "evidence",
                    "add",
                    "--service",
                    svc,
                    "--version",
                    "1.0.0",
                    "--kind",
                    kind,
                ])
                .arg(file));
            assert_eq!(code, 0, "{out}");
        }
    }
    // service-a's API description, as its build publishes it: here the dev server's own
    // (kept as <data dir>/openapi.json).
    let api_doc = dev.data.path().join("openapi.json");
    let body = reqwest::get(format!("{}/openapi.json", dev.url))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    std::fs::write(&api_doc, &body).unwrap();
    dev.evidence(olga, "service-a", "openapi", &api_doc);
    let (code, out) = run(dev.cli(olga).args([
        "package",
        "create",
        "--version",
        "1.0.0",
        "service-c",
        "service-b",
        "service-a",
    ]));
    assert_eq!(code, 0, "{out}");
    out.split_whitespace().nth(1).unwrap().to_owned()
}

/// The approver approves the quick start's promotion and the operator watches it to its end:
/// partially succeeded (service-c fails its coverage gate). Returns what the watch printed.
pub fn approve_and_watch(dev: &Dev, approver: &str, operator: &str, promotion: &str) -> String {
    let (code, out) =
        run(dev
            .cli(approver)
            .args(["promotion", "approve", promotion, "--comment", "reviewed"]));
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(dev
        .cli(operator)
        .args(["promotion", "status", promotion, "--watch"]));
    assert_eq!(code, 1, "partially succeeded: {out}");
    out
}
