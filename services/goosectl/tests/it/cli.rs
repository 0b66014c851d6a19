//! The real `goosectl` binary.

use crate::support::{
    approve_and_watch, fill, goosectl, postgres_ledger, quick_start_promotion, run, Dev,
};
use goose_ledger::sqlite::SqliteBackend;
use goose_ledger::LedgerReader;
use std::io::{Read as _, Write as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[tokio::test]
async fn dev_serves_health_metrics_and_chain_then_stops_cleanly_on_ctrl_c() {
    /// A failing assertion must not leave the server running.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    let data = tempfile::tempdir().unwrap();
    let port = goose_testkit::free_port().unwrap();
    let mut child = KillOnDrop(
        goosectl()
            .arg("--data-dir")
            .arg(data.path())
            .args(["dev", "--listen", &format!("127.0.0.1:{port}")])
            // Exports wait for a checkpoint covering what they state.
            .args(["--checkpoint-interval", "2"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let health = goose_testkit::eventually(
        Duration::from_secs(30),
        "goosectl dev to answer",
        || async { http_get(port, "/healthz") },
    )
    .await
    .unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let ready = http_get(port, "/readyz").unwrap();
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    let cp = goose_testkit::eventually(Duration::from_secs(10), "the first checkpoint", || async {
        http_get(port, "/v1/chain/checkpoint").filter(|r| r.starts_with("HTTP/1.1 200"))
    })
    .await
    .unwrap();
    // NodeStarted, then the bootstrap admin (created, made admin, given an API key).
    assert!(cp.contains("goose.dev/ledger\n4\n"), "{cp}");
    let metrics = http_get(port, "/metrics").unwrap();
    assert!(
        metrics.contains("goose_ledger_events_appended_total"),
        "{metrics}"
    );

    // The CLI verbs against the embedded services (SQLite ledger, filesystem blobs).
    let url = format!("http://127.0.0.1:{port}");
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let cli = |token: Option<&str>| {
        let mut c = goosectl();
        c.env("GOOSE_URL", &url).env_remove("GOOSE_TOKEN");
        if let Some(t) = token {
            c.env("GOOSE_TOKEN", t);
        }
        c
    };
    let (code, admin) = run(cli(None)
        .args(["token", "--user", "admin", "--api-key-file"])
        .arg(data.path().join("admin.api-key")));
    assert_eq!(code, 0, "{admin}");
    let admin = admin.trim().to_owned();
    let mut keys = std::collections::HashMap::new();
    for (user, role) in [("olga", "operator"), ("ada", "approver")] {
        let (code, out) = run(cli(Some(&admin)).args(["user", "create", user, "--role", role]));
        assert_eq!(code, 0, "{out}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let key_file = data.path().join(format!("{user}.key"));
        std::fs::write(&key_file, v["api_key"].as_str().unwrap()).unwrap();
        let (code, tok) = run(cli(None)
            .args(["token", "--user", user, "--api-key-file"])
            .arg(&key_file));
        assert_eq!(code, 0, "{tok}");
        keys.insert(user, tok.trim().to_owned());
    }
    let (olga, ada) = (&keys["olga"], &keys["ada"]);
    // The admin may not onboard (least privilege): a clear refusal, exit code 2.
    let (code, out) = run(cli(Some(&admin))
        .args(["service", "apply", "-f"])
        .arg(fixtures.join("services")));
    assert_eq!(code, 2);
    assert!(
        out.contains("403") && out.contains("lacks permission service.onboard"),
        "{out}"
    );
    let (code, out) = run(cli(Some(olga))
        .args(["service", "apply", "-f"])
        .arg(fixtures.join("services")));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("service-c"), "{out}");
    let (code, out) = run(cli(Some(olga)).args(["graph"]));
    assert_eq!(code, 0);
    assert!(
        out.contains("service-c -> service-b (runtime)") && out.contains("wave 3: service-c"),
        "{out}"
    );
    for (kind, file) in [
        ("junit", "junit.xml"),
        ("cyclonedx", "sbom.cdx.json"),
        ("sarif", "clippy.sarif"),
    ] {
        let (code, out) = run(cli(Some(olga))
            .args([
                "evidence",
                "add",
                "--service",
                "service-a",
                "--version",
                "1.0.0",
                "--kind",
                kind,
            ])
            .arg(fixtures.join("evidence").join(file)));
        assert_eq!(code, 0, "{out}");
    }
    let (code, out) = run(cli(Some(olga))
        .args([
            "evidence",
            "add",
            "--service",
            "service-a",
            "--version",
            "1.0.0",
            "--kind",
            "lcov",
        ])
        .arg(fixtures.join("evidence/junit.xml")));
    assert_eq!(code, 2);
    assert!(
        out.contains("declared lcov but the file looks like junit"),
        "{out}"
    );
    let (code, out) = run(cli(Some(olga)).args([
        "approval",
        "request",
        "--subject",
        "service-a@1.0.0",
        "--impact",
        "low",
    ]));
    assert_eq!(code, 0, "{out}");
    let id = serde_json::from_str::<serde_json::Value>(&out).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, out) = run(cli(Some(ada)).args(["approval", "grant", &id, "--comment", "ok"]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"approved\""), "{out}");
    let export = data.path().join("export");
    let (code, out) = run(cli(Some(olga))
        .args(["evidence", "export", "--service", "service-a", "--out"])
        .arg(&export));
    assert_eq!(code, 2, "the audit trail needs audit.read: {out}");
    let (code, out) = run(cli(Some(&admin))
        .args(["evidence", "export", "--service", "service-a", "--out"])
        .arg(&export));
    assert_eq!(code, 0, "{out}");
    let root = export.join("audit/services/service-a");
    assert!(root.join("specs/1.0.0/dependencies.yaml").exists());
    // An approval request that is not a promotion's is not exported as one.
    assert!(!root.join(format!("promotions/{id}")).exists());
    let compliance: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("specs/1.0.0/compliance.json")).unwrap())
            .unwrap();
    assert_eq!(compliance["state"], "sandbox", "{compliance}");
    let days: Vec<_> = std::fs::read_dir(root.join("evidence")).unwrap().collect();
    assert_eq!(days.len(), 1);
    let day = days[0].as_ref().unwrap().path();
    assert_eq!(
        std::fs::read(day.join("tests/1.0.0-junit.xml")).unwrap(),
        std::fs::read(fixtures.join("evidence/junit.xml")).unwrap()
    );

    // Ctrl-C: a clean exit, with everything written covered by a checkpoint.
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "goosectl dev did not stop on SIGINT"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}");

    let (code, out) = run(goosectl().arg("--data-dir").arg(data.path()).arg("verify"));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("OK: ") && out.contains(" events verified"),
        "{out}"
    );

    // An offline proof of the start event, checked with nothing but the log's public key.
    let reader = LedgerReader::new(Arc::new(
        SqliteBackend::open(&data.path().join("ledger.db"))
            .await
            .unwrap(),
    ));
    let event = reader.read_all(0, 1).await.unwrap().remove(0);
    let proof_file = data.path().join("start.tlog-proof");
    let (code, out) = run(goosectl()
        .arg("--data-dir")
        .arg(data.path())
        .args(["proof", &event.event_id.to_string(), "--out"])
        .arg(&proof_file));
    assert_eq!(code, 0, "{out}");
    let (code, vkey) = run(goosectl()
        .arg("--data-dir")
        .arg(data.path())
        .args(["keys", "show"]));
    assert_eq!(code, 0);
    let vkey = vkey.trim().to_owned();
    let (code, out) = run(goosectl()
        .arg("verify-proof")
        .arg(&proof_file)
        .args(["--key", &vkey]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("NodeStarted"), "{out}");

    // A proof whose record was altered fails, naming why.
    let text = std::fs::read_to_string(&proof_file).unwrap();
    let forged = text.replacen("extra R", "extra S", 1);
    std::fs::write(&proof_file, forged).unwrap();
    let (code, out) = run(goosectl()
        .arg("verify-proof")
        .arg(&proof_file)
        .args(["--key", &vkey]));
    assert_ne!(code, 0, "{out}");
}

