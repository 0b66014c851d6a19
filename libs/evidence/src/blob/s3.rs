//! Write-once blobs in an S3 bucket with Object Lock (seed 003: WORM storage, S3 Object Lock,
//! compliance mode), through the `object_store` crate.
//!
//! - **put** is one `PutObject` with `If-None-Match: *` (never overwrites), the retention set
//!   on the write itself (`x-amz-object-lock-mode: COMPLIANCE`,
//!   `x-amz-object-lock-retain-until-date`, `Content-MD5` as S3 requires for locked writes),
//!   signed with `object_store`'s SigV4 signer: `object_store`'s own `put` cannot send the
//!   Object Lock headers (signed headers must be set before signing). The same bytes again
//!   extend the retention (`PutObjectRetention`), never shorten it.
//! - **get** is `object_store`'s `get`, checked against the digest.
//! - **delete** deletes the object's *version* (a plain delete in a versioned bucket only adds
//!   a delete marker): S3 refuses it before the retention date, in compliance mode even to the
//!   account's root, and so do we, naming the date.
//!
//! The bucket must have Object Lock enabled (checked at connect; [`S3BlobStore::create_bucket`]
//! makes one, with a default compliance retention, for development and tests).

use super::{check_digest, BlobStats, BlobStore, Error, Result, Stored};
use base64::Engine as _;
use md5::Digest as _;
use object_store::aws::{AmazonS3, AmazonS3Builder, AwsAuthorizer, AwsCredential};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::sync::Arc;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Where the bucket is and how to reach it.
#[derive(Debug, Clone)]
pub struct S3Config {
    pub bucket: String,
    /// `http(s)://host:port` of an S3-compatible server; AWS when absent.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Key prefix of the blobs (`evidence/`).
    pub prefix: String,
}

impl S3Config {
    /// `s3://BUCKET[/PREFIX]`, with the endpoint, region and credentials from the standard
    /// `AWS_ENDPOINT_URL`, `AWS_REGION` (default us-east-1), `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY` variables.
    pub fn from_url_and_env(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| Error::Io(format!("{url:?} is not an s3://BUCKET[/PREFIX] URL")))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, "evidence"));
        if bucket.is_empty() {
            return Err(Error::Io(format!("{url:?} names no bucket")));
        }
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let need =
            |k: &str| var(k).ok_or_else(|| Error::Io(format!("{k} is not set (needed for {url})")));
        Ok(Self {
            bucket: bucket.to_owned(),
            endpoint: var("AWS_ENDPOINT_URL"),
            region: var("AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
            access_key_id: need("AWS_ACCESS_KEY_ID")?,
            secret_access_key: need("AWS_SECRET_ACCESS_KEY")?,
            prefix: prefix.trim_matches('/').to_owned(),
        })
    }

    fn base_url(&self) -> String {
        match &self.endpoint {
            Some(e) => format!("{}/{}", e.trim_end_matches('/'), self.bucket),
            None => format!("https://s3.{}.amazonaws.com/{}", self.region, self.bucket),
        }
    }
}

/// Blobs in an S3 bucket with Object Lock in compliance mode.
#[derive(Debug, Clone)]
pub struct S3BlobStore {
    config: S3Config,
    store: Arc<AmazonS3>,
    http: reqwest::Client,
}

fn io(e: impl std::fmt::Display) -> Error {
    Error::Io(e.to_string())
}

fn iso(t: OffsetDateTime) -> Result<String> {
    // S3 wants whole seconds in UTC.
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .map_err(io)?;
    t.format(&Rfc3339).map_err(io)
}

/// The text of the first `<tag>` element in an S3 XML answer.
fn xml_text(body: &str, tag: &str) -> Option<String> {
    let mut reader = quick_xml::Reader::from_str(body);
    let mut inside = false;
    loop {
        match reader.read_event().ok()? {
            quick_xml::events::Event::Start(e) if e.local_name().as_ref() == tag.as_bytes() => {
                inside = true;
            }
            quick_xml::events::Event::Text(t) if inside => {
                return Some(String::from_utf8_lossy(&t).trim().to_owned());
            }
            quick_xml::events::Event::Eof => return None,
            _ => {}
        }
    }
}

