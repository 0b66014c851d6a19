//! Read models survive restarts: goose-rbac with `--snapshot-dir` keeps its views' snapshots
//! when it stops (SIGTERM), and its next start follows the ledger from them — seeing what was
//! written before the stop and while it was down — instead of replaying the log. A snapshot
//! file that is damaged, or that belongs to another log, is refused (and counted) and the
//! view is replayed: the answers stay right either way.

use crate::support::{counter, spawn, terminate, token, user_with_token, wait_healthy, Env, Http};
use std::path::Path;

const VIEWS: [&str; 3] = ["platform-users", "rbac-users", "rbac-approvals"];

fn snapshot_position(dir: &Path, view: &str) -> u64 {
    let text = std::fs::read_to_string(dir.join(format!("{view}.snapshot.json"))).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["next"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_restarts_from_its_snapshots() {
    let db = goose_testkit::postgres().await.unwrap();
    let nats = goose_testkit::nats().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let env = Env::new(&db, &nats, d);
    let snapshots = d.join("snapshots");
    let admin_key_file = d.join("admin.api-key");
    let port = goose_testkit::free_port().unwrap();
    let args = |bootstrap: bool| {
        let mut a = vec![
            format!("--token-key-file={}", d.join("tokens.key").display()),
            format!("--snapshot-dir={}", snapshots.display()),
        ];
        if bootstrap {
            a.push("--bootstrap-admin=root".into());
            a.push(format!("--bootstrap-key-file={}", admin_key_file.display()));
        }
        a
    };
    let r = Http::new(format!("http://127.0.0.1:{port}"));
    let mut rbac = spawn(&env, "goose-rbac", port, &args(true));
    wait_healthy(&r, &mut rbac).await;
    let admin_key = std::fs::read_to_string(&admin_key_file).unwrap();
    let root = token(&r, "root", &admin_key).await;
    user_with_token(&r, &root, "ada", &["approver"]).await;
    // A fresh directory: every view replayed the (short) log.
    for v in VIEWS {
        assert_eq!(
            counter(
                &r,
                "goose_read_model_snapshots_restored_total",
                &format!("view=\"{v}\"")
            )
            .await,
            0.0
        );
    }
    terminate(rbac);
    let size_at_stop = goose_ledger_size(&db.url).await;
    for v in VIEWS {
        let at = snapshot_position(&snapshots, v);
        assert!(
            at > 0 && at <= size_at_stop,
            "{v} kept at the stop: {at} of {size_at_stop}"
        );
    }

    // Written while rbac was down (by another replica, here a second process without a
    // snapshot directory), then rbac starts again from its snapshots.
    let other_port = goose_testkit::free_port().unwrap();
    let other = Http::new(format!("http://127.0.0.1:{other_port}"));
    let mut replica = spawn(
        &env,
        "goose-rbac",
        other_port,
        &[format!(
            "--token-key-file={}",
            d.join("tokens.key").display()
        )],
    );
    wait_healthy(&other, &mut replica).await;
    let root = token(&other, "root", &admin_key).await;
    user_with_token(&other, &root, "bob", &["operator"]).await;
    drop(replica);

    let mut rbac = spawn(&env, "goose-rbac", port, &args(false));
    wait_healthy(&r, &mut rbac).await;
    for v in VIEWS {
        assert_eq!(
            counter(
                &r,
                "goose_read_model_snapshots_restored_total",
                &format!("view=\"{v}\"")
            )
            .await,
            1.0,
            "{v} restored"
        );
    }
    // Users from before the stop and from while it was down are both there.
    let root = token(&r, "root", &admin_key).await;
    let users = r.ok("GET", "/v1/users", &root, None).await;
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    for n in ["root", "ada", "bob"] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    terminate(rbac);

    // A damaged file, and one of another log (same position, another digest): refused,
    // counted, replayed — and the answers are the same.
    std::fs::write(
        snapshots.join("rbac-users.snapshot.json"),
        b"{\"next\": 3, \"stat",
    )
    .unwrap();
    let path = snapshots.join("rbac-approvals.snapshot.json");
    let mut other_log: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    other_log["last_digest"] = serde_json::Value::String("ab".repeat(32));
    std::fs::write(&path, other_log.to_string()).unwrap();
    let mut rbac = spawn(&env, "goose-rbac", port, &args(false));
    wait_healthy(&r, &mut rbac).await;
    assert_eq!(
        counter(
            &r,
            "goose_read_model_snapshots_refused_total",
            "view=\"rbac-users\",reason=\"unreadable\""
        )
        .await,
        1.0
    );
    assert_eq!(
        counter(
            &r,
            "goose_read_model_snapshots_refused_total",
            "view=\"rbac-approvals\",reason=\"mismatch\""
        )
        .await,
        1.0
    );
    assert_eq!(
        counter(
            &r,
            "goose_read_model_snapshots_restored_total",
            "view=\"platform-users\""
        )
        .await,
        1.0
    );
    let root = token(&r, "root", &admin_key).await;
    let again = r.ok("GET", "/v1/users", &root, None).await;
    assert_eq!(again, users);
    terminate(rbac);
    // The replayed views were kept again at the stop.
    assert!(snapshot_position(&snapshots, "rbac-users") > 0);
}

/// The registry's view (catalog, models, approvals, breaches) comes back from its snapshot
/// whole: every answer after the restart equals the answer before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_restarts_from_its_snapshot() {
    let db = goose_testkit::postgres().await.unwrap();
    let nats = goose_testkit::nats().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let env = Env::new(&db, &nats, d);
    let token_vkey = goose_ledger::NoteKey::load_or_generate(&d.join("tokens.key"), "e2e-tokens")
        .unwrap()
        .vkey();
    let admin_key_file = d.join("admin.api-key");
    let (pr, pg) = (
        goose_testkit::free_port().unwrap(),
        goose_testkit::free_port().unwrap(),
    );
    let r = Http::new(format!("http://127.0.0.1:{pr}"));
    let g = Http::new(format!("http://127.0.0.1:{pg}"));
    let mut rbac = spawn(
        &env,
        "goose-rbac",
        pr,
        &[
            format!("--token-key-file={}", d.join("tokens.key").display()),
            "--bootstrap-admin=root".into(),
            format!("--bootstrap-key-file={}", admin_key_file.display()),
        ],
    );
    wait_healthy(&r, &mut rbac).await;
    let registry_args = [
        format!("--token-vkey={token_vkey}"),
        format!("--snapshot-dir={}", d.join("registry-snapshots").display()),
    ];
    let mut registry = spawn(&env, "goose-registry", pg, &registry_args);
    wait_healthy(&g, &mut registry).await;
    let root = token(
        &r,
        "root",
        &std::fs::read_to_string(&admin_key_file).unwrap(),
    )
    .await;
    let olga = user_with_token(&r, &root, "olga", &["operator"]).await;
    let catalog = crate::support::example_catalog(&["service-a", "service-b", "service-c"]);
    let (s, v) = g
        .raw(
            "POST",
            "/v1/services",
            &olga,
            "application/yaml",
            catalog.into_bytes(),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = g
        .call(
            "POST",
            "/v1/models",
            Some(&olga),
            Some(&serde_json::json!({"name": "churn", "risk": "high", "owner": "team-growth"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let paths = ["/v1/services", "/v1/graph", "/v1/models", "/v1/org-config"];
    let mut before = Vec::new();
    for p in paths {
        before.push(g.ok("GET", p, &olga, None).await);
    }
    terminate(registry);
    let mut registry = spawn(&env, "goose-registry", pg, &registry_args);
    wait_healthy(&g, &mut registry).await;
    assert_eq!(
        counter(
            &g,
            "goose_read_model_snapshots_restored_total",
            "view=\"registry\""
        )
        .await,
        1.0
    );
    for (p, b) in paths.iter().zip(&before) {
        assert_eq!(&g.ok("GET", p, &olga, None).await, b, "{p}");
    }
    drop((registry, rbac));
}

async fn goose_ledger_size(url: &str) -> u64 {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    n as u64
}