#[tokio::test]
async fn verify_on_postgres_names_the_first_bad_position() {
    let (k, url) = postgres_ledger().await;
    fill(&k.ledger, 30).await;
    k.ledger.sign_checkpoint(&k.log_key).await.unwrap();
    let verify = || {
        let mut c = goosectl();
        c.args([
            "--database-url",
            &url,
            "verify",
            "--log-key",
            &k.log_key.vkey(),
            "--keyring",
        ])
        .arg(&k.keyring_file);
        run(&mut c)
    };
    let (code, out) = verify();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK: 30 events verified"), "{out}");
    assert!(out.contains("checkpoints verified at sizes [30]"), "{out}");

    // `goosectl checkpoint` signs with the key file and the result verifies.
    let (code, out) = run(goosectl()
        .args(["--database-url", &url, "checkpoint", "--log-key-file"])
        .arg(&k.log_key_file));
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("goose.test/ledger\n30\n"), "{out}");

    // Tamper as a superuser who bypasses the triggers: delete one event.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("DELETE FROM ledger_events WHERE position = 17")
        .execute(&mut *conn)
        .await
        .unwrap();
    let (code, out) = verify();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAILED at position 17: event missing"),
        "{out}"
    );

    // With another log key, every stored checkpoint is a row this log did not sign.
    let other = goose_ledger::NoteKey::generate("goose.test/ledger").unwrap();
    let (code, out) = run(goosectl()
        .args([
            "--database-url",
            &url,
            "verify",
            "--log-key",
            &other.vkey(),
            "--keyring",
        ])
        .arg(&k.keyring_file));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("INTRUSION: checkpoint row"), "{out}");
    assert!(out.contains("FAILED at position 17"), "{out}");
    drop(k.dir);
}

