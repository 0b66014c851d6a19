//! What a client trusts besides the database: checkpoint files it was handed
//! (`--trusted-checkpoint`) and its own memory of the newest checkpoint it has seen of each log
//! (the state directory, like Go's sumdb client cache). Anything older than, or inconsistent
//! with, what it remembers is refused as a rollback or a fork.

use anyhow::{bail, Context as _, Result};
use goose_ledger::{SignedCheckpoint, Vkey};
use std::path::{Path, PathBuf};

/// Exit codes of `verify`, `verify-proof` and `verify-consistency` (docs/chain-format.md).
pub mod exit {
    /// Verified.
    pub const OK: u8 = 0;
    /// The log is not what was sealed or checkpointed: rewritten, cut, forked, rolled back.
    pub const TAMPERED: u8 = 1;
    /// Could not verify: bad arguments, unreadable input, storage unreachable.
    pub const ERROR: u8 = 2;
    /// The chain verified, but checkpoint rows this log did not sign were found (junk
    /// inserted by someone with database rights).
    pub const INTRUSION: u8 = 3;
    /// The chain verified, but no checkpoint anchors it (nothing outside the database).
    pub const UNANCHORED: u8 = 4;
}

/// The default state directory: `$XDG_CACHE_HOME/goosectl/checkpoints`, else
/// `$HOME/.cache/goosectl/checkpoints`.
pub fn default_state_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("goosectl").join("checkpoints"))
}

/// One file name per log key: the origin made file-safe, plus the key hash.
pub fn log_file_name(log_key: &Vkey) -> String {
    let safe: String = log_key
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}+{}", hex::encode(log_key.key_hash))
}

/// The client's memory of one log (origin and key), in a state directory.
#[derive(Debug)]
pub struct ClientState {
    file: Option<PathBuf>,
    log_key: Vkey,
}

impl ClientState {
    /// `dir` None: no memory (`--no-state`).
    pub fn open(dir: Option<&Path>, log_key: &Vkey) -> Self {
        Self {
            file: dir.map(|d| d.join(log_file_name(log_key))),
            log_key: log_key.clone(),
        }
    }

    /// The newest checkpoint remembered, verified again with the log key.
    pub fn load(&self) -> Result<Option<SignedCheckpoint>> {
        let Some(file) = &self.file else {
            return Ok(None);
        };
        let note = match std::fs::read_to_string(file) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
        };
        let cp = SignedCheckpoint::verify(&note, &self.log_key).with_context(|| {
            format!(
                "the remembered checkpoint {} does not verify",
                file.display()
            )
        })?;
        Ok(Some(cp))
    }

    /// Remembers `cp` if it is newer than what is remembered (the caller has established that
    /// it is consistent with it). Atomic and durable.
    pub fn remember(&self, cp: &SignedCheckpoint) -> Result<bool> {
        let Some(file) = &self.file else {
            return Ok(false);
        };
        if self
            .load()?
            .is_some_and(|old| old.checkpoint.size >= cp.checkpoint.size)
        {
            return Ok(false);
        }
        write_durably(file, cp.note.as_bytes())?;
        Ok(true)
    }

    pub fn describe(&self) -> String {
        self.file
            .as_ref()
            .map_or_else(|| "(no state)".into(), |f| f.display().to_string())
    }
}

/// Replaces `file` atomically and durably: written aside, synced, renamed, directory synced.
pub fn write_durably(file: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp_name = file.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = file.with_file_name(tmp_name);
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, file).with_context(|| format!("writing {}", file.display()))?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Reads and verifies `--trusted-checkpoint` files.
pub fn read_trusted(files: &[PathBuf], log_key: &Vkey) -> Result<Vec<SignedCheckpoint>> {
    files
        .iter()
        .map(|f| {
            let note =
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            SignedCheckpoint::verify(&note, log_key).with_context(|| {
                format!(
                    "{} is not a checkpoint signed by {}",
                    f.display(),
                    log_key.key_id()
                )
            })
        })
        .collect()
}

/// Checkpoints of the same size must carry the same root: two that do not are a fork, proven
/// by the log key's own signatures.
pub fn check_no_fork(all: &[SignedCheckpoint]) -> Result<()> {
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            if a.checkpoint.size == b.checkpoint.size && a.checkpoint.root != b.checkpoint.root {
                bail!(
                    "fork: two checkpoints of size {} signed by the log key carry different roots",
                    a.checkpoint.size
                );
            }
        }
    }
    Ok(())
}
