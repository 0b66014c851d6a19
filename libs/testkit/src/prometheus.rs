//! A real Prometheus (Debian's `prometheus` package) for tests, and its `promtool`.

use crate::{find_binary, free_port, wait_for_port, watchdog};
use anyhow::{Context as _, Result};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A Prometheus server on a free port with a throw-away data directory, running `config`
/// (prometheus.yml text; paths in it may point into [`Prometheus::dir`] via
/// [`Prometheus::start_with`]).
#[derive(Debug)]
pub struct Prometheus {
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus; `config` gets the data directory (to place files such as a
    /// credentials file) and returns the configuration text.
    pub fn start_with(config: impl FnOnce(&std::path::Path) -> Result<String>) -> Result<Self> {
        let bin = find_binary("prometheus", "prometheus")?;
        let dir = tempfile::tempdir()?;
        let text = config(dir.path())?;
        let file = dir.path().join("prometheus.yml");
        std::fs::write(&file, text)?;
        let port = free_port()?;
        let log = std::fs::File::create(dir.path().join("prometheus.log"))?;
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        watchdog(&format!(
            "pkill -f 'prometheus --config.file={}'",
            file.display()
        ))?;
        wait_for_port(port, "prometheus", Duration::from_secs(30))?;
        Ok(Self { port, child, dir })
    }

    /// Its HTTP API, e.g. `http://127.0.0.1:9090`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What it logged so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prometheus's `promtool` (same package).
pub fn promtool() -> Result<PathBuf> {
    find_binary("promtool", "prometheus")
}
