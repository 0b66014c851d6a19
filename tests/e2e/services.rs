//! rbac, registry and evidence as three processes over one PostgreSQL and one nats-server:
//! onboard services, submit evidence written by real tools, grant roles, raise and answer an
//! approval request, revoke a role, then verify the whole chain.

use crate::support::{spawn, token, user_with_token, verify_chain, wait_healthy, Env, Http};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_services_as_processes() {
    let db = goose_testkit::postgres().await.unwrap();
    let nats = goose_testkit::nats().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = Env::new(&db, &nats, dir.path());

    // The token key exists before rbac starts so the others can be given its vkey.
    let token_key =
        goose_ledger::NoteKey::load_or_generate(&dir.path().join("tokens.key"), "e2e-tokens")
            .unwrap();
    let vkey = token_key.vkey();
    let admin_key_file = dir.path().join("admin.api-key");
    let (pr, pg, pe) = (
        goose_testkit::free_port().unwrap(),
        goose_testkit::free_port().unwrap(),
        goose_testkit::free_port().unwrap(),
    );
    let tok = format!("--token-vkey={vkey}");
    let mut rbac = spawn(
        &env,
        "goose-rbac",
        pr,
        &[
            format!(
                "--token-key-file={}",
                dir.path().join("tokens.key").display()
            ),
            "--bootstrap-admin=root".into(),
            format!("--bootstrap-key-file={}", admin_key_file.display()),
            "--approvals=high=2".into(),
        ],
    );
    let mut registry = spawn(&env, "goose-registry", pg, std::slice::from_ref(&tok));
    // The CI's attestation key: envelopes signed by it are trusted (key id = the key's name).
    let builder = goose_ledger::NoteKey::generate("ci-builder").unwrap();
    let mut evidence = spawn(
        &env,
        "goose-evidence",
        pe,
        &[
            tok.clone(),
            format!("--attestation-vkey={}", builder.vkey()),
            "--relay".into(),
            format!("--log-key-file={}", dir.path().join("log.key").display()),
        ],
    );
    let (r, g, e) = (
        Http::new(format!("http://127.0.0.1:{pr}")),
        Http::new(format!("http://127.0.0.1:{pg}")),
        Http::new(format!("http://127.0.0.1:{pe}")),
    );
    wait_healthy(&r, &mut rbac).await;
    wait_healthy(&g, &mut registry).await;
    wait_healthy(&e, &mut evidence).await;

    let root = token(
        &r,
        "root",
        &std::fs::read_to_string(&admin_key_file).unwrap(),
    )
    .await;
    // A wrong key, a malformed one, an unknown user: the same 401, saying nothing more.
    for (user, key) in [
        ("root", "gk_00000000_wrong"),
        ("root", "not-a-key"),
        ("nobody", "gk_00000000_x"),
    ] {
        let (s, v) = r
            .call(
                "POST",
                "/v1/auth/token",
                None,
                Some(&json!({"user": user, "api_key": key})),
            )
            .await;
        assert_eq!(
            (s, v["detail"].as_str()),
            (401, Some("unknown user or invalid API key")),
            "{v}"
        );
    }
    let (s, v) = r
        .call(
            "POST",
            "/v1/auth/token",
            None,
            Some(&json!({"user": "root"})),
        )
        .await;
    assert_eq!(s, 400, "a missing field is a clear 400: {v}");
    assert!(v["detail"].as_str().unwrap().contains("api_key"), "{v}");
    let olga = user_with_token(&r, &root, "olga", &["operator"]).await;
    let ada = user_with_token(&r, &root, "ada", &["approver"]).await;
    let bob = user_with_token(&r, &root, "bob", &["approver"]).await;

    // Roles reach the other processes through the bus: registry accepts olga once it has them.
    let mut catalog = Vec::new();
    for f in ["service-a.yaml", "service-b.yaml", "catalog-info.yaml"] {
        catalog.extend(
            goose_domain::yaml_documents(
                &std::fs::read_to_string(fixtures().join("services").join(f)).unwrap(),
            )
            .unwrap(),
        );
    }
    // Reversed, to show the registry orders by dependency itself.
    catalog.reverse();
    let body = serde_json::to_vec(&catalog).unwrap();
    let applied =
        goose_testkit::eventually(Duration::from_secs(20), "registry knows olga", || async {
            let (s, v) = g
                .raw(
                    "POST",
                    "/v1/services",
                    &olga,
                    "application/json",
                    body.clone(),
                )
                .await;
            (s == 200).then_some(v)
        })
        .await
        .unwrap();
    assert_eq!(
        applied["onboarded"],
        json!(["service-a", "service-b", "service-c"])
    );
    // A cycle and an unknown dependency are refused, naming the problem; nothing applied.
    let (s, v) = g.raw("POST", "/v1/services", &olga, "application/yaml", b"service:\n  name: service-a\n  spec:\n    api_version: v1\n    compliance_mode: sandbox\n    dependencies:\n      runtime: [service-c]\n".to_vec()).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["detail"], "rejected, nothing applied: dependency cycle: service-a -> service-b -> service-c -> service-a");
    let graph = g.ok("GET", "/v1/graph", &olga, None).await;
    assert_eq!(
        graph["waves"],
        json!([["service-a"], ["service-b"], ["service-c"]])
    );

    // Evidence written by real tools.
    let files = [
        ("junit", "junit.xml"),
        ("lcov", "coverage.lcov"),
        ("cobertura", "cobertura.xml"),
        ("cyclonedx", "sbom.cdx.json"),
        ("sarif", "clippy.sarif"),
    ];
    let mut summaries = Vec::new();
    for (kind, file) in files {
        let bytes = std::fs::read(fixtures().join("evidence").join(file)).unwrap();
        let v = goose_testkit::eventually(Duration::from_secs(20), "evidence knows the catalog and olga", || {
            let bytes = bytes.clone();
            let e = &e;
            let olga = &olga;
            async move {
                let (s, v) = e.raw("POST", &format!("/v1/evidence?service=service-a&version=1.0.0&kind={kind}&filename={file}"), olga, "application/octet-stream", bytes).await;
                (s == 200).then_some(v)
            }
        })
        .await
        .unwrap();
        summaries.push(v);
    }
    assert_eq!(
        summaries[0]["summary"]["tests"],
        json!({"passed": 1, "failed": 1, "skipped": 1})
    );
    assert_eq!(summaries[1]["summary"]["coverage"]["line_percent"], 73.33);
    assert!(
        summaries[3]["summary"]["sbom"]["components"]
            .as_u64()
            .unwrap()
            > 10
    );
    // The same file again is stored once (same digest); a mismatched one is refused.
    let again = e
        .raw(
            "POST",
            "/v1/evidence?service=service-a&version=1.0.1&kind=junit",
            &olga,
            "application/xml",
            std::fs::read(fixtures().join("evidence/junit.xml")).unwrap(),
        )
        .await;
    assert_eq!(again.1["digest"], summaries[0]["digest"]);
    let (s, v) = e
        .raw(
            "POST",
            "/v1/evidence?service=service-a&version=1.0.0&kind=sarif",
            &olga,
            "application/xml",
            std::fs::read(fixtures().join("evidence/junit.xml")).unwrap(),
        )
        .await;
    assert_eq!(
        (s, v["detail"].as_str().unwrap()),
        (422, "declared sarif but the file looks like junit")
    );
    let blob = reqwest::Client::new()
        .get(format!(
            "{}/v1/blobs/{}",
            e.base,
            summaries[0]["digest"].as_str().unwrap()
        ))
        .bearer_auth(&olga)
        .send()
        .await
        .unwrap();
    assert_eq!(
        blob.bytes().await.unwrap().to_vec(),
        std::fs::read(fixtures().join("evidence/junit.xml")).unwrap()
    );

    // org-config: refused with field and line; once set, evidence applies its upload limit
    // (learned from registry's event) — an SBOM over it is refused, nothing stored.
    let bad = b"organization: acme\nmodes:\n  sandbox: {cpu_millicores: 500, memory_mib: 512, max_replicas: 2}\n  compliant: {cpu_millicores: 0, memory_mib: 4096, max_replicas: 10}\n".to_vec();
    let (s, v) = g
        .raw("PUT", "/v1/org-config", &root, "application/yaml", bad)
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("line 4: modes.compliant.cpu_millicores"),
        "{v}"
    );
    // A document over the body limit is refused as problem+json, like every error (declared
    // length: answered before the body is read).
    {
        use std::io::{Read as _, Write as _};
        let mut c = std::net::TcpStream::connect(g.base.trim_start_matches("http://")).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            c,
            "PUT /v1/org-config HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {root}\r\nContent-Type: application/yaml\r\nContent-Length: 3145728\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        let _ = c.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("application/problem+json"), "{answer}");
    }
    let good = b"organization: acme\nmodes:\n  sandbox: {cpu_millicores: 500, memory_mib: 512, max_replicas: 2}\n  compliant: {cpu_millicores: 2000, memory_mib: 4096, max_replicas: 10}\nevidence:\n  max_upload_bytes: 4096\n".to_vec();
    let (s, v) = g
        .raw("PUT", "/v1/org-config", &root, "application/yaml", good)
        .await;
    assert_eq!(s, 200, "{v}");
    let sbom = std::fs::read(fixtures().join("evidence/sbom.cdx.json")).unwrap();
    let refused = goose_testkit::eventually(
        Duration::from_secs(10),
        "evidence applies the new limit",
        || {
            let (e, olga, sbom) = (&e, &olga, sbom.clone());
            async move {
                let (s, v) = e
                    .raw(
                        "POST",
                        "/v1/evidence?service=service-b&version=2.0.0&kind=cyclonedx",
                        olga,
                        "application/json",
                        sbom,
                    )
                    .await;
                (s == 413).then_some(v)
            }
        },
    )
    .await
    .unwrap();
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("over the evidence limit of 4096 bytes"),
        "{refused}"
    );
    let listed = e
        .ok("GET", "/v1/evidence?service=service-b", &olga, None)
        .await;
    assert_eq!(listed, json!([]));
    over_the_limit_is_refused_without_buffering(&e, &olga, evidence.0.id());

    // An in-toto statement in a DSSE envelope, signed by the trusted builder key; the same
    // envelope signed by an unknown key is refused and nothing is stored.
    let statement = serde_json::to_vec(&json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "service-a", "digest": {"sha256": "5f".repeat(32)}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {"buildDefinition": {"buildType": "https://example.com/ci@v1"}, "runDetails": {"builder": {"id": "ci"}}}
    }))
    .unwrap();
    let envelope = goose_evidence::dsse::sign(
        goose_evidence::dsse::IN_TOTO_PAYLOAD_TYPE,
        &statement,
        "ci-builder",
        builder.signing_key(),
    );
    let (s, v) = e
        .raw(
            "POST",
            "/v1/evidence?service=service-a&version=1.0.0&kind=in-toto",
            &olga,
            "application/json",
            serde_json::to_vec(&envelope).unwrap(),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["summary"]["attestation"]["signed_by"],
        json!(["ci-builder"])
    );
    let stranger = goose_ledger::NoteKey::generate("ci-builder").unwrap();
    let forged = goose_evidence::dsse::sign(
        goose_evidence::dsse::IN_TOTO_PAYLOAD_TYPE,
        &statement,
        "ci-builder",
        stranger.signing_key(),
    );
    let (s, v) = e
        .raw(
            "POST",
            "/v1/evidence?service=service-a&version=1.0.0&kind=in-toto",
            &olga,
            "application/json",
            serde_json::to_vec(&forged).unwrap(),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("signature by ci-builder does not verify"),
        "{v}"
    );

    // An approval: high impact needs two approvers, never the requester.
    let req = r.ok("POST", "/v1/approvals", &olga, Some(&json!({"kind": "promotion", "subject": "service-a@1.0.0", "impact": "high", "reason": "release"}))).await;
    let id = req["id"].as_str().unwrap().to_owned();
    assert_eq!(req["required_approvers"], 2);
    let (s, v) = r
        .call(
            "POST",
            &format!("/v1/approvals/{id}/grant"),
            Some(&olga),
            Some(&json!({})),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    let granted = r
        .ok(
            "POST",
            &format!("/v1/approvals/{id}/grant"),
            &ada,
            Some(&json!({"comment": "tests ok"})),
        )
        .await;
    assert_eq!(granted["status"], "pending");
    let (s, _) = r
        .call(
            "POST",
            &format!("/v1/approvals/{id}/grant"),
            Some(&ada),
            Some(&json!({})),
        )
        .await;
    assert_eq!(s, 409, "the same approver twice");
    let done = r
        .ok(
            "POST",
            &format!("/v1/approvals/{id}/grant"),
            &bob,
            Some(&json!({})),
        )
        .await;
    assert_eq!(done["status"], "approved");
    assert_eq!(done["approvers"], json!(["ada", "bob"]));
    assert_eq!(
        done["refusals"], 2,
        "olga's attempt (no approve permission) and the double grant are on the record"
    );
    // Holding both roles does not let a requester approve their own request.
    let carol = user_with_token(&r, &root, "carol", &["operator", "approver"]).await;
    let own = r
        .ok(
            "POST",
            "/v1/approvals",
            &carol,
            Some(&json!({"kind": "promotion", "subject": "service-b@2.0.0", "impact": "low"})),
        )
        .await;
    let own_id = own["id"].as_str().unwrap();
    let (s, v) = r
        .call(
            "POST",
            &format!("/v1/approvals/{own_id}/grant"),
            Some(&carol),
            Some(&json!({})),
        )
        .await;
    assert_eq!(s, 403);
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("segregation of duties"),
        "{v}"
    );
    let own = r
        .ok("GET", &format!("/v1/approvals/{own_id}"), &root, None)
        .await;
    assert_eq!(
        (own["status"].as_str(), own["refusals"].as_u64()),
        (Some("pending"), Some(1))
    );

    // Revoking a role takes effect at once in rbac, and in the other processes as soon as
    // the event arrives — not when ada's token expires.
    r.ok("DELETE", "/v1/users/ada/roles/approver", &root, None)
        .await;
    let (s, _) = r.call("GET", "/v1/approvals", Some(&ada), None).await;
    assert_eq!(s, 403);
    goose_testkit::eventually(
        Duration::from_secs(10),
        "evidence sees the revocation",
        || async {
            let (s, _) = e.call("GET", "/v1/evidence", Some(&ada), None).await;
            (s == 403).then_some(())
        },
    )
    .await
    .unwrap();

    // The only admin cannot remove its own admin role: nobody could grant roles again.
    let (s, v) = r
        .call("DELETE", "/v1/users/root/roles/admin", Some(&root), None)
        .await;
    assert_eq!(s, 409, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .starts_with("root is the last active holder of rbac.admin"),
        "{v}"
    );
    // Break-glass: someone with the database, rbac's token key and its service key makes an
    // administrator; without the token key, nothing happens.
    let recover = |token_key: &std::path::Path, out: &str| {
        std::process::Command::new(crate::support::binary("goosectl"))
            .args([
                "--database-url",
                &db.url,
                "admin",
                "recover",
                "--user",
                "rescue",
            ])
            .arg("--api-key-file")
            .arg(dir.path().join(out))
            .arg("--token-key-file")
            .arg(token_key)
            .arg("--service-key-file")
            .arg(dir.path().join("goose-rbac.key"))
            .args(["--log-origin", crate::support::E2E_LOG_ORIGIN])
            .output()
            .unwrap()
    };
    let out = recover(&dir.path().join("no-such.key"), "rescue-1.key");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("reading rbac's token key"),
        "{out:?}"
    );
    let out = recover(&dir.path().join("tokens.key"), "rescue.key");
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("rescue holds rbac.admin, recorded at position"),
        "{out:?}"
    );
    // The recovery is written to the ledger while rbac runs; rbac's view follows it, the
    // user and key a moment before the role (seen once under CI's load): wait for the role.
    let key = std::fs::read_to_string(dir.path().join("rescue.key")).unwrap();
    let (rr, key) = (&r, &key);
    let rescue = goose_testkit::eventually(
        std::time::Duration::from_secs(15),
        "rescue's admin role in rbac's view",
        move || async move {
            let t = token(rr, "rescue", key).await;
            let (s, v) = rr.call("GET", "/v1/users/rescue", Some(&t), None).await;
            let admin = v["roles"]
                .as_array()
                .is_some_and(|roles| roles.iter().any(|x| x == "admin"));
            (s == 200 && admin).then_some(t)
        },
    )
    .await
    .unwrap();
    // With a second admin, root may step down.
    let (s, v) = r
        .call("DELETE", "/v1/users/root/roles/admin", Some(&rescue), None)
        .await;
    assert_eq!(s, 200, "{v}");

    // A token ends with its API key, and with its user, in every service (when the event
    // arrives), not an hour later.
    let (s, v) = r
        .call(
            "POST",
            "/v1/users",
            Some(&rescue),
            Some(&json!({"name": "kim", "roles": ["analyst"]})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let new_key = |r: &Http| {
        let r = r.clone();
        let rescue = rescue.clone();
        async move {
            let (s, k) = r
                .call("POST", "/v1/users/kim/api-keys", Some(&rescue), None)
                .await;
            assert_eq!(s, 200, "{k}");
            let t = token(&r, "kim", k["api_key"].as_str().unwrap()).await;
            (k["key_id"].as_str().unwrap().to_owned(), t)
        }
    };
    let (key_id, kim) = new_key(&r).await;
    goose_testkit::eventually(Duration::from_secs(10), "evidence knows kim", || async {
        let (s, _) = e.call("GET", "/v1/evidence", Some(&kim), None).await;
        (s == 200).then_some(())
    })
    .await
    .unwrap();
    let (s, v) = r
        .call(
            "DELETE",
            &format!("/v1/users/kim/api-keys/{key_id}"),
            Some(&rescue),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let refused = |h: &Http, tok: String, needle: &'static str| {
        let h = h.clone();
        async move {
            goose_testkit::eventually(Duration::from_secs(10), needle, || async {
                let (s, v) = h.call("GET", "/v1/evidence", Some(&tok), None).await;
                (s == 401 && v["detail"].as_str().unwrap_or("").contains(needle)).then_some(())
            })
            .await
            .unwrap();
        }
    };
    refused(&e, kim.clone(), "has been revoked").await;
    let (_, kim) = new_key(&r).await;
    let (s, v) = r
        .call("POST", "/v1/users/kim/deactivate", Some(&rescue), None)
        .await;
    assert_eq!(s, 200, "{v}");
    refused(&e, kim.clone(), "unknown or deactivated").await;
    let (s, v) = r
        .call("POST", "/v1/users/kim/reactivate", Some(&rescue), None)
        .await;
    assert_eq!((s, &v["roles"]), (200, &json!([])), "{v}");
    let (s, v) = r
        .call("POST", "/v1/users/rescue/deactivate", Some(&rescue), None)
        .await;
    assert_eq!(s, 409, "the last admin: {v}");

    // OpenAPI documents, and a checkpoint on request.
    for h in [&r, &g, &e] {
        let (s, doc) = h.call("GET", "/openapi.json", None, None).await;
        assert_eq!(s, 200);
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    }
    let (s, _) = e
        .call("POST", "/v1/chain/checkpoints", Some(&rescue), None)
        .await;
    assert_eq!(s, 200);

    // Guessing API keys is slowed down: past 60 token requests a minute from one address,
    // 429 with Retry-After (last in this test: the address stays limited for a while).
    let mut limited = None;
    for _ in 0..70 {
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/auth/token", r.base))
            .json(&json!({"user": "root", "api_key": "gk_00000000_guess"}))
            .send()
            .await
            .unwrap();
        if resp.status() == 429 {
            limited = Some(resp);
            break;
        }
        assert_eq!(resp.status(), 401);
    }
    let resp = limited.expect("a 429 within 70 guesses");
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let v: serde_json::Value = resp.json().await.unwrap();
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .starts_with("too many requests from this address"),
        "{v}"
    );

    // The whole history verifies, with the three services' keys.
    drop((rbac, registry, evidence));
    let ring = dir.path().join("keyring");
    let mut text = String::new();
    for k in ["goose-rbac", "goose-registry", "goose-evidence"] {
        text.push_str(
            &goose_ledger::NoteKey::load(&dir.path().join(format!("{k}.key")))
                .unwrap()
                .vkey(),
        );
        text.push('\n');
    }
    std::fs::write(&ring, text).unwrap();
    let log_vkey = goose_ledger::NoteKey::load(&dir.path().join("log.key"))
        .unwrap()
        .vkey();
    verify_chain(&db.url, &ring, &log_vkey);
}