/// A blob's lock as S3 reports it.
struct Lock {
    version_id: Option<String>,
    retain_until: Option<OffsetDateTime>,
}

impl S3BlobStore {
    /// Connects and checks that the bucket has Object Lock enabled.
    pub async fn connect(config: S3Config) -> Result<Self> {
        let store = Self::open(config)?;
        let (status, body) = store
            .signed(
                reqwest::Method::GET,
                &format!("{}?object-lock", store.config.base_url()),
                vec![],
                Vec::new(),
            )
            .await?;
        if !status.is_success()
            || xml_text(&body, "ObjectLockEnabled").as_deref() != Some("Enabled")
        {
            return Err(Error::Io(format!(
                "bucket {} has no Object Lock ({status}): create it with Object Lock enabled (compliance mode); evidence must not be deletable before its retention date",
                store.config.bucket
            )));
        }
        Ok(store)
    }

    fn open(config: S3Config) -> Result<Self> {
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key);
        if let Some(e) = &config.endpoint {
            b = b
                .with_endpoint(e)
                .with_allow_http(e.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        Ok(Self {
            store: Arc::new(b.build().map_err(io)?),
            http: reqwest::Client::new(),
            config,
        })
    }

    /// Creates the bucket with Object Lock enabled and a default compliance retention of
    /// `default_days` (development and tests; production buckets are made by their owners).
    pub async fn create_bucket(config: S3Config, default_days: u32) -> Result<Self> {
        let store = Self::open(config)?;
        let base = store.config.base_url();
        let (status, body) = store
            .signed(
                reqwest::Method::PUT,
                &base,
                vec![("x-amz-bucket-object-lock-enabled", "true".into())],
                Vec::new(),
            )
            .await?;
        if !status.is_success() && !body.contains("BucketAlreadyOwnedByYou") {
            return Err(Error::Io(format!(
                "creating bucket {}: {status} {body}",
                store.config.bucket
            )));
        }
        let xml = format!(
            "<ObjectLockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Days>{default_days}</Days></DefaultRetention></Rule></ObjectLockConfiguration>"
        );
        let (status, body) = store
            .signed_with_md5(
                reqwest::Method::PUT,
                &format!("{base}?object-lock"),
                vec![],
                xml.into_bytes(),
            )
            .await?;
        if !status.is_success() {
            return Err(Error::Io(format!(
                "configuring Object Lock on {}: {status} {body}",
                store.config.bucket
            )));
        }
        Self::connect(store.config).await
    }

    fn key(&self, digest: &str) -> String {
        if self.config.prefix.is_empty() {
            format!("{}/{digest}", &digest[..2])
        } else {
            format!("{}/{}/{digest}", self.config.prefix, &digest[..2])
        }
    }

    fn url(&self, digest: &str) -> String {
        format!("{}/{}", self.config.base_url(), self.key(digest))
    }

    async fn credential(&self) -> Result<Arc<AwsCredential>> {
        self.store.credentials().get_credential().await.map_err(io)
    }

    /// Sends a SigV4-signed request (every header given is signed).
    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    ) -> Result<reqwest::Response> {
        let cred = self.credential().await?;
        let mut req = http::Request::builder().method(method.clone()).uri(url);
        for (k, v) in &headers {
            req = req.header(*k, v);
        }
        let mut req: object_store::client::HttpRequest =
            req.body(body.clone().into()).map_err(io)?;
        AwsAuthorizer::new(&cred, "s3", &self.config.region).authorize(&mut req, None);
        let mut out = self.http.request(method, url).body(body);
        for (k, v) in req.headers() {
            out = out.header(k, v);
        }
        out.send().await.map_err(io)
    }

