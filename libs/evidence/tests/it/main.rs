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

mod s3 {
    use super::*;
    use goose_evidence::blob::s3::{S3BlobStore, S3Config};
    use goose_testkit::{S3Server, S3_TEST_KEY};

    fn config(server: &S3Server, bucket: &str) -> S3Config {
        S3Config {
            bucket: bucket.into(),
            endpoint: Some(server.endpoint()),
            region: "us-east-1".into(),
            access_key_id: S3_TEST_KEY.0.into(),
            secret_access_key: S3_TEST_KEY.1.into(),
            prefix: "evidence".into(),
        }
    }

    #[tokio::test]
    async fn worm_on_an_s3_server_with_object_lock() {
        let server = S3Server::start().unwrap();
        let store = S3BlobStore::create_bucket(config(&server, "goose-worm"), 1)
            .await
            .unwrap();
        let now = OffsetDateTime::now_utc();
        let bytes = b"<testsuite><testcase name=\"a\"/></testsuite>".to_vec();
        let a = store.put(&bytes, now + Duration::days(30)).await.unwrap();
        assert!(a.created);
        let b = store.put(&bytes, now + Duration::days(1)).await.unwrap();
        assert!(!b.created, "stored once");
        assert_eq!(store.get(&a.digest).await.unwrap(), bytes);
        let e = store.get(&"0".repeat(64)).await.unwrap_err();
        assert!(matches!(e, Error::NotFound(_)), "{e}");

        // The retention is the server's, set on the write: our delete is refused with the
        // date, and so is the raw delete of the version by someone holding the bucket's
        // full credentials.
        let e = store.delete(&a.digest, now).await.unwrap_err();
        match e {
            Error::Retained { until, .. } => {
                assert!((until - (now + Duration::days(30))).abs() < Duration::seconds(2))
            }
            other => panic!("{other}"),
        }
        let status = store.force_delete_version(&a.digest).await.unwrap();
        assert_eq!(
            status.as_u16(),
            403,
            "the server refuses deleting a locked version"
        );
        assert_eq!(store.get(&a.digest).await.unwrap(), bytes, "still there");

        // A later retention extends it.
        store.put(&bytes, now + Duration::days(60)).await.unwrap();
        let s = store.stats().await.unwrap().unwrap();
        assert_eq!((s.objects, s.bytes), (1, bytes.len() as u64));
        let earliest = s.earliest_retention.unwrap();
        assert!((earliest - (now + Duration::days(60))).abs() < Duration::seconds(2));
        assert!(s.oldest_write.is_some());

        // Someone with the credentials writes other bytes under the blob's key (a new
        // version): reading it is refused as corrupt, not served.
        let other = S3BlobStore::connect(config(&server, "goose-worm"))
            .await
            .unwrap();
        // (moto does not check signatures: a plain PUT stands for a signed one here.)
        let key = format!("evidence/{}/{}", &a.digest[..2], a.digest);
        let forged = b"<testsuite/>".to_vec();
        use base64::Engine as _;
        use md5::Digest as _;
        let status = reqwest::Client::new()
            .put(format!("{}/goose-worm/{key}", server.endpoint()))
            .header(
                "content-md5",
                base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&forged)),
            )
            .body(forged)
            .send()
            .await
            .unwrap()
            .status();
        if status.is_success() {
            // Real S3 keeps the locked version and adds the forged one as the newest: what we
            // read is checked against the address, so it is refused, never served.
            let e = other.get(&a.digest).await.unwrap_err();
            assert!(matches!(e, Error::Corrupt(_)), "{e}");
        } else {
            // moto refuses any new version of a locked key.
            assert_eq!(status.as_u16(), 403);
            assert_eq!(other.get(&a.digest).await.unwrap(), bytes);
        }
    }

    #[tokio::test]
    async fn a_bucket_without_object_lock_is_refused() {
        let server = S3Server::start().unwrap();
        // A bucket made the ordinary way, without Object Lock (moto takes unsigned requests).
        let client = reqwest::Client::new();
        let status = client
            .put(format!("{}/plain-bucket", server.endpoint()))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "{status}");
        let e = S3BlobStore::connect(config(&server, "plain-bucket"))
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("bucket plain-bucket has no Object Lock"),
            "{e}"
        );
    }
}
