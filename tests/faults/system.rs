//! The system under faults: a PostgreSQL server and a nats-server of the harness's own (so it
//! may stop and kill them), and every service as its own process — rbac, registry, evidence
//! two orchestrator replicas and sla — kept running by a supervisor that restarts whatever exits
//! (as Kubernetes would) and tells crashes apart from the kills the harness made.

use crate::support::{binary, Http, E2E_LOG_ORIGIN};
use goose_testkit::{NatsServer, PgCluster, PgStop};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

pub const STREAM: &str = "GOOSE_FAULTS";
pub const PREFIX: &str = "goose.faults";

/// One service process: how to start it, and the running child.
pub struct Service {
    pub name: &'static str,
    pub bin: &'static str,
    pub port: u16,
    args: Vec<String>,
    child: Option<Child>,
    /// Frozen by SIGSTOP (the supervisor leaves it alone).
    pub paused: bool,
    /// Killed by the harness: its exit is expected.
    killed: bool,
}

/// What happened to the processes, for the summary and the crash check.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub kills: BTreeMap<String, u32>,
    pub pauses: BTreeMap<String, u32>,
    pub pg_stops: Vec<&'static str>,
    pub relay_leader_kills: u32,
    pub restarts: u32,
    /// Exits the harness did not cause (a panic, an abort), with their status.
    pub crashes: Vec<String>,
    /// Exits with status 1 (a service refusing to start while a dependency was down).
    pub start_failures: u32,
}

impl Tally {
    pub fn total_kills(&self) -> u32 {
        self.kills.values().sum()
    }
}

pub struct System {
    pub pg: PgCluster,
    pub db_url: String,
    pub nats: Mutex<NatsServer>,
    pub nats_url: String,
    pub dir: tempfile::TempDir,
    pub services: Mutex<Vec<Service>>,
    pub tally: Mutex<Tally>,
    pub log_vkey: String,
    pub admin_key_file: PathBuf,
}

fn key(dir: &Path, file: &str, name: &str) -> String {
    goose_ledger::NoteKey::load_or_generate(&dir.join(file), name)
        .unwrap()
        .vkey()
}

impl System {
    pub async fn start() -> Arc<Self> {
        let pg = PgCluster::start().unwrap();
        let db_url = format!("{}/postgres", pg.url());
        let nats = NatsServer::start().unwrap();
        let nats_url = nats.url();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let token_vkey = key(d, "tokens.key", "faults-tokens");
        let log_vkey = key(d, "log.key", E2E_LOG_ORIGIN);
        let mut ring = String::new();
        for (file, name) in [
            ("goose-rbac.key", "goose-rbac"),
            ("goose-registry.key", "goose-registry"),
            ("goose-evidence.key", "goose-evidence"),
            ("orchestrator-a.key", "goose-orchestrator-a"),
            ("orchestrator-b.key", "goose-orchestrator-b"),
            ("goose-sla.key", "goose-sla"),
        ] {
            ring.push_str(&key(d, file, name));
            ring.push('\n');
        }
        std::fs::write(d.join("keyring"), &ring).unwrap();
        let admin_key_file = d.join("admin.api-key");
        let port = || goose_testkit::free_port().unwrap();
        let tok = format!("--token-vkey={token_vkey}");
        let (p_rbac, p_registry, p_evidence, p_a, p_b, p_sla) =
            (port(), port(), port(), port(), port(), port());
        let orchestrator = |key_file: &str| {
            vec![
                tok.clone(),
                format!("--service-key-file={}", d.join(key_file).display()),
                format!("--rbac-url=http://127.0.0.1:{p_rbac}"),
                format!("--keyring=@{}", d.join("keyring").display()),
                format!("--log-vkey={log_vkey}"),
            ]
        };
        let service = |name, bin, port, args: Vec<String>| Service {
            name,
            bin,
            port,
            args,
            child: None,
            paused: false,
            killed: false,
        };
        let services = vec![
            service(
                "rbac",
                "goose-rbac",
                p_rbac,
                vec![
                    format!("--token-key-file={}", d.join("tokens.key").display()),
                    "--bootstrap-admin=root".into(),
                    format!("--bootstrap-key-file={}", admin_key_file.display()),
                ],
            ),
            service("registry", "goose-registry", p_registry, vec![tok.clone()]),
            service(
                "evidence",
                "goose-evidence",
                p_evidence,
                vec![
                    tok.clone(),
                    format!("--log-key-file={}", d.join("log.key").display()),
                    "--checkpoint-interval=5".into(),
                ],
            ),
            service(
                "orchestrator-a",
                "goose-orchestrator",
                p_a,
                orchestrator("orchestrator-a.key"),
            ),
            service(
                "orchestrator-b",
                "goose-orchestrator",
                p_b,
                orchestrator("orchestrator-b.key"),
            ),
            service(
                "sla",
                "goose-sla",
                p_sla,
                vec![
                    tok.clone(),
                    "--evaluate-every=1".into(),
                    format!("--keyring=@{}", d.join("keyring").display()),
                    format!("--log-vkey={log_vkey}"),
                ],
            ),
        ];
        let system = Arc::new(Self {
            pg,
            db_url,
            nats: Mutex::new(nats),
            nats_url,
            dir,
            services: Mutex::new(services),
            tally: Mutex::default(),
            log_vkey,
            admin_key_file,
        });
        {
            let mut services = system.services.lock();
            for s in services.iter_mut() {
                system.spawn(s);
            }
        }
        for name in [
            "rbac",
            "registry",
            "evidence",
            "orchestrator-a",
            "orchestrator-b",
            "sla",
        ] {
            system.wait_ready(name, Duration::from_secs(60)).await;
        }
        system
    }

