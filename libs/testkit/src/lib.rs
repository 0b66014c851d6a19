//! Real PostgreSQL and nats-server for tests — never mocks, never skipped.
//!
//! - `GOOSE_TEST_DATABASE_URL` / `GOOSE_TEST_NATS_URL` set: those servers are used.
//! - Otherwise a throw-away server is started once per test binary (PostgreSQL: `initdb` +
//!   `pg_ctl` on a free port in a temp dir, as the `postgres` user when running as root;
//!   nats-server: `-js` on a free port with a temp store dir) and stopped when the test binary
//!   exits (a watchdog process stops it and removes its directory).
//! - Every test gets its own database ([`postgres`]) and its own stream name and subject prefix
//!   ([`nats`]), so tests run in parallel without seeing each other.
//! - Missing server binaries are an error naming the packages to install.

mod oidc;
mod otlp;
mod prometheus;
pub use oidc::{
    browser_sign_in, OidcProvider, Rotation, CI_CLIENT, CLIENT_EDDSA, CLIENT_ES256, CLIENT_RS256,
    OIDC_PROVIDER,
};
pub use otlp::{OtlpReceiver, ReceivedSpan};
pub use prometheus::{promtool, Prometheus};

use anyhow::{bail, Context as _, Result};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A fresh, empty database of its own.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    /// Connection URL of this test's database.
    pub url: String,
    /// URL of the server's maintenance database (for creating/dropping databases).
    pub admin_url: String,
    pub name: String,
}

/// Where a test's events go on JetStream.
#[derive(Debug, Clone)]
pub struct TestNats {
    pub url: String,
    /// A stream name no other test uses.
    pub stream: String,
    /// A subject prefix no other test uses (stands for `goose.evt`).
    pub subject_prefix: String,
}

/// A fresh database on the shared test server.
pub async fn postgres() -> Result<TestDatabase> {
    let base = shared_postgres()?;
    let name = format!("goose_test_{}", uuid::Uuid::new_v4().simple());
    let admin_url = format!("{base}/postgres");
    let mut conn: sqlx::PgConnection = sqlx::Connection::connect(&admin_url)
        .await
        .with_context(|| format!("connecting to test PostgreSQL at {admin_url}"))?;
    sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
        .await
        .context("creating the test database")?;
    Ok(TestDatabase {
        url: format!("{base}/{name}"),
        admin_url,
        name,
    })
}

/// A fresh stream name and subject prefix on the shared nats-server.
pub fn nats() -> Result<TestNats> {
    let url = shared_nats()?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    Ok(TestNats {
        url,
        stream: format!("GOOSE_TEST_{}", &id[..12]),
        subject_prefix: format!("goose.t{}", &id[..12]),
    })
}

fn shared_postgres() -> Result<String> {
    static BASE: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    BASE.get_or_init(|| {
        if let Ok(url) = std::env::var("GOOSE_TEST_DATABASE_URL") {
            // Strip a trailing database name: tests make their own databases.
            let url = url.trim_end_matches('/');
            let base = match url.rfind('/') {
                Some(i) if i > "postgres://".len() => url[..i].to_owned(),
                _ => url.to_owned(),
            };
            return Ok(base);
        }
        start_postgres().map_err(|e| format!("{e:#}"))
    })
    .clone()
    .map_err(|e| anyhow::anyhow!(e))
}

fn shared_nats() -> Result<String> {
    static URL: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("GOOSE_TEST_NATS_URL") {
            return Ok(url);
        }
        NatsServer::start()
            .map(|s| {
                let url = s.url();
                // Lives as long as the test binary; the watchdog stops it afterwards.
                std::mem::forget(s);
                url
            })
            .map_err(|e| format!("{e:#}"))
    })
    .clone()
    .map_err(|e| anyhow::anyhow!(e))
}

/// A free TCP port on loopback.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub(crate) fn find_binary(name: &str, packages: &str) -> Result<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect())
        .unwrap_or_default();
    // Debian keeps PostgreSQL's server binaries out of PATH.
    if let Ok(dirs) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = dirs.flatten().map(|d| d.path()).collect();
        versions.sort();
        candidates.extend(versions.into_iter().rev().map(|d| d.join("bin").join(name)));
    }
    candidates.push(PathBuf::from("/usr/sbin").join(name));
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .with_context(|| {
            format!("`{name}` not found: install {packages} (make test does this with apt)")
        })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs `cmd` as the unprivileged `postgres` user when we are root (initdb refuses root).
fn as_pg_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Starts a process that waits for this test binary to exit, then runs `cleanup` (sh).
pub(crate) fn watchdog(cleanup: &str) -> Result<()> {
    let pid = std::process::id();
    let script = format!("while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {cleanup}");
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the cleanup watchdog")?;
    Ok(())
}

pub(crate) fn wait_for_port(port: u16, what: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{what} did not start listening on port {port} within {timeout:?}")
}

fn start_postgres() -> Result<String> {
    let cluster = PgCluster::start()?;
    let url = cluster.url();
    // Lives as long as the test binary; the watchdog stops it afterwards.
    std::mem::forget(cluster);
    Ok(url)
}

