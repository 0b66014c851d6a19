//! Where keys live: `<data dir>/keys/<name>.key` (mode 0600), and keyring files of vkeys.

use anyhow::{bail, Context as _, Result};
use goose_ledger::{Keyring, NoteKey, Vkey};
use std::path::{Path, PathBuf};

/// Name (and checkpoint origin) of the log key `goosectl dev` creates.
pub const DEV_LOG_KEY_NAME: &str = "goose.dev/ledger";
/// Name of the key the dev process signs its own events with.
pub const DEV_SERVICE_KEY_NAME: &str = "goosectl-dev";

pub fn keys_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("keys")
}

/// Where `goosectl dev` writes every checkpoint (write-once files): the default sink.
pub fn checkpoints_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("checkpoints")
}

pub fn log_key_path(data_dir: &Path) -> PathBuf {
    keys_dir(data_dir).join("log.key")
}

pub fn service_key_path(data_dir: &Path, service: &str) -> PathBuf {
    keys_dir(data_dir).join(format!("{service}.key"))
}

/// Loads the log's private key from `file`, or the data dir's.
pub fn load_log_key(file: Option<&Path>, data_dir: &Path) -> Result<NoteKey> {
    let path = file.map_or_else(|| log_key_path(data_dir), Path::to_path_buf);
    if !path.exists() {
        bail!(
            "no log key at {} (pass --log-key-file, or run `goosectl dev` once to create one)",
            path.display()
        );
    }
    Ok(NoteKey::load(&path)?)
}

/// A vkey given inline or as `@FILE`.
pub fn parse_vkey_arg(arg: &str) -> Result<Vkey> {
    let text = match arg.strip_prefix('@') {
        Some(file) => std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?,
        None => arg.to_owned(),
    };
    Ok(Vkey::parse(text.trim())?)
}

/// Reads a keyring file: one vkey per line; blank lines and `#` comments are skipped.
pub fn read_keyring(path: &Path) -> Result<Keyring> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading keyring {}", path.display()))?;
    let mut ring = Keyring::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let vkey = Vkey::parse(line).with_context(|| format!("{}:{}", path.display(), i + 1))?;
        ring.add(&vkey);
    }
    Ok(ring)
}

/// Every key in the data dir's keys/ folder, as a keyring.
pub fn data_dir_keyring(data_dir: &Path) -> Result<Keyring> {
    let mut ring = Keyring::new();
    let dir = keys_dir(data_dir);
    let entries = std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "key") {
            ring.add_key(&NoteKey::load(&path)?);
        }
    }
    Ok(ring)
}

/// Where `goosectl dev` writes the bootstrap admin's API key.
pub fn admin_api_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin.api-key")
}

/// Trusted attestation signers for `goosectl dev`: vkeys in `<data dir>/attestation.vkeys`
/// (one per line), if the file exists.
pub fn attestation_vkeys(data_dir: &Path) -> Result<Vec<Vkey>> {
    let path = data_dir.join("attestation.vkeys");
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| Vkey::parse(l).with_context(|| format!("{}: {l:?}", path.display())))
        .collect()
}