/// Bodies over the org-config limit are refused as they arrive, never buffered whole: a
/// declared length over it gets its 413 before any byte is read, and 300 MB sent chunked
/// (no length) are cut off — the evidence process's peak memory barely moves.
fn over_the_limit_is_refused_without_buffering(e: &Http, token: &str, pid: u32) {
    use std::io::{Read as _, Write as _};
    let peak_kib = || -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    let addr = e.base.trim_start_matches("http://").to_owned();
    let head = |extra: &str| {
        format!(
            "POST /v1/evidence?service=service-b&version=2.0.0&kind=junit HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n{extra}\r\n"
        )
    };
    // Declared: answered at once, with problem+json.
    let mut c = std::net::TcpStream::connect(&addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(head("Content-Length: 314572800\r\nConnection: close\r\n").as_bytes())
        .unwrap();
    let mut answer = String::new();
    let _ = c.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(
        answer.contains("a body of 314572800 bytes is over the evidence limit of 4096 bytes"),
        "{answer}"
    );
    // Streamed: cut off once past the limit.
    let before = peak_kib();
    let mut c = std::net::TcpStream::connect(&addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(head("Transfer-Encoding: chunked\r\n").as_bytes())
        .unwrap();
    let chunk = vec![b'x'; 1 << 20];
    let mut sent = 0usize;
    for _ in 0..300 {
        let ok = c
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .is_ok()
            && c.write_all(&chunk).is_ok()
            && c.write_all(b"\r\n").is_ok();
        if !ok {
            break;
        }
        sent += 1;
    }
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "after {sent} MiB: {answer}"
    );
    let grown_mib = peak_kib().saturating_sub(before) / 1024;
    assert!(
        grown_mib < 64,
        "peak memory grew {grown_mib} MiB while {sent} MiB were offered"
    );
}
