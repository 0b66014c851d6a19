//! The four services in one process on the embedded ledger (SQLite) and the in-process bus —
//! between the domain's tests and the multi-process e2e: what the service shape promises,
//! checked through each service's real router.

use crate::support::{serve_in_process, user_with_token, Http, InProcess};
use goose_bus::memory::MemoryBus;
use goose_ledger::{NoteKey, Vkey};
use goose_platform::{BusChoice, Platform, PlatformConfig, Storage};
use serde_json::json;
use std::sync::Arc;

pub(crate) struct System {
    pub(crate) http: Http,
    pub(crate) admin: String,
    /// The platform the services run on (to start another replica of one).
    pub(crate) platform: goose_platform::Platform,
    _dir: tempfile::TempDir,
}

impl System {
    /// The embedded ledger's file (what someone with access to the host could edit).
    pub(crate) fn ledger_file(&self) -> std::path::PathBuf {
        self._dir.path().join("ledger.db")
    }
}

/// A platform on `storage` with the in-process bus, and the keys of its services.
pub(crate) async fn platform_on(storage: Storage) -> (Platform, Arc<NoteKey>, Arc<NoteKey>) {
    let token_key = Arc::new(NoteKey::generate("inproc-tokens").unwrap());
    let log_key = Arc::new(NoteKey::generate("inproc.test/log").unwrap());
    let platform = Platform::start(PlatformConfig {
        storage,
        bus: BusChoice::Memory(MemoryBus::new()),
        service_key: log_key.clone(),
        token_keys: vec![Vkey::parse(&token_key.vkey()).unwrap()],
        relay: goose_platform::Relay::All,
        log_origin: "inproc.test/log".into(),
        service_name: None,
        snapshot_dir: None,
    })
    .await
    .unwrap();
    (platform, token_key, log_key)
}

pub(crate) async fn start() -> System {
    start_with_policy(None).await
}