#[test]
fn usage_errors_are_clear() {
    let (code, out) = run(goosectl().args(["--data-dir", "/nonexistent/goose", "verify"]));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no log key"), "{out}");
    let (code, out) =
        run(goosectl().args(["verify-proof", "/nonexistent.proof", "--key", "not-a-key"]));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("verifier key"), "{out}");
    let (code, out) = run(goosectl().args(["proof", "not-a-uuid"]));
    assert_eq!(code, 2, "{out}");
}

/// `goosectl dev` as the README's quick start uses it: onboard the example services, submit
/// evidence, promote a package; the server is killed while the promotion waits for its
/// approval and resumes it from the events after a restart; the manifest is exported and
/// checked offline.
#[tokio::test]
async fn dev_promotes_a_package_and_resumes_it_after_a_kill() {
    let mut dev = Dev::start().await;
    let (olga, ada, audrey) = (
        dev.user("olga", "operator"),
        dev.user("ada", "approver"),
        dev.user("audrey", "auditor"),
    );
    let (package, promotion) = quick_start_promotion(&dev, &olga).await;
    // The operator cannot approve; the process dies mid-promotion.
    let (code, out) = run(dev.cli(&olga).args(["promotion", "approve", &promotion]));
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("403"), "{out}");
    dev.kill();
    dev.up().await;
    let out = approve_and_watch(&dev, &ada, &olga, &promotion);
    let at = |needle: &str| {
        out.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} in {out}"))
    };
    assert!(at("TargetPromoted      service-a@1.0.0") < at("TargetStarted       service-b@1.0.0"));
    assert!(at("TargetPromoted      service-b@1.0.0") < at("TargetStarted       service-c@1.0.0"));
    assert!(out.contains("TargetFailed        service-c@1.0.0: test_coverage_threshold: below threshold: line coverage 40.00%"), "{out}");

    let export = dev.data.path().join("export");
    // Proofs are the audit trail: an operator may not export them, an auditor may.
    let (code, out) = run(dev
        .cli(&olga)
        .args(["package", "export", &package, "--out"])
        .arg(&export));
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("audit.read"), "{out}");
    let (code, out) = run(dev
        .cli(&audrey)
        .args(["package", "export", &package, "--out"])
        .arg(&export));
    assert_eq!(code, 0, "{out}");

    // The audit export holds the promotion that really ran, in both seed layouts.
    let audit = dev.data.path().join("audit-export");
    let (code, out) = run(dev
        .cli(&audrey)
        .args(["evidence", "export", "--service", "service-a", "--out"])
        .arg(&audit));
    assert_eq!(code, 0, "{out}");
    let read = |p: std::path::PathBuf| -> serde_json::Value {
        serde_json::from_slice(
            &std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        )
        .unwrap()
    };
    let svc = audit.join("audit/services/service-a");
    let request = read(svc.join(format!("promotions/{promotion}/request.json")));
    assert_eq!(request["requester"], "olga", "{request}");
    assert_eq!(request["target"]["version"], "1.0.0", "{request}");
    let validation = read(svc.join(format!("promotions/{promotion}/validation.json")));
    let gates: Vec<&str> = validation
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["event"]["gate"].as_str())
        .collect();
    for g in ["dependency_check", "evidence_collection", "approval_check"] {
        assert!(gates.contains(&g), "{g} in {validation}");
    }
    let vsa = read(svc.join(format!("promotions/{promotion}/vsa.dsse.json")));
    assert_eq!(vsa["payloadType"], "application/vnd.in-toto+json", "{vsa}");
    let approval = read(svc.join(format!("promotions/{promotion}/approval.json")));
    assert_eq!(approval["request"]["status"], "approved", "{approval}");
    assert_eq!(
        approval["request"]["approvers"],
        serde_json::json!(["ada"]),
        "{approval}"
    );
    let compliance = read(svc.join("specs/1.0.0/compliance.json"));
    assert_eq!(compliance["state"], "compliant", "{compliance}");
    assert!(
        !compliance["history"].as_array().unwrap().is_empty(),
        "{compliance}"
    );
    // api.yaml is the OpenAPI document submitted as evidence, byte for byte.
    assert_eq!(
        std::fs::read(svc.join("specs/1.0.0/api.yaml")).unwrap(),
        std::fs::read(dev.data.path().join("openapi.json")).unwrap()
    );
    let days: Vec<_> = std::fs::read_dir(audit.join("audit/promotions/service-a"))
        .unwrap()
        .collect();
    assert_eq!(days.len(), 1);
    let per_promotion = days[0].as_ref().unwrap().path().join(&promotion);
    for f in [
        "request/request.json",
        "validation/validation.json",
        "approval/approval.json",
    ] {
        assert!(per_promotion.join(f).exists(), "{f}");
        let proofs = per_promotion.join(format!("{f}.proofs"));
        assert!(
            std::fs::read_dir(&proofs).unwrap().count() >= 1,
            "a tlog-proof beside {f}"
        );
    }
    let cited = std::fs::read_dir(per_promotion.join("evidence"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count();
    assert!(cited >= 4, "the evidence the gates cited: {cited}");
    let (_, log_key) = run(goosectl()
        .arg("--data-dir")
        .arg(dev.data.path())
        .args(["keys", "show"]));
    let signer = goose_ledger::NoteKey::load(&dev.data.path().join("keys/goosectl-dev.key"))
        .unwrap()
        .vkey();
    let (code, out) = run(dev
        .cli(&olga)
        .args(["package", "verify"])
        .arg(&export)
        .args(["--log-key", log_key.trim(), "--signer-key", &signer]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK: manifest"), "{out}");
    audit_exports_verify_offline_and_tampering_is_caught(
        &dev,
        &audrey,
        &olga,
        &promotion,
        &audit,
        log_key.trim(),
        &signer,
    );
    let (code, out) = run(goosectl()
        .arg("--data-dir")
        .arg(dev.data.path())
        .arg("verify"));
    assert_eq!(code, 0, "{out}");
}

/// The audit export checks offline; a changed file, a missing proof, an added file, a proof
/// of another event, and an index signed by someone else are each caught.
fn audit_exports_verify_offline_and_tampering_is_caught(
    dev: &Dev,
    auditor: &str,
    operator: &str,
    promotion: &str,
    audit: &std::path::Path,
    log_key: &str,
    signer: &str,
) {
    let verify = |dir: &std::path::Path| {
        run(goosectl().args(["audit", "verify"]).arg(dir).args([
            "--log-key",
            log_key,
            "--signer-key",
            signer,
        ]))
    };
    let (code, out) = verify(audit);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK: audit export"), "{out}");
    // One promotion's export, through the same API; an operator may not have it.
    let one = dev.data.path().join("promotion-export");
    let (code, out) = run(dev
        .cli(operator)
        .args(["promotion", "export", promotion, "--out"])
        .arg(&one));
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("audit.read"), "{out}");
    let (code, out) = run(dev
        .cli(auditor)
        .args(["promotion", "export", promotion, "--out"])
        .arg(&one));
    assert_eq!(code, 0, "{out}");
    let (code, out) = verify(&one);
    assert_eq!(code, 0, "{out}");

    let copy = |name: &str| {
        let to = dev.data.path().join(name);
        let (code, out) = run(std::process::Command::new("cp")
            .arg("-r")
            .arg(&one)
            .arg(&to));
        assert_eq!(code, 0, "{out}");
        to
    };
    let svc =
        |d: &std::path::Path| d.join(format!("audit/services/service-a/promotions/{promotion}"));
    // A reworded decision.
    let t = copy("t-edit");
    let f = svc(&t).join("validation.json");
    let text = std::fs::read_to_string(&f)
        .unwrap()
        .replacen("\"pass\"", "\"fail\"", 1);
    std::fs::write(&f, text).unwrap();
    let (code, out) = verify(&t);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("validation.json: SHA-256 differs from the signed index"),
        "{out}"
    );
    // A proof removed.
    let t = copy("t-proof");
    let proofs = svc(&t).join("request.json.proofs");
    let p = std::fs::read_dir(&proofs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::remove_file(&p).unwrap();
    let (code, out) = verify(&t);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("request.json: "), "{out}");
    // A proof of another event put in its place.
    let t = copy("t-swap");
    let dir = svc(&t);
    let request_proof = std::fs::read_dir(dir.join("request.json.proofs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let other = std::fs::read_dir(dir.join("outcome.json.proofs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::copy(&other, &request_proof).unwrap();
    let (code, out) = verify(&t);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("the proof is of event"), "{out}");
    // A file slipped in.
    let t = copy("t-extra");
    std::fs::write(svc(&t).join("waiver.json"), b"{}").unwrap();
    let (code, out) = verify(&t);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("waiver.json: not in the signed index"),
        "{out}"
    );
    // An index re-signed by another key (the export's own signer.vkey swapped too).
    let t = copy("t-resign");
    let envelope: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.join("index.dsse.json")).unwrap()).unwrap();
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    let forger = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let forged = goose_evidence::dsse::sign(
        "application/vnd.golden-goose.audit-index+json",
        &payload,
        "forger",
        &forger,
    );
    std::fs::write(
        t.join("index.dsse.json"),
        serde_json::to_vec(&forged).unwrap(),
    )
    .unwrap();
    let (code, out) = verify(&t);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAILED: signature of index.dsse.json"),
        "{out}"
    );
}