    fn spawn(&self, s: &mut Service) {
        let d = self.dir.path();
        let mut cmd = Command::new(binary(s.bin));
        cmd.env("GOOSE_DATABASE_URL", &self.db_url)
            .env("GOOSE_NATS_URL", &self.nats_url)
            .env("GOOSE_NATS_STREAM", STREAM)
            .env("GOOSE_NATS_SUBJECT_PREFIX", PREFIX)
            .env("GOOSE_LISTEN", format!("127.0.0.1:{}", s.port))
            .env("GOOSE_SERVICE_KEY_FILE", d.join(format!("{}.key", s.bin)))
            .env("GOOSE_LOG_ORIGIN", E2E_LOG_ORIGIN)
            .env("RUST_LOG", "error")
            .args(&s.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Appending keeps the logs of earlier lives.
        if let Ok(f) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(d.join(format!("{}.log", s.name)))
        {
            cmd.stderr(Stdio::from(f));
        }
        s.child = Some(cmd.spawn().expect("spawn service"));
        s.killed = false;
        s.paused = false;
    }

    pub fn http(&self, name: &str) -> Http {
        let port = self
            .services
            .lock()
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.port)
            .unwrap();
        Http::new(format!("http://127.0.0.1:{port}"))
    }

    pub async fn wait_ready(&self, name: &str, timeout: Duration) {
        let http = self.http(name);
        goose_testkit::eventually(timeout, &format!("{name} ready"), || async {
            let r = reqwest::Client::new()
                .get(format!("{}/readyz", http.base))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .ok()?;
            r.status().is_success().then_some(())
        })
        .await
        .unwrap();
    }

    /// Restarts whatever exited (after `delay`); records whether the exit was ours.
    pub fn supervise(&self) {
        let mut services = self.services.lock();
        let mut tally = self.tally.lock();
        for s in services.iter_mut() {
            let Some(child) = s.child.as_mut() else {
                continue;
            };
            let Ok(Some(status)) = child.try_wait() else {
                continue;
            };
            if !s.killed {
                if status.code() == Some(1) {
                    tally.start_failures += 1;
                } else {
                    tally
                        .crashes
                        .push(format!("{} exited on its own: {status}", s.name));
                }
            }
            tally.restarts += 1;
            self.spawn(s);
        }
    }

    /// SIGKILLs a service (the supervisor restarts it).
    pub fn kill(&self, name: &str) {
        let mut services = self.services.lock();
        if let Some(s) = services.iter_mut().find(|s| s.name == name) {
            if let Some(c) = s.child.as_mut() {
                s.killed = true;
                if s.paused {
                    let _ = goose_testkit::signal(c.id(), "CONT");
                    s.paused = false;
                }
                let _ = c.kill();
                *self.tally.lock().kills.entry(name.to_owned()).or_default() += 1;
            }
        }
    }

