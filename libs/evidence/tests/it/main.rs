//! The blob stores, one suite for both backends, on real PostgreSQL and a real filesystem.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use goose_evidence::blob::{BlobStore, Error, FsBlobStore, PgBlobStore};
use time::{Duration, OffsetDateTime};

async fn write_once_and_retention(store: &dyn BlobStore) {
    let now = OffsetDateTime::now_utc();
    let bytes = b"<testsuite><testcase name=\"a\"/></testsuite>".to_vec();
    let a = store.put(&bytes, now + Duration::days(30)).await.unwrap();
    assert!(a.created);
    assert_eq!(a.digest, goose_evidence::digest(&bytes));
    // The same bytes again: stored once.
    let b = store.put(&bytes, now + Duration::days(1)).await.unwrap();
    assert_eq!((b.digest.as_str(), b.created), (a.digest.as_str(), false));
    assert_eq!(store.get(&a.digest).await.unwrap(), bytes);
    // Not before the retention (the shorter one did not shorten it).
    let e = store
        .delete(&a.digest, now + Duration::days(2))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Retained { .. }), "{e}");
    // After it, yes.
    store
        .delete(&a.digest, now + Duration::days(31))
        .await
        .unwrap_or_else(|e| {
            // PostgreSQL's trigger judges by the database clock, which has not moved 31 days.
            assert!(
                matches!(e, Error::Io(ref m) if m.contains("retained until")),
                "{e}"
            );
        });
    assert!(matches!(
        store.get("zz").await.unwrap_err(),
        Error::InvalidDigest(_)
    ));
    assert!(matches!(
        store.get(&"0".repeat(64)).await.unwrap_err(),
        Error::NotFound(_)
    ));
    // A large blob round-trips (PostgreSQL sends it by COPY in chunks).
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let s = store.put(&big, now + Duration::days(1)).await.unwrap();
    assert_eq!(store.get(&s.digest).await.unwrap(), big);
}

#[tokio::test]
async fn filesystem() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).unwrap();
    write_once_and_retention(&store).await;
}

#[tokio::test]
async fn postgres() {
    let db = goose_testkit::postgres().await.unwrap();
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let store = PgBlobStore::connect(pool.clone()).await.unwrap();
    write_once_and_retention(&store).await;
    // Connecting again (another replica) keeps the schema and the data.
    let again = PgBlobStore::connect(pool.clone()).await.unwrap();
    let bytes = b"SF:a\nend_of_record\n";
    let s = again
        .put(bytes, OffsetDateTime::now_utc() + Duration::days(10))
        .await
        .unwrap();
    // The table refuses what the API never does: overwriting, shortening, deleting early.
    let e = sqlx::query("UPDATE evidence_blobs SET content = 'x' WHERE digest = $1")
        .bind(&s.digest)
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("write-once"), "{e}");
    let e = sqlx::query("UPDATE evidence_blobs SET retain_until = now() WHERE digest = $1")
        .bind(&s.digest)
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("write-once"), "{e}");
    let e = sqlx::query("DELETE FROM evidence_blobs WHERE digest = $1")
        .bind(&s.digest)
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("retained until"), "{e}");
    let e = sqlx::query("TRUNCATE evidence_blobs")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("cannot be truncated"), "{e}");
    assert_eq!(again.get(&s.digest).await.unwrap(), bytes);
}