/// [`start`] with the orchestrator on `policy` (YAML) instead of the shipped one.
pub(crate) async fn start_with_policy(policy: Option<String>) -> System {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (platform, token_key, log_key) = platform_on(Storage::Sqlite(d.join("ledger.db"))).await;
    let (http, admin) = serve_in_process(InProcess {
        platform: platform.clone(),
        token_key,
        log_key: log_key.clone(),
        blobs: Arc::new(goose_evidence::blob::FsBlobStore::open(&d.join("blobs")).unwrap()),
        leases: Arc::new(goose_orchestrator::lease::MemoryLeases::default()),
        admin_key_file: d.join("admin.key"),
        policy,
        identity: None,
    })
    .await;
    System {
        http,
        admin,
        platform,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_in_one_process_keep_the_shape() {
    let sys = start().await;
    let (h, root) = (&sys.http, sys.admin.as_str());

    // rbac: a write is visible to the next read (read-your-writes through the view), one read
    // path for list and get, 404 as problem+json for what does not exist.
    let ada = user_with_token(h, root, "ada", &["approver"]).await;
    let got = h.ok("GET", "/v1/users/ada", root, None).await;
    assert_eq!(got["roles"], json!(["approver"]), "{got}");
    let all = h.ok("GET", "/v1/users", root, None).await;
    assert!(
        all.as_array().unwrap().iter().any(|u| u["name"] == "ada"),
        "{all}"
    );
    let (s, v) = h.call("GET", "/v1/users/nobody", Some(root), None).await;
    assert_eq!((s, v["status"].as_u64()), (404, Some(404)), "{v}");
    // A domain error through the one mapping: an unknown role is the client's 400.
    let (s, v) = h
        .call("DELETE", "/v1/users/ada/roles/wizard", Some(root), None)
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("unknown role"),
        "{v}"
    );
    // A state conflict: assigning a role held already.
    let (s, v) = h
        .call(
            "POST",
            "/v1/users/ada/roles",
            Some(root),
            Some(&json!({"role": "approver"})),
        )
        .await;
    assert_eq!(s, 409, "{v}");
    // A body that is not JSON is problem+json too, naming the problem.
    let (s, v) = h
        .raw(
            "POST",
            "/v1/users",
            root,
            "application/json",
            b"{not json".to_vec(),
        )
        .await;
    assert_eq!((s, v["status"].as_u64()), (400, Some(400)), "{v}");
    // An undeclared method on a served path: 405 with the methods that are.
    let (s, v) = h.call("PUT", "/v1/users", Some(root), None).await;
    assert_eq!(s, 405, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("GET, POST")
            || v["detail"].as_str().unwrap().contains("POST, GET"),
        "{v}"
    );

    // Approvals: a grant without a body is a grant; the requester cannot decide (403).
    let op = user_with_token(h, root, "op", &["operator"]).await;
    let raised = h
        .ok(
            "POST",
            "/v1/approvals",
            &op,
            Some(&json!({"kind": "promotion", "subject": "svc@1", "impact": "low"})),
        )
        .await;
    let id = raised["id"].as_str().unwrap();
    let (s, v) = h
        .call(
            "POST",
            &format!("/v1/approvals/{id}/grant"),
            Some(&op),
            None,
        )
        .await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = h
        .call(
            "POST",
            &format!("/v1/approvals/{id}/grant"),
            Some(&ada),
            None,
        )
        .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("approved")), "{v}");

    // registry: a catalog that does not fit is 422 and nothing is applied.
    let backstage = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: svc-b\nspec:\n  type: service\n  lifecycle: production\n  owner: team-b\n  dependsOn:\n    - component:default/svc-missing\n";
    let (s, v) = h
        .raw(
            "POST",
            "/v1/services",
            &op,
            "application/yaml",
            backstage.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    let (s, _) = h.call("GET", "/v1/services/svc-b", Some(root), None).await;
    assert_eq!(s, 404);
    // An invalid org-config is 400 naming the field (here: a missing one).
    let (s, v) = h
        .raw(
            "PUT",
            "/v1/org-config",
            root,
            "application/yaml",
            b"organization: acme\nretention:\n  audit_log_days: 0\n".to_vec(),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("missing field `modes`"),
        "{v}"
    );

    // evidence and orchestrator: one version rule.
    let (s, v) = h
        .raw(
            "POST",
            "/v1/evidence?service=svc-a&version=1%200&kind=tests",
            &op,
            "application/octet-stream",
            b"<testsuite/>".to_vec(),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("must be 1 to 64"),
        "{v}"
    );
    let (s, v) = h
        .call(
            "POST",
            "/v1/promotions",
            Some(&op),
            Some(&json!({"service": "svc-a", "version": "1 0"})),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("must be 1 to 64"),
        "{v}"
    );
    // A valid version outside the org's scheme (semver by default) is refused, naming it.
    let (s, v) = h
        .call(
            "POST",
            "/v1/promotions",
            Some(&op),
            Some(&json!({"service": "svc-a", "version": "-1"})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("org-config packaging.version_scheme is semver"),
        "{v}"
    );

    // The org's version scheme (semver by default) holds for packages, named when refused.
    let (s, v) = h
        .call(
            "POST",
            "/v1/packages",
            Some(&op),
            Some(&json!({"services": ["svc-a"], "version": "2026.12"})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("org-config packaging.version_scheme is semver"),
        "{v}"
    );

    // The platform's own routes: the event contract, and readiness.
    let (s, v) = h.call("GET", "/asyncapi.json", None, None).await;
    assert_eq!((s, v["asyncapi"].as_str()), (200, Some("3.0.0")));
    let r = reqwest::get(format!("{}/readyz", h.base)).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.unwrap().starts_with("ready"));
}

/// No hole in the audit trail: when the ledger refuses to record a refused approval attempt
/// (here: a trigger a DBA could add, failing such rows), the request fails with 503 instead of
/// answering as if the attempt were on the record, and nothing is decided.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unrecordable_refusal_fails_the_request() {
    let db = goose_testkit::postgres().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (platform, token_key, log_key) = platform_on(Storage::Postgres(db.url.clone())).await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let (h, root) = serve_in_process(InProcess {
        platform,
        token_key,
        log_key,
        blobs: Arc::new(
            goose_evidence::blob::PgBlobStore::connect(pool.clone())
                .await
                .unwrap(),
        ),
        leases: Arc::new(goose_orchestrator::lease::MemoryLeases::default()),
        admin_key_file: dir.path().join("admin.key"),
        policy: None,
        identity: None,
    })
    .await;
    let op = user_with_token(&h, &root, "op", &["operator", "approver"]).await;
    let raised = h
        .ok(
            "POST",
            "/v1/approvals",
            &op,
            Some(&json!({"kind": "promotion", "subject": "svc@1", "impact": "low"})),
        )
        .await;
    let id = raised["id"].as_str().unwrap().to_owned();
    for stmt in [
        "CREATE FUNCTION refuse_refusals() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refusals are not accepted today'; END $$",
        "CREATE TRIGGER refuse_refusals BEFORE INSERT ON ledger_events FOR EACH ROW WHEN (NEW.event_type = 'ApprovalRefused') EXECUTE FUNCTION refuse_refusals()",
    ] {
        sqlx::query(stmt).execute(&pool).await.unwrap();
    }
    // Self-approval is refused; recording that refusal fails: 503, not 403.
    let (s, v) = h
        .call(
            "POST",
            &format!("/v1/approvals/{id}/grant"),
            Some(&op),
            None,
        )
        .await;
    assert_eq!(s, 503, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("could not be recorded"),
        "{v}"
    );
    let after = h
        .ok("GET", &format!("/v1/approvals/{id}"), &root, None)
        .await;
    assert_eq!(
        (after["status"].as_str(), after["refusals"].as_u64()),
        (Some("pending"), Some(0)),
        "{after}"
    );
    // With the ledger recording again, the same attempt is refused and on the record.
    sqlx::query("DROP TRIGGER refuse_refusals ON ledger_events")
        .execute(&pool)
        .await
        .unwrap();
    let (s, v) = h
        .call(
            "POST",
            &format!("/v1/approvals/{id}/grant"),
            Some(&op),
            None,
        )
        .await;
    assert_eq!(s, 403, "{v}");
    let after = h
        .ok("GET", &format!("/v1/approvals/{id}"), &root, None)
        .await;
    assert_eq!(after["refusals"].as_u64(), Some(1), "{after}");
}

