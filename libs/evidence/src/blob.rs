//! Write-once, content-addressed blob storage with retention.
//!
//! A blob's address is the SHA3-256 of its bytes. Storing the same bytes twice stores them
//! once; nothing is ever overwritten; a delete before the retention date is refused. Two
//! backends: the filesystem (for `goosectl dev`) and PostgreSQL (for services), where a
//! trigger refuses changes to stored content and early deletes.
//!
//! A third, [`s3::S3BlobStore`], keeps them in an S3 bucket with Object Lock in compliance
//! mode (WORM): the retention is set on the write and S3 itself refuses an early delete.

pub mod s3;

use sqlx::PgPool;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// Errors of blob storage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("blob {digest} is retained until {until}; it cannot be deleted before")]
    Retained {
        digest: String,
        until: OffsetDateTime,
    },
    #[error("no blob {0}")]
    NotFound(String),
    #[error("invalid digest {0:?}: expected 64 lowercase hex characters")]
    InvalidDigest(String),
    #[error("blob storage failed: {0}")]
    Io(String),
    #[error("blob {0} on disk does not match its digest")]
    Corrupt(String),
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e.to_string())
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Self::Io(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a put did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub digest: String,
    /// False when the same bytes were already there.
    pub created: bool,
}

/// What a store holds, for its metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlobStats {
    pub objects: u64,
    pub bytes: u64,
    /// When the oldest object was written.
    pub oldest_write: Option<OffsetDateTime>,
    /// The earliest retention date among the objects: nothing can be deleted before it.
    pub earliest_retention: Option<OffsetDateTime>,
}

/// Where evidence files live.
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// Counts what the store holds, where the backend can say (the WORM store does).
    async fn stats(&self) -> Result<Option<BlobStats>> {
        Ok(None)
    }
    /// A short name of the backend, for logs and metrics labels.
    fn backend(&self) -> &'static str;
    /// Stores `bytes` (if new) and keeps them at least until `retain_until` (a later date
    /// extends the retention; an earlier one never shortens it).
    async fn put(&self, bytes: &[u8], retain_until: OffsetDateTime) -> Result<Stored>;
    async fn get(&self, digest: &str) -> Result<Vec<u8>>;
    /// Deletes a blob whose retention has passed.
    async fn delete(&self, digest: &str, now: OffsetDateTime) -> Result<()>;
}

fn check_digest(d: &str) -> Result<()> {
    if d.len() == 64
        && d.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(Error::InvalidDigest(d.to_owned()))
    }
}