    async fn signed(
        &self,
        method: reqwest::Method,
        url: &str,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    ) -> Result<(reqwest::StatusCode, String)> {
        let resp = self.send(method, url, headers, body).await?;
        let status = resp.status();
        Ok((status, resp.text().await.unwrap_or_default()))
    }

    async fn signed_with_md5(
        &self,
        method: reqwest::Method,
        url: &str,
        mut headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    ) -> Result<(reqwest::StatusCode, String)> {
        let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&body));
        headers.push(("content-md5", md5));
        self.signed(method, url, headers, body).await
    }

    /// The object's version and retention date, or `None` when there is no such object.
    async fn lock(&self, digest: &str) -> Result<Option<Lock>> {
        let resp = self
            .send(reqwest::Method::HEAD, &self.url(digest), vec![], Vec::new())
            .await?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(Error::Io(format!(
                "HEAD {}: {}",
                self.key(digest),
                resp.status()
            )));
        }
        let h = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Ok(Some(Lock {
            version_id: h("x-amz-version-id"),
            retain_until: h("x-amz-object-lock-retain-until-date")
                .and_then(|t| OffsetDateTime::parse(&t, &Rfc3339).ok()),
        }))
    }

    /// Extends an object's compliance retention to `until` (S3 refuses shortening it).
    async fn extend(&self, digest: &str, lock: &Lock, until: OffsetDateTime) -> Result<()> {
        if lock.retain_until.is_some_and(|cur| cur >= until) {
            return Ok(());
        }
        let mut url = format!("{}?retention", self.url(digest));
        if let Some(v) = &lock.version_id {
            url.push_str(&format!("&versionId={v}"));
        }
        let xml = format!(
            "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>COMPLIANCE</Mode><RetainUntilDate>{}</RetainUntilDate></Retention>",
            iso(until)?
        );
        let (status, body) = self
            .signed_with_md5(reqwest::Method::PUT, &url, vec![], xml.into_bytes())
            .await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(Error::Io(format!(
                "extending the retention of {digest}: {status} {body}"
            )))
        }
    }

    /// Counts the objects, their bytes, the oldest write and the earliest retention date.
    pub async fn count(&self) -> Result<BlobStats> {
        use futures::TryStreamExt as _;
        let prefix = ObjectPath::from(self.config.prefix.as_str());
        let objects: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(io)?;
        let mut s = BlobStats {
            objects: objects.len() as u64,
            bytes: objects.iter().map(|o| o.size).sum(),
            oldest_write: objects
                .iter()
                .map(|o| o.last_modified.timestamp())
                .min()
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok()),
            earliest_retention: None,
        };
        for o in &objects {
            let digest = o.location.filename().unwrap_or_default();
            if check_digest(digest).is_ok() {
                if let Some(Lock {
                    retain_until: Some(t),
                    ..
                }) = self.lock(digest).await?
                {
                    s.earliest_retention = Some(s.earliest_retention.map_or(t, |e| e.min(t)));
                }
            }
        }
        Ok(s)
    }

    /// One locked, create-only `PutObject` of `bytes` at `url`: `Ok(true)` when written,
    /// `Ok(false)` when an object is already there.
    async fn put_locked(
        &self,
        url: &str,
        bytes: &[u8],
        retain_until: OffsetDateTime,
    ) -> Result<bool> {
        let (status, body) = self
            .signed_with_md5(
                reqwest::Method::PUT,
                url,
                vec![
                    ("if-none-match", "*".into()),
                    ("x-amz-object-lock-mode", "COMPLIANCE".into()),
                    ("x-amz-object-lock-retain-until-date", iso(retain_until)?),
                ],
                bytes.to_vec(),
            )
            .await?;
        match status.as_u16() {
            200 => Ok(true),
            409 | 412 => Ok(false),
            _ => Err(Error::Io(format!("storing {url}: {status} {body}"))),
        }
    }

    /// Keeps `bytes` under `key` (outside the blob prefix: `checkpoints/...`), write-once, in
    /// compliance mode until `retain_until`. `Ok(false)` when the key already holds an object.
    pub async fn put_named(
        &self,
        key: &str,
        bytes: &[u8],
        retain_until: OffsetDateTime,
    ) -> Result<bool> {
        if key.is_empty()
            || key
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(Error::Io(format!("invalid object key {key:?}")));
        }
        self.put_locked(
            &format!("{}/{key}", self.config.base_url()),
            bytes,
            retain_until,
        )
        .await
    }

    /// The object under `key` (see [`Self::put_named`]), or `None`.
    pub async fn get_named(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self.store.get(&ObjectPath::from(key)).await {
            Ok(g) => Ok(Some(g.bytes().await.map_err(io)?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    /// Deletes the current version of a blob as an attacker holding the bucket's full
    /// credentials would: no retention check on our side (tests show S3 refuses).
    pub async fn force_delete_version(&self, digest: &str) -> Result<reqwest::StatusCode> {
        let lock = self
            .lock(digest)
            .await?
            .ok_or_else(|| Error::NotFound(digest.to_owned()))?;
        let mut url = self.url(digest);
        if let Some(v) = &lock.version_id {
            url.push_str(&format!("?versionId={v}"));
        }
        Ok(self
            .signed(reqwest::Method::DELETE, &url, vec![], Vec::new())
            .await?
            .0)
    }
}

#[async_trait::async_trait]
impl BlobStore for S3BlobStore {
    fn backend(&self) -> &'static str {
        "s3"
    }

    async fn stats(&self) -> Result<Option<BlobStats>> {
        self.count().await.map(Some)
    }

    async fn put(&self, bytes: &[u8], retain_until: OffsetDateTime) -> Result<Stored> {
        let digest = crate::digest(bytes);
        if let Some(lock) = self.lock(&digest).await? {
            self.extend(&digest, &lock, retain_until).await?;
            return Ok(Stored {
                digest,
                created: false,
            });
        }
        if self
            .put_locked(&self.url(&digest), bytes, retain_until)
            .await?
        {
            return Ok(Stored {
                digest,
                created: true,
            });
        }
        // A concurrent writer of the same bytes got there first: keep the longer retention.
        if let Some(lock) = self.lock(&digest).await? {
            self.extend(&digest, &lock, retain_until).await?;
        }
        Ok(Stored {
            digest,
            created: false,
        })
    }

    async fn get(&self, digest: &str) -> Result<Vec<u8>> {
        check_digest(digest)?;
        let got = match self.store.get(&ObjectPath::from(self.key(digest))).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(Error::NotFound(digest.to_owned()))
            }
            Err(e) => return Err(io(e)),
        };
        let bytes = got.bytes().await.map_err(io)?.to_vec();
        if crate::digest(&bytes) != digest {
            return Err(Error::Corrupt(digest.to_owned()));
        }
        Ok(bytes)
    }

    async fn delete(&self, digest: &str, now: OffsetDateTime) -> Result<()> {
        check_digest(digest)?;
        let lock = self
            .lock(digest)
            .await?
            .ok_or_else(|| Error::NotFound(digest.to_owned()))?;
        // No retention date means we cannot prove it expired: keep it.
        let until = lock
            .retain_until
            .unwrap_or(now + time::Duration::days(36_500));
        if until > now {
            return Err(Error::Retained {
                digest: digest.to_owned(),
                until,
            });
        }
        let status = self.force_delete_version(digest).await?;
        if status.is_success() {
            Ok(())
        } else if status == reqwest::StatusCode::FORBIDDEN {
            Err(Error::Retained {
                digest: digest.to_owned(),
                until,
            })
        } else {
            Err(Error::Io(format!("deleting {digest}: {status}")))
        }
    }
}
