//! Read models that survive restarts: a view's state is kept in a snapshot directory
//! (`--snapshot-dir`), one file per view, written atomically every [`SNAPSHOT_EVERY`] and at
//! shutdown when the view moved. At start the view is restored from its file — after checking
//! that the file belongs to this log (the digest of the event at its position) — and follows
//! the ledger from there instead of replaying it from position 0 (ADR 0003).
//!
//! Anything wrong with a file (unreadable, from another log, ahead of the log) is logged,
//! counted (`goose_read_model_snapshots_refused_total{reason}`) and the view replays the ledger:
//! a snapshot is an optimisation, never a source of truth. The directory holds what
//! authorization decisions are made from (roles), so it must be as private to the process as
//! its key file (mode 0700, one per replica: an `emptyDir` or a volume of its own).

use crate::view::{RestoreError, Snapshot, View, ViewHandle};
use goose_metrics::bus::{
    SNAPSHOTS_REFUSED, SNAPSHOTS_RESTORED, SNAPSHOTS_WRITTEN, SNAPSHOT_FAILURES,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often a moved view is written.
pub const SNAPSHOT_EVERY: Duration = Duration::from_secs(30);

/// Why a snapshot file could not be used or kept.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("view name {0:?} must be 1 to 64 characters of a-z, 0-9, '_' or '-'")]
    BadName(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a snapshot of this view: {source}")]
    Decode {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("encoding the snapshot of {view}: {source}")]
    Encode {
        view: String,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Ledger(#[from] goose_ledger::Error),
}

/// The directory snapshots are kept in.
#[derive(Debug, Clone)]
pub struct SnapshotDir {
    dir: PathBuf,
}

impl SnapshotDir {
    /// Creates the directory (mode 0700) if missing.
    pub fn open(dir: &Path) -> Result<Self, SnapshotError> {
        let io = |source| SnapshotError::Io {
            path: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        #[cfg(unix)]
        {
            // Best effort: a mounted volume (an emptyDir) may belong to someone else; it is
            // then the pod's own.
            use std::os::unix::fs::PermissionsExt as _;
            if let Err(e) = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not make the snapshot directory private (mode 0700)");
            }
        }
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    fn path(&self, view: &str) -> Result<PathBuf, SnapshotError> {
        let ok = !view.is_empty()
            && view.len() <= 64
            && view
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !ok {
            return Err(SnapshotError::BadName(view.to_owned()));
        }
        Ok(self.dir.join(format!("{view}.snapshot.json")))
    }

    /// The kept snapshot of `view`, if there is one.
    pub fn load<V: DeserializeOwned>(
        &self,
        view: &str,
    ) -> Result<Option<Snapshot<V>>, SnapshotError> {
        let path = self.path(view)?;
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(SnapshotError::Io { path, source }),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| SnapshotError::Decode { path, source })
    }

    /// Writes `snapshot` atomically: a temporary file, synced, renamed over the old one.
    pub fn save<V: Serialize>(
        &self,
        view: &str,
        snapshot: &Snapshot<V>,
    ) -> Result<(), SnapshotError> {
        let path = self.path(view)?;
        let bytes = serde_json::to_vec(snapshot).map_err(|source| SnapshotError::Encode {
            view: view.to_owned(),
            source,
        })?;
        let tmp = path.with_extension("json.tmp");
        let io = |source| SnapshotError::Io {
            path: tmp.clone(),
            source,
        };
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(|source| SnapshotError::Io {
            path: path.clone(),
            source,
        })?;
        // The rename itself is durable once the directory is synced.
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

fn refused(view: &str, reason: &str, detail: &dyn std::fmt::Display) {
    SNAPSHOTS_REFUSED.counter(&[view, reason]).increment(1);
    tracing::warn!(view, reason, error = %detail, "not starting from the kept snapshot; replaying the ledger");
}

impl<V: View + Clone + Serialize + DeserializeOwned> ViewHandle<V> {
    /// Starts `view` from its kept snapshot when `dir` holds one that belongs to this log,
    /// otherwise by replaying the ledger; then keeps its snapshot in `dir` (every
    /// [`SNAPSHOT_EVERY`] and at shutdown). Without a directory, the same as replaying.
    /// Returns the handle and the task keeping the snapshot (await it at shutdown: it writes
    /// a last one).
    pub async fn start_kept(
        ledger: &goose_ledger::Ledger,
        bus: Arc<dyn goose_bus::Bus>,
        stop: watch::Receiver<bool>,
        dir: Option<&SnapshotDir>,
        view: &'static str,
    ) -> anyhow::Result<(Self, Option<tokio::task::JoinHandle<()>>)> {
        let Some(dir) = dir else {
            let handle = Self::follow(ledger, bus, crate::stopped(stop)).await?;
            return Ok((handle, None));
        };
        let restored = match dir.load::<V>(view) {
            Ok(None) => None,
            Ok(Some(snapshot)) => {
                let at = snapshot.next;
                match Self::restore_parts(
                    ledger,
                    bus.clone(),
                    crate::stopped(stop.clone()),
                    snapshot,
                )
                .await
                {
                    Ok(handle) => {
                        SNAPSHOTS_RESTORED.counter(&[view]).increment(1);
                        tracing::info!(
                            view,
                            position = at,
                            "read model restored from its snapshot"
                        );
                        Some(handle)
                    }
                    Err(e) => {
                        let reason = match &e {
                            RestoreError::Ahead { .. } => "ahead",
                            RestoreError::Mismatch { .. } => "mismatch",
                            RestoreError::Ledger(_) | RestoreError::Start(_) => "ledger",
                        };
                        refused(view, reason, &e);
                        None
                    }
                }
            }
            Err(e) => {
                refused(view, "unreadable", &e);
                None
            }
        };
        let handle = match restored {
            Some(h) => h,
            None => Self::follow(ledger, bus, crate::stopped(stop.clone())).await?,
        };
        let keeper = tokio::spawn(keep(
            handle.clone(),
            ledger.clone(),
            dir.clone(),
            view,
            stop,
        ));
        Ok((handle, Some(keeper)))
    }
}

/// Writes the view's snapshot whenever it moved, every [`SNAPSHOT_EVERY`] and once more at
/// shutdown.
async fn keep<V: View + Clone + Serialize>(
    handle: ViewHandle<V>,
    ledger: goose_ledger::Ledger,
    dir: SnapshotDir,
    view: &'static str,
    stop: watch::Receiver<bool>,
) {
    let mut written = match dir.load::<serde::de::IgnoredAny>(view) {
        Ok(Some(s)) => s.next,
        _ => u64::MAX,
    };
    let mut tick = tokio::time::interval(SNAPSHOT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stopping = crate::stopped(stop);
    tokio::pin!(stopping);
    loop {
        let last = tokio::select! {
            _ = tick.tick() => false,
            () = &mut stopping => true,
        };
        let now = handle.position();
        if now != written {
            match write(&handle, &ledger, &dir, view).await {
                Ok(next) => {
                    written = next;
                    SNAPSHOTS_WRITTEN.counter(&[view]).increment(1);
                }
                Err(e) => {
                    SNAPSHOT_FAILURES.counter(&[view]).increment(1);
                    tracing::warn!(view, error = %e, "could not keep the read model's snapshot");
                }
            }
        }
        if last {
            return;
        }
    }
}

async fn write<V: View + Clone + Serialize>(
    handle: &ViewHandle<V>,
    ledger: &goose_ledger::Ledger,
    dir: &SnapshotDir,
    view: &str,
) -> Result<u64, SnapshotError> {
    let snapshot = handle.snapshot_of(ledger).await?;
    let next = snapshot.next;
    let (d, v) = (dir.clone(), view.to_owned());
    tokio::task::spawn_blocking(move || d.save(&v, &snapshot))
        .await
        .map_err(|e| SnapshotError::Io {
            path: dir.dir.clone(),
            source: std::io::Error::other(e),
        })??;
    Ok(next)
}

/// `#[serde(with = "goose_platform::snapshots::pairs")]` for a map whose keys are not strings
/// (a `(service, version)` tuple): JSON objects take string keys only, so the map is kept as a
/// list of `[key, value]` pairs. (Ten lines here rather than a dependency for one adapter.)
pub mod pairs {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<'a, M, K, V, S>(map: &'a M, s: S) -> Result<S::Ok, S::Error>
    where
        &'a M: IntoIterator<Item = (&'a K, &'a V)>,
        K: Serialize + 'a,
        V: Serialize + 'a,
        S: Serializer,
    {
        s.collect_seq(map)
    }

    pub fn deserialize<'de, M, K, V, D>(d: D) -> Result<M, D::Error>
    where
        M: FromIterator<(K, V)>,
        K: Deserialize<'de>,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_snapshot_reads_back_and_a_missing_one_is_none() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SnapshotDir::open(&tmp.path().join("snaps")).unwrap();
        assert!(dir.load::<Vec<u32>>("view").unwrap().is_none());
        let snap = Snapshot {
            next: 7,
            last_digest: Some("ab".repeat(32)),
            state: vec![1u32, 2, 3],
        };
        dir.save("view", &snap).unwrap();
        let back = dir.load::<Vec<u32>>("view").unwrap().unwrap();
        assert_eq!(
            (back.next, back.last_digest, back.state),
            (7, snap.last_digest, vec![1, 2, 3])
        );
        // Replaced whole: no temporary file is left behind.
        dir.save(
            "view",
            &Snapshot {
                next: 9,
                last_digest: None,
                state: vec![4u32],
            },
        )
        .unwrap();
        assert_eq!(dir.load::<Vec<u32>>("view").unwrap().unwrap().next, 9);
        let names: Vec<_> = std::fs::read_dir(tmp.path().join("snaps"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["view.snapshot.json"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(tmp.path().join("snaps"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }

    #[test]
    fn names_that_could_escape_the_directory_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SnapshotDir::open(tmp.path()).unwrap();
        for bad in ["", "../users", "a/b", "Users", &"x".repeat(65)] {
            assert!(
                matches!(dir.load::<u8>(bad), Err(SnapshotError::BadName(_))),
                "{bad}"
            );
        }
        // A file of another shape is an error, not a panic or a default.
        std::fs::write(tmp.path().join("v.snapshot.json"), b"[1,2]").unwrap();
        assert!(matches!(
            dir.load::<u8>("v"),
            Err(SnapshotError::Decode { .. })
        ));
    }
}