/// An org-config event the evidence service cannot read (a newer writer's schema, a bug): the
/// previous limits stay in force, the service says it is not ready (503 naming the event), and
/// a readable org-config makes it ready again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_org_config_keeps_the_old_limits_and_the_service_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (platform, token_key, log_key) = platform_on(Storage::Sqlite(d.join("ledger.db"))).await;
    let (h, root) = serve_in_process(InProcess {
        platform: platform.clone(),
        token_key,
        log_key,
        blobs: Arc::new(goose_evidence::blob::FsBlobStore::open(&d.join("blobs")).unwrap()),
        leases: Arc::new(goose_orchestrator::lease::MemoryLeases::default()),
        admin_key_file: d.join("admin.key"),
        policy: None,
        identity: None,
    })
    .await;
    let op = user_with_token(&h, &root, "op", &["operator"]).await;
    h.raw(
        "POST",
        "/v1/services",
        &op,
        "application/yaml",
        b"service:\n  name: svc-a\n  spec:\n    api_version: v1\n    compliance_mode: sandbox\n"
            .to_vec(),
    )
    .await;
    let limited = b"organization: acme\nmodes:\n  sandbox: {cpu_millicores: 500, memory_mib: 512, max_replicas: 2}\n  compliant: {cpu_millicores: 2000, memory_mib: 4096, max_replicas: 10}\nevidence:\n  max_upload_bytes: 1024\n";
    let (s, v) = h
        .raw(
            "PUT",
            "/v1/org-config",
            &root,
            "application/yaml",
            limited.to_vec(),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // The mode's limits, for rendering the service's deployment.
    let svc = h.ok("GET", "/v1/services/svc-a", &op, None).await;
    assert_eq!(
        svc["resources"],
        json!({"cpu_millicores": 500, "memory_mib": 512, "max_replicas": 2}),
        "{svc}"
    );
    let big = vec![b'x'; 2000];
    let upload = |h: &Http, big: Vec<u8>| {
        let (h, op) = (h.clone(), op.clone());
        async move {
            h.raw(
                "POST",
                "/v1/evidence?service=svc-a&version=1.0.0&kind=junit",
                &op,
                "application/octet-stream",
                big,
            )
            .await
        }
    };
    assert_eq!(upload(&h, big.clone()).await.0, 413);

    // The next org-config event does not decode.
    let stream = goose_ledger::StreamId::new(goose_domain::streams::ORG_CONFIG, "default").unwrap();
    let version = platform
        .ledger
        .read_stream(&stream, 0, 100)
        .await
        .unwrap()
        .len() as u64;
    let bad = goose_ledger::NewEvent::json(
        "OrgConfigSet",
        &json!({"type": "OrgConfigSet", "config": {"organization": 7}, "source": ""}),
        goose_ledger::Metadata::now("registry-v9"),
    )
    .unwrap();
    platform
        .ledger
        .append(&stream, version, vec![bad])
        .await
        .unwrap();
    let r = goose_testkit::eventually(std::time::Duration::from_secs(10), "not ready", || async {
        let r = reqwest::get(format!("{}/readyz", h.base)).await.unwrap();
        (r.status().as_u16() == 503).then_some(r)
    })
    .await
    .unwrap();
    let body = r.text().await.unwrap();
    assert!(
        body.contains("org-config") && body.contains("could not be read"),
        "{body}"
    );
    // The last valid limit still holds.
    assert_eq!(upload(&h, big.clone()).await.0, 413);

    // The registry that cannot load its own stream says so (500 naming the position) rather
    // than overwrite what it cannot read.
    let relaxed = String::from_utf8_lossy(limited)
        .replace("max_upload_bytes: 1024", "max_upload_bytes: 4096");
    let (s, v) = h
        .raw(
            "PUT",
            "/v1/org-config",
            &root,
            "application/yaml",
            relaxed.clone().into_bytes(),
        )
        .await;
    assert_eq!(s, 500, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("does not decode"),
        "{v}"
    );
    // The writer that wrote it (fixed) writes a readable one: ready again, with its limit.
    let good = goose_ledger::NewEvent::json(
        "OrgConfigSet",
        &goose_domain::org_config::OrgConfigEvent::OrgConfigSet {
            config: goose_domain::org_config::OrgConfig::parse(&relaxed).unwrap(),
            source: relaxed.clone(),
        },
        goose_ledger::Metadata::now("registry-v9"),
    )
    .unwrap();
    platform
        .ledger
        .append(&stream, version + 1, vec![good])
        .await
        .unwrap();
    goose_testkit::eventually(
        std::time::Duration::from_secs(10),
        "ready again",
        || async {
            let r = reqwest::get(format!("{}/readyz", h.base)).await.unwrap();
            (r.status().as_u16() == 200).then_some(())
        },
    )
    .await
    .unwrap();
    let (s, v) = upload(
        &h,
        b"<testsuite tests=\"1\"><testcase name=\"t\"/></testsuite>".to_vec(),
    )
    .await;
    assert_eq!(s, 200, "{v}");
}