/// How [`PgCluster::stop`] stops the server (`pg_ctl stop -m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgStop {
    /// Disconnects clients, checkpoints, exits.
    Fast,
    /// Exits at once; the next start recovers from the WAL, as after a crash.
    Immediate,
}

/// A PostgreSQL server of the test's own (`initdb` + `pg_ctl` on a free port in a temp dir),
/// which the test may stop and start again; stopped and removed on drop (and by a watchdog
/// if the test binary dies).
#[derive(Debug)]
pub struct PgCluster {
    port: u16,
    dir: PathBuf,
    pg_ctl: PathBuf,
}

impl PgCluster {
    pub fn start() -> Result<Self> {
        let packages = "the `postgresql` package (Debian: apt-get install postgresql)";
        let initdb = find_binary("initdb", packages)?;
        let pg_ctl = find_binary("pg_ctl", packages)?;
        let dir = tempfile::Builder::new()
            .prefix("goose-pg-")
            .tempdir()
            .context("creating a temp dir for PostgreSQL")?
            .keep();
        let data = dir.join("data");
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()?;
            if !status.success() {
                bail!(
                    "cannot hand {} to the postgres user (does the user exist?)",
                    dir.display()
                );
            }
        }
        let out = as_pg_user(&initdb)
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "-D",
            ])
            .arg(&data)
            .output()
            .context("running initdb")?;
        if !out.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let cluster = Self {
            port: free_port()?,
            dir,
            pg_ctl,
        };
        let prefix = if is_root() {
            "runuser -u postgres -- "
        } else {
            ""
        };
        watchdog(&format!(
            "{prefix}{} -D {} -m immediate stop; rm -rf {}",
            cluster.pg_ctl.display(),
            data.display(),
            cluster.dir.display()
        ))?;
        cluster.start_again()?;
        Ok(cluster)
    }

    /// The server's URL (no database name).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Starts the (stopped) server again on the same port and data.
    pub fn start_again(&self) -> Result<()> {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
            self.port,
            self.dir.display()
        );
        let out = as_pg_user(&self.pg_ctl)
            .args(["-w", "-t", "60", "-D"])
            .arg(self.data())
            .args(["-o", &opts, "-l"])
            .arg(self.dir.join("log"))
            .arg("start")
            .output()
            .context("running pg_ctl start")?;
        if !out.status.success() {
            let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
            bail!(
                "pg_ctl start failed: {}\n{log}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        wait_for_port(self.port, "PostgreSQL", Duration::from_secs(30))
    }

    /// Stops the server (`pg_ctl stop -m fast|immediate`), waiting until it is down.
    pub fn stop(&self, mode: PgStop) -> Result<()> {
        let mode = match mode {
            PgStop::Fast => "fast",
            PgStop::Immediate => "immediate",
        };
        let out = as_pg_user(&self.pg_ctl)
            .args(["-w", "-t", "60", "-D"])
            .arg(self.data())
            .args(["-m", mode, "stop"])
            .output()
            .context("running pg_ctl stop")?;
        if !out.status.success() {
            bail!(
                "pg_ctl stop failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.stop(PgStop::Immediate);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A nats-server with JetStream that this test controls (kill, restart).
#[derive(Debug)]
pub struct NatsServer {
    port: u16,
    store: PathBuf,
    config: Option<PathBuf>,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a dedicated server on a free port with a temp store dir.
    pub fn start() -> Result<Self> {
        Self::start_with(None, Vec::new())
    }

    /// Starts a dedicated server with `config` (nats-server configuration text, e.g. an
    /// `authorization` block) and `env` (the variables the configuration refers to).
    pub fn start_with_config(config: &str, env: Vec<(String, String)>) -> Result<Self> {
        Self::start_with(Some(config), env)
    }

    fn start_with(config: Option<&str>, env: Vec<(String, String)>) -> Result<Self> {
        let store = tempfile::Builder::new()
            .prefix("goose-nats-")
            .tempdir()
            .context("creating a temp dir for nats-server")?
            .keep();
        let config = match config {
            Some(text) => {
                let path = store.join("nats.conf");
                std::fs::write(&path, text).context("writing the nats-server configuration")?;
                Some(path)
            }
            None => None,
        };
        let mut s = Self {
            port: free_port()?,
            store,
            config,
            env,
            child: None,
        };
        s.spawn()?;
        let port = s.port;
        // If the test binary dies without dropping us, the watchdog still stops the server.
        watchdog(&format!(
            "pkill -f 'nats-server.*-p {port} ' ; rm -rf {}",
            s.store.display()
        ))?;
        Ok(s)
    }

    fn spawn(&mut self) -> Result<()> {
        let bin = find_binary(
            "nats-server",
            "the `nats-server` package (Debian: apt-get install nats-server)",
        )?;
        let mut cmd = Command::new(bin);
        if let Some(config) = &self.config {
            cmd.arg("-c").arg(config);
        }
        let child = cmd
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store.join("js"))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting nats-server")?;
        self.child = Some(child);
        wait_for_port(self.port, "nats-server", Duration::from_secs(20))
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL): unsynced JetStream data may be lost, as in a crash.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    /// Starts it again on the same port and store.
    pub fn restart(&mut self) -> Result<()> {
        self.kill()?;
        self.spawn()
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered.
    pub fn pause(&self) -> Result<()> {
        self.signal("STOP")
    }

    /// Thaws a paused server (SIGCONT).
    pub fn resume(&self) -> Result<()> {
        self.signal("CONT")
    }

    fn signal(&self, sig: &str) -> Result<()> {
        let Some(child) = &self.child else {
            bail!("nats-server is not running");
        };
        signal(child.id(), sig)
    }
}

/// Sends `SIG<sig>` to process `pid` (`kill -s`).
pub fn signal(pid: u32, sig: &str) -> Result<()> {
    let status = Command::new("kill")
        .args(["-s", sig, &pid.to_string()])
        .status()
        .context("running kill")?;
    if !status.success() {
        bail!("kill -s {sig} {pid} failed");
    }
    Ok(())
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// An S3-compatible server for tests: moto's server (PyPI `moto[server]`), which implements
/// versioned buckets and Object Lock — it refuses deleting a locked version before its
/// retention date and honours `If-None-Match: *` and default bucket retention (it does not
/// refuse shortening a compliance-mode retention, which real S3 does).
#[derive(Debug)]
pub struct S3Server {
    port: u16,
    child: Child,
}

/// Access key and secret the test server accepts (moto accepts any).
pub const S3_TEST_KEY: (&str, &str) = ("goose-test", "goose-test-secret");

impl S3Server {
    pub fn start() -> Result<Self> {
        let python = python_env(&["moto[server]==5.2.5"])?;
        let bin = python.with_file_name("moto_server");
        let port = free_port()?;
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        watchdog(&format!("pkill -f 'moto_server -H 127.0.0.1 -p {port}'"))?;
        wait_for_port(port, "moto_server", Duration::from_secs(30))?;
        Ok(Self { port, child })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` until it returns `Some`, or fails after `timeout` with `what`. Use this
/// instead of sleeping.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A Python virtual environment (under `target/goose-pyenv`) with `packages` installed, for
/// tests that use Python clients users run (nats-py, jsonschema, ...). Created once and reused;
/// a machine without `python3` fails the test loudly. Returns the venv's `python`.
pub fn python_env(packages: &[&str]) -> Result<PathBuf> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/goose-pyenv");
    let python = target.join("bin/python");
    if !python.exists() {
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&target)
            .status()
            .context(
                "python3 is needed for this test (Debian: apt-get install python3 python3-venv)",
            )?;
        if !status.success() {
            bail!("python3 -m venv {} failed", target.display());
        }
    }
    let marker = target.join(format!(
        "installed-{}",
        packages
            .join("+")
            .replace(['<', '>', '=', ',', '/', ' '], "_")
    ));
    if !marker.exists() {
        let out = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(packages)
            .output()
            .context("running pip")?;
        if !out.status.success() {
            bail!(
                "pip install {packages:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::fs::write(&marker, b"")?;
    }
    Ok(python)
}

/// A node_modules folder under target/ with `packages` (npm specs, pinned) installed, for test
/// clients written for Node (Debian's `nodejs` and `npm`); returns the folder that holds
/// `node_modules`. Installs once per package set.
pub fn npm_env(packages: &[&str]) -> Result<PathBuf> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/goose-npm");
    std::fs::create_dir_all(&dir)?;
    let marker = dir.join(format!(
        "installed-{}",
        packages.join("+").replace(['/', '@', ' ', '^', '~'], "_")
    ));
    if !marker.exists() {
        let npm = find_binary("npm", "npm")?;
        let out = Command::new(npm)
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .args(packages)
            .output()
            .context("running npm")?;
        if !out.status.success() {
            bail!(
                "npm install {packages:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::fs::write(&marker, b"")?;
    }
    Ok(dir)
}

/// Debian's Chromium (the `chromium` package; `scripts/install-deps.sh` installs it), for
/// browser tests driven by playwright-core. Fails, naming the package, when it is missing.
pub fn chromium() -> Result<PathBuf> {
    find_binary("chromium", "the `chromium` package")
}

/// `npm ci` in `dir` (a package with a lockfile), once per lockfile content: what the
/// console's build check and browser test run with.
pub fn npm_ci(dir: &Path) -> Result<()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let lock = std::fs::read(dir.join("package-lock.json"))
        .with_context(|| format!("{} has no package-lock.json", dir.display()))?;
    let marker = dir.join("node_modules/.goose-installed");
    let want = format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(&lock));
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(want.as_str()) {
        return Ok(());
    }
    let npm = find_binary("npm", "npm")?;
    let out = Command::new(npm)
        .args(["ci", "--silent", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .output()
        .context("running npm ci")?;
    if !out.status.success() {
        bail!(
            "npm ci in {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::write(&marker, want)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_missing_server_binary_names_the_package_to_install() {
        let err = super::find_binary("no-such-server-binary", "the `no-such` package")
            .unwrap_err()
            .to_string();
        assert!(err.contains("install the `no-such` package"), "{err}");
    }
}