    /// SIGSTOPs (`pause`) or SIGCONTs a service.
    pub fn freeze(&self, name: &str, pause: bool) {
        let mut services = self.services.lock();
        if let Some(s) = services.iter_mut().find(|s| s.name == name) {
            if let Some(c) = s.child.as_ref() {
                if goose_testkit::signal(c.id(), if pause { "STOP" } else { "CONT" }).is_ok() {
                    s.paused = pause;
                    if pause {
                        *self.tally.lock().pauses.entry(name.to_owned()).or_default() += 1;
                    }
                }
            }
        }
    }

    pub fn kill_nats(&self) {
        self.nats.lock().kill().unwrap();
        *self
            .tally
            .lock()
            .kills
            .entry("nats-server".into())
            .or_default() += 1;
    }

    pub fn start_nats(&self) {
        self.nats.lock().restart().unwrap();
    }

    pub fn freeze_nats(&self, pause: bool) {
        let nats = self.nats.lock();
        if pause {
            nats.pause().unwrap();
            *self
                .tally
                .lock()
                .pauses
                .entry("nats-server".into())
                .or_default() += 1;
        } else {
            nats.resume().unwrap();
        }
    }

    pub fn stop_pg(&self, mode: PgStop) {
        self.pg.stop(mode).unwrap();
        self.tally.lock().pg_stops.push(match mode {
            PgStop::Fast => "fast",
            PgStop::Immediate => "immediate",
        });
    }

    pub fn start_pg(&self) {
        self.pg.start_again().unwrap();
    }

    /// The orchestrator replica that leads the orchestrator's outbox relay, per its metrics.
    pub async fn relay_leader(&self) -> Option<&'static str> {
        for name in ["orchestrator-a", "orchestrator-b"] {
            let http = self.http(name);
            let Ok(r) = reqwest::Client::new()
                .get(format!("{}/metrics", http.base))
                .timeout(Duration::from_secs(2))
                .send()
                .await
            else {
                continue;
            };
            let text = r.text().await.unwrap_or_default();
            if text.lines().any(|l| {
                l.starts_with("goose_relay_leader{relay=\"relay:orchestrator\"}")
                    && l.ends_with(" 1")
            }) {
                return Some(name);
            }
        }
        None
    }

    /// Thaws everything frozen and waits until every service answers ready.
    pub async fn heal(&self) {
        {
            let nats = self.nats.lock();
            let _ = nats.resume();
        }
        let names: Vec<&'static str> = {
            let services = self.services.lock();
            services.iter().map(|s| s.name).collect()
        };
        for name in &names {
            self.freeze(name, false);
        }
        for name in names {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
            loop {
                self.supervise();
                let http = self.http(name);
                let ok = reqwest::Client::new()
                    .get(format!("{}/readyz", http.base))
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false);
                if ok {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{name} did not become ready after the faults; its log: {}",
                    self.log_tail(name)
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// The end of a service's log (all its lives).
    pub fn log_tail(&self, name: &str) -> String {
        let bytes = std::fs::read(self.dir.path().join(format!("{name}.log"))).unwrap_or_default();
        let start = bytes.len().saturating_sub(4000);
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }

    /// Starts a fresh process of `bin` with `name`'s flags on a new port, relay off: a read
    /// model rebuilt from the ledger alone.
    pub async fn fresh_replica(&self, name: &str) -> (Http, Child) {
        let (bin, mut args) = {
            let services = self.services.lock();
            let s = services.iter().find(|s| s.name == name).unwrap();
            (s.bin, s.args.clone())
        };
        // rbac must not bootstrap again (the admin exists; it would only find that out).
        args.retain(|a| !a.starts_with("--bootstrap"));
        args.push("--relay=false".into());
        let port = goose_testkit::free_port().unwrap();
        let mut replica = Service {
            name: "replica",
            bin,
            port,
            args,
            child: None,
            paused: false,
            killed: false,
        };
        self.spawn(&mut replica);
        let http = Http::new(format!("http://127.0.0.1:{port}"));
        goose_testkit::eventually(Duration::from_secs(60), "fresh replica ready", || async {
            let r = reqwest::get(format!("{}/readyz", http.base)).await.ok()?;
            r.status().is_success().then_some(())
        })
        .await
        .unwrap();
        (http, replica.child.take().unwrap())
    }
}

impl Drop for System {
    fn drop(&mut self) {
        let mut services = self.services.lock();
        for s in services.iter_mut() {
            if let Some(c) = s.child.as_mut() {
                let _ = goose_testkit::signal(c.id(), "CONT");
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}