/// Blobs as read-only files `<root>/<aa>/<digest>`, retention in `<digest>.retain`.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    pub fn open(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root)?;
        Ok(Self {
            root: root.to_owned(),
        })
    }

    fn path(&self, digest: &str) -> PathBuf {
        self.root.join(&digest[..2]).join(digest)
    }

    fn retain_path(&self, digest: &str) -> PathBuf {
        self.root
            .join(&digest[..2])
            .join(format!("{digest}.retain"))
    }

    fn read_retention(&self, digest: &str) -> Option<OffsetDateTime> {
        let text = std::fs::read_to_string(self.retain_path(digest)).ok()?;
        OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339).ok()
    }

    fn write_retention(&self, digest: &str, until: OffsetDateTime) -> Result<()> {
        let text = until
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| Error::Io(e.to_string()))?;
        let tmp = self.retain_path(digest).with_extension("retain.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, self.retain_path(digest))?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl BlobStore for FsBlobStore {
    fn backend(&self) -> &'static str {
        "filesystem"
    }

    async fn stats(&self) -> Result<Option<BlobStats>> {
        let root = self.root.clone();
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut stats = BlobStats::default();
            for dir in std::fs::read_dir(&root)? {
                let dir = dir?;
                if !dir.file_type()?.is_dir() {
                    continue;
                }
                for f in std::fs::read_dir(dir.path())? {
                    let f = f?;
                    let name = f.file_name().to_string_lossy().into_owned();
                    // Blobs are named by their digest; retention files and temporaries are not.
                    if check_digest(&name).is_err() {
                        continue;
                    }
                    let meta = f.metadata()?;
                    stats.objects += 1;
                    stats.bytes += meta.len();
                    if let Ok(t) = meta.modified() {
                        let t = OffsetDateTime::from(t);
                        stats.oldest_write = Some(stats.oldest_write.map_or(t, |o| o.min(t)));
                    }
                    if let Some(r) = this.read_retention(&name) {
                        stats.earliest_retention =
                            Some(stats.earliest_retention.map_or(r, |o| o.min(r)));
                    }
                }
            }
            Ok(Some(stats))
        })
        .await
        .map_err(|e| Error::Io(format!("counting blobs: {e}")))?
    }

    async fn put(&self, bytes: &[u8], retain_until: OffsetDateTime) -> Result<Stored> {
        let digest = crate::digest(bytes);
        let this = self.clone();
        let bytes = bytes.to_vec();
        tokio::task::spawn_blocking(move || {
            use std::io::Write as _;
            let path = this.path(&digest);
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            std::fs::create_dir_all(&dir)?;
            let created = if path.exists() {
                false
            } else {
                let mut tmp = tempfile_in(&dir)?;
                tmp.1.write_all(&bytes)?;
                tmp.1.sync_all()?;
                // A hard link never replaces an existing file: a racing writer of the same
                // bytes loses harmlessly.
                let created = match std::fs::hard_link(&tmp.0, &path) {
                    Ok(()) => true,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
                    Err(e) => return Err(e.into()),
                };
                std::fs::remove_file(&tmp.0)?;
                let mut perms = std::fs::metadata(&path)?.permissions();
                perms.set_readonly(true);
                std::fs::set_permissions(&path, perms)?;
                created
            };
            if this
                .read_retention(&digest)
                .is_none_or(|cur| retain_until > cur)
            {
                this.write_retention(&digest, retain_until)?;
            }
            Ok(Stored { digest, created })
        })
        .await
        .map_err(|e| Error::Io(e.to_string()))?
    }

    async fn get(&self, digest: &str) -> Result<Vec<u8>> {
        check_digest(digest)?;
        let bytes = match tokio::fs::read(self.path(digest)).await {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(digest.to_owned()))
            }
            Err(e) => return Err(e.into()),
        };
        if crate::digest(&bytes) != digest {
            return Err(Error::Corrupt(digest.to_owned()));
        }
        Ok(bytes)
    }

    async fn delete(&self, digest: &str, now: OffsetDateTime) -> Result<()> {
        check_digest(digest)?;
        if !self.path(digest).exists() {
            return Err(Error::NotFound(digest.to_owned()));
        }
        // No retention file means we cannot prove it expired: keep it.
        let until = self
            .read_retention(digest)
            .unwrap_or(OffsetDateTime::now_utc() + time::Duration::days(36_500));
        if until > now {
            return Err(Error::Retained {
                digest: digest.to_owned(),
                until,
            });
        }
        let path = self.path(digest);
        let mut perms = std::fs::metadata(&path)?.permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&path, perms)?;
        std::fs::remove_file(path)?;
        std::fs::remove_file(self.retain_path(digest))?;
        Ok(())
    }
}

fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    loop {
        let name = format!(".tmp-{}-{}", std::process::id(), rand_suffix());
        let path = dir.join(name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// Blobs in PostgreSQL, table `evidence_blobs`.
#[derive(Debug, Clone)]
pub struct PgBlobStore {
    pool: PgPool,
}

/// The schema. Not a sqlx migration: the ledger's migrator owns `_sqlx_migrations` in this
/// database. Idempotent, run under an advisory lock so replicas starting together agree.
const SCHEMA: &[&str] = &[
    "SELECT pg_advisory_xact_lock(7170001)",
    "CREATE TABLE IF NOT EXISTS evidence_blobs (
        digest TEXT PRIMARY KEY CHECK (digest ~ '^[0-9a-f]{64}$'),
        content BYTEA NOT NULL,
        size BIGINT NOT NULL,
        stored_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        retain_until TIMESTAMPTZ NOT NULL)",
    "CREATE OR REPLACE FUNCTION evidence_blobs_guard() RETURNS trigger AS $$
     BEGIN
       IF TG_OP = 'DELETE' THEN
         IF OLD.retain_until > now() THEN
           RAISE EXCEPTION 'evidence blob % is retained until %', OLD.digest, OLD.retain_until;
         END IF;
         RETURN OLD;
       END IF;
       IF NEW.digest <> OLD.digest OR NEW.content <> OLD.content OR NEW.size <> OLD.size
          OR NEW.stored_at <> OLD.stored_at OR NEW.retain_until < OLD.retain_until THEN
         RAISE EXCEPTION 'evidence blob % is write-once (only its retention may be extended)', OLD.digest;
       END IF;
       RETURN NEW;
     END $$ LANGUAGE plpgsql",
    "DROP TRIGGER IF EXISTS evidence_blobs_guard ON evidence_blobs",
    "CREATE TRIGGER evidence_blobs_guard BEFORE UPDATE OR DELETE ON evidence_blobs
     FOR EACH ROW EXECUTE FUNCTION evidence_blobs_guard()",
    "CREATE OR REPLACE FUNCTION evidence_blobs_no_truncate() RETURNS trigger AS $$
     BEGIN RAISE EXCEPTION 'evidence_blobs cannot be truncated'; END $$ LANGUAGE plpgsql",
    "DROP TRIGGER IF EXISTS evidence_blobs_no_truncate ON evidence_blobs",
    "CREATE TRIGGER evidence_blobs_no_truncate BEFORE TRUNCATE ON evidence_blobs
     FOR EACH STATEMENT EXECUTE FUNCTION evidence_blobs_no_truncate()",
];

impl PgBlobStore {
    /// Inserts one row with binary COPY, sending the content in chunks: a bound parameter
    /// would be copied whole into the driver's buffers (and regrown), several times the file.
    async fn copy_in(
        &self,
        digest: &str,
        bytes: &[u8],
        retain_until: OffsetDateTime,
    ) -> Result<(), sqlx::Error> {
        const CHUNK: usize = 256 * 1024;
        // Microseconds since 2000-01-01 UTC, PostgreSQL's timestamptz epoch.
        let pg_epoch = time::macros::datetime!(2000-01-01 0:00 UTC);
        let micros =
            i64::try_from((retain_until - pg_epoch).whole_microseconds()).unwrap_or(i64::MAX);
        let content_len = i32::try_from(bytes.len())
            .map_err(|_| sqlx::Error::Protocol("blob over 2 GiB".into()))?;
        let mut head = Vec::with_capacity(128);
        head.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        head.extend_from_slice(&0i32.to_be_bytes()); // flags
        head.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        head.extend_from_slice(&4i16.to_be_bytes()); // fields in the tuple
        head.extend_from_slice(&(digest.len() as i32).to_be_bytes());
        head.extend_from_slice(digest.as_bytes());
        head.extend_from_slice(&8i32.to_be_bytes());
        head.extend_from_slice(&(bytes.len() as i64).to_be_bytes());
        head.extend_from_slice(&8i32.to_be_bytes());
        head.extend_from_slice(&micros.to_be_bytes());
        head.extend_from_slice(&content_len.to_be_bytes());
        let mut conn = self.pool.acquire().await?;
        let mut copy = conn
            .copy_in_raw("COPY evidence_blobs (digest, size, retain_until, content) FROM STDIN (FORMAT binary)")
            .await?;
        copy.send(head).await?;
        for chunk in bytes.chunks(CHUNK) {
            copy.send(chunk).await?;
        }
        copy.send(&(-1i16).to_be_bytes()[..]).await?;
        copy.finish().await?;
        Ok(())
    }

    pub async fn connect(pool: PgPool) -> Result<Self> {
        let mut tx = pool.begin().await?;
        for stmt in SCHEMA {
            sqlx::query(stmt).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(Self { pool })
    }
}

#[async_trait::async_trait]
impl BlobStore for PgBlobStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn put(&self, bytes: &[u8], retain_until: OffsetDateTime) -> Result<Stored> {
        let digest = crate::digest(bytes);
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM evidence_blobs WHERE digest = $1")
                .bind(&digest)
                .fetch_optional(&self.pool)
                .await?;
        let created = if exists.is_some() {
            false
        } else {
            match self.copy_in(&digest, bytes, retain_until).await {
                Ok(()) => true,
                // A concurrent writer of the same bytes got there first.
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => false,
                Err(e) => return Err(e.into()),
            }
        };
        if !created {
            sqlx::query("UPDATE evidence_blobs SET retain_until = $2 WHERE digest = $1 AND retain_until < $2")
                .bind(&digest)
                .bind(retain_until)
                .execute(&self.pool)
                .await?;
        }
        Ok(Stored { digest, created })
    }

    async fn get(&self, digest: &str) -> Result<Vec<u8>> {
        check_digest(digest)?;
        let bytes: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT content FROM evidence_blobs WHERE digest = $1")
                .bind(digest)
                .fetch_optional(&self.pool)
                .await?;
        let bytes = bytes.ok_or_else(|| Error::NotFound(digest.to_owned()))?;
        if crate::digest(&bytes) != digest {
            return Err(Error::Corrupt(digest.to_owned()));
        }
        Ok(bytes)
    }

    async fn delete(&self, digest: &str, now: OffsetDateTime) -> Result<()> {
        check_digest(digest)?;
        let until: Option<OffsetDateTime> =
            sqlx::query_scalar("SELECT retain_until FROM evidence_blobs WHERE digest = $1")
                .bind(digest)
                .fetch_optional(&self.pool)
                .await?;
        let until = until.ok_or_else(|| Error::NotFound(digest.to_owned()))?;
        if until > now {
            return Err(Error::Retained {
                digest: digest.to_owned(),
                until,
            });
        }
        sqlx::query("DELETE FROM evidence_blobs WHERE digest = $1")
            .bind(digest)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