/// Writes are limited per user: past the burst, 429 with `Retry-After`, as problem+json; reads
/// are not limited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_over_a_users_rate_are_refused_with_429() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (mut platform, token_key, log_key) =
        platform_on(Storage::Sqlite(d.join("ledger.db"))).await;
    platform.rate_limits = goose_runtime::auth::RateLimits {
        public_per_minute: 0,
        writes_per_second: 1,
    };
    let (h, root) = serve_in_process(InProcess {
        platform,
        token_key,
        log_key,
        blobs: Arc::new(goose_evidence::blob::FsBlobStore::open(&d.join("blobs")).unwrap()),
        leases: Arc::new(goose_orchestrator::lease::MemoryLeases::default()),
        admin_key_file: d.join("admin.key"),
        policy: None,
        identity: None,
    })
    .await;
    let client = reqwest::Client::new();
    let mut limited = None;
    for i in 0..6 {
        let resp = client
            .post(format!("{}/v1/users", h.base))
            .bearer_auth(&root)
            .json(&json!({"name": format!("user{i}"), "roles": ["analyst"]}))
            .send()
            .await
            .unwrap();
        if resp.status() == 429 {
            limited = Some((i, resp));
            break;
        }
        assert_eq!(resp.status(), 200);
    }
    let (i, resp) = limited.expect("a 429 within six quick writes");
    assert!(i >= 2, "the burst (2) passes first: refused at write {i}");
    assert_eq!(resp.headers()["retry-after"], "1");
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["status"], 429, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .starts_with("too many requests from this user"),
        "{v}"
    );
    for _ in 0..10 {
        let (s, _) = h.call("GET", "/v1/users", Some(&root), None).await;
        assert_eq!(s, 200, "reads are not limited");
    }
}
