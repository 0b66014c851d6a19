//! Single sign-on through a real, certified OpenID provider (`oidc-provider`, run with Node)
//! and authorization scoped by ownership. People sign in with `goosectl login` (a goosectl
//! process, the browser played by a scripted client at the provider's login page); a CI job
//! exchanges its own token. Their groups become roles and teams, recorded on the ledger;
//! the catalog's owners decide who may promote what, and a high-impact promotion needs an
//! approver from outside the owning team. Then what an attacker would try: a removed group,
//! a retired signing key, a token made up or altered, an IdP account named like a local admin.

use crate::inprocess::platform_on;
use crate::support::{binary, serve_in_process, user_with_token, Http, InProcess};
use goose_domain::identity::IdentityConfig;
use goose_platform::Storage;
use goose_testkit::{browser_sign_in, OidcProvider, Rotation};
use serde_json::{json, Value};
use std::io::{BufRead as _, BufReader};
use std::sync::Arc;

fn accounts() -> Value {
    json!({
        "alice": {"sub": "u-alice", "name": "Alice", "groups": ["deployers", "team-payments"]},
        "bob": {"sub": "u-bob", "groups": ["approvers", "team-payments"]},
        "carol": {"sub": "u-carol", "groups": ["approvers", "team-payments"]},
        "dave": {"sub": "u-dave", "groups": ["approvers", "team-search"]},
        // Named like the local bootstrap admin, in the admins' group.
        "root": {"sub": "u-mallory", "groups": ["goose-admins"]},
    })
}

fn identity(issuer: &str) -> IdentityConfig {
    IdentityConfig::parse(&format!(
        r#"
issuers:
  - issuer: {issuer}
    audiences: [goosectl, goosectl-es256, goosectl-eddsa, golden-goose]
    jwks_refresh_secs: 1
    roles:
      deployers: [operator]
      approvers: [approver]
      goose-admins: [admin]
    team_prefix: "team-"
    client: {{client_id: goosectl}}
service_accounts:
  - issuer: {issuer}
    subject: "ci-payments-*"
    user: ci-payments
    roles: [operator]
    teams: [payments]
"#
    ))
    .unwrap()
}

/// `goosectl login` as `who` (the browser signs them in at the provider); the token, or
/// goosectl's error output.
async fn login(base: &str, who: &str, client: Option<&str>) -> Result<String, String> {
    let mut cmd = std::process::Command::new(binary("goosectl"));
    cmd.args(["--url", base, "login", "--timeout", "60"]);
    if let Some(c) = client {
        cmd.args(["--client-id", c]);
    }
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    // The address goosectl asks the person to open.
    let (url, rest) = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = String::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            seen.push_str(&line);
            seen.push('\n');
            if line.trim_start().starts_with("http") {
                return (Some(line.trim().to_owned()), lines);
            }
        }
        (None, lines)
    })
    .await
    .unwrap();
    let url = url.expect("goosectl login printed no address");
    browser_sign_in(&url, who).await.unwrap();
    let out = tokio::task::spawn_blocking(move || {
        let err: Vec<String> = rest.map_while(Result::ok).collect();
        (child.wait_with_output().unwrap(), err.join("\n"))
    })
    .await
    .unwrap();
    let (output, err) = out;
    if output.status.success() {
        Ok(String::from_utf8(output.stdout).unwrap().trim().to_owned())
    } else {
        Err(err)
    }
}

/// `goosectl login --id-token-file` with `token` (a CI job).
fn login_with_token(base: &str, dir: &std::path::Path, token: &str) -> Result<String, String> {
    let file = dir.join("ci.token");
    std::fs::write(&file, token).unwrap();
    let out = std::process::Command::new(binary("goosectl"))
        .args(["--url", base, "login", "--id-token-file"])
        .arg(&file)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap().trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

async fn exchange(h: &Http, token: &str) -> (u16, Value) {
    h.call(
        "POST",
        "/v1/auth/sso/token",
        None,
        Some(&json!({"subject_token": token})),
    )
    .await
}

fn b64(v: &Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_users_promote_and_approve_by_team_ownership() {
    let db = goose_testkit::postgres().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut idp = OidcProvider::start(&d.join("idp"), &accounts())
        .await
        .unwrap();
    let (platform, token_key, log_key) = platform_on(Storage::Postgres(db.url.clone())).await;
    let (h, root) = serve_in_process(InProcess {
        platform,
        token_key,
        log_key,
        blobs: Arc::new(goose_evidence::blob::FsBlobStore::open(&d.join("blobs")).unwrap()),
        leases: Arc::new(goose_orchestrator::lease::MemoryLeases::default()),
        admin_key_file: d.join("admin.key"),
        policy: None,
        identity: Some(identity(&idp.issuer())),
    })
    .await;
    let base = h.base.clone();

    // rbac names the provider and the client to sign in with.
    let (s, v) = h.call("GET", "/v1/auth/sso", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(v[0]["issuer"], json!(idp.issuer()));
    assert_eq!(v[0]["client"]["client_id"], "goosectl");

    // The catalog says who owns what (a platform operator signed in with an API key: our own
    // tokens keep working beside the provider's).
    let olga = user_with_token(&h, &root, "olga", &["operator"]).await;
    // An admin sets a local user's teams with goosectl.
    let out = std::process::Command::new(binary("goosectl"))
        .args([
            "--url", &base, "--token", &root, "user", "teams", "olga", "platform",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let me = h.ok("GET", "/v1/auth/whoami", &olga, None).await;
    assert_eq!(me["teams"], json!(["platform"]));
    let catalog = "service:\n  name: pay-api\n  owner: payments\n  spec:\n    api_version: v1\n    compliance_mode: sandbox\n---\nservice:\n  name: search-api\n  owner: search\n  spec:\n    api_version: v1\n    compliance_mode: sandbox\n";
    let (s, v) = h
        .raw(
            "POST",
            "/v1/services",
            &olga,
            "application/yaml",
            catalog.as_bytes().to_vec(),
        )
        .await;
    assert!(s == 200 || s == 201, "{s} {v}");
    let (_, svc) = h
        .call("GET", "/v1/services/pay-api", Some(&root), None)
        .await;
    assert_eq!(svc["definition"]["owner"], "payments", "{svc}");

    // alice signs in with her browser: her groups are an operator of team payments.
    let alice = login(&base, "alice", None).await.unwrap();
    let me = h.ok("GET", "/v1/auth/whoami", &alice, None).await;
    assert_eq!(
        (me["user"].clone(), me["roles"].clone(), me["teams"].clone()),
        (json!("alice"), json!(["operator"]), json!(["payments"]))
    );
    let (_, user) = h.call("GET", "/v1/users/alice", Some(&root), None).await;
    assert_eq!(
        user["identities"],
        json!([{"issuer": idp.issuer(), "subject": "u-alice"}])
    );
    assert_eq!(user["display_name"], "Alice");

    // Team A cannot promote team B's service; its own, at high impact, waits on approvers.
    let (s, v) = h
        .call(
            "POST",
            "/v1/promotions",
            Some(&alice),
            Some(&json!({"service": "search-api", "version": "1.0.0", "impact": "high"})),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("search-api (owned by search)"),
        "{v}"
    );
    let (s, promo) = h
        .call("POST", "/v1/promotions", Some(&alice), Some(&json!({"service": "pay-api", "version": "1.0.0", "impact": "high", "reason": "release"})))
        .await;
    assert_eq!(s, 202, "{promo}");
    let approval = promo["request"]["approval_id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no approval id in {promo}"));
    // The facts the decision used are recorded with the request.
    let text = promo.to_string();
    assert!(
        text.contains("\"requester_teams\":[\"payments\"]"),
        "{promo}"
    );
    assert!(text.contains("\"owner\":\"payments\""), "{promo}");

    // Approvers sign in with other key types (ES256, EdDSA): the provider signs, rbac verifies.
    let bob = login(&base, "bob", Some(goose_testkit::CLIENT_ES256))
        .await
        .unwrap();
    let carol = login(&base, "carol", Some(goose_testkit::CLIENT_EDDSA))
        .await
        .unwrap();
    let dave = login(&base, "dave", None).await.unwrap();
    let grant = |t: String| {
        let h = h.clone();
        let path = format!("/v1/approvals/{approval}/grant");
        async move {
            h.call("POST", &path, Some(&t), Some(&json!({"comment": "ok"})))
                .await
        }
    };
    let (s, v) = grant(bob.clone()).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("pending")), "{v}");
    // A second approver of the owning team would complete it: refused, and on the record.
    let (s, v) = grant(carol.clone()).await;
    assert_eq!(s, 403, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("outside the owning team (payments)"),
        "{v}"
    );
    let (s, v) = grant(dave.clone()).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("approved")), "{v}");
    assert_eq!(v["owner_teams"], json!(["payments"]));
    assert_eq!(
        v["approver_teams"],
        json!({"bob": ["payments"], "dave": ["search"]})
    );
    assert_eq!(v["refusals"], 1);

    // A CI job of the payments repository acts as its service account.
    let ci = idp.ci_token().await.unwrap();
    let ci_token = login_with_token(&base, d, &ci).unwrap();
    let me = h.ok("GET", "/v1/auth/whoami", &ci_token, None).await;
    assert_eq!(
        (me["user"].clone(), me["roles"].clone(), me["teams"].clone()),
        (
            json!("ci-payments"),
            json!(["operator"]),
            json!(["payments"])
        )
    );

    // Forgeries and alterations of a real token are refused.
    let parts: Vec<&str> = ci.split('.').collect();
    let mut claims: Value = {
        use base64::Engine as _;
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(parts[1])
                .unwrap(),
        )
        .unwrap()
    };
    claims["sub"] = json!("ci-payments-but-evil");
    let altered = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims)
    );
    let hs = format!(
        "{}.{}.{}",
        b64(&json!({"alg": "HS256", "typ": "JWT"})),
        parts[1],
        parts[2]
    );
    claims["iss"] = json!("https://idp.attacker.example");
    let foreign = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    for (what, t, says) in [
        ("altered claims", altered, "InvalidSignature"),
        ("alg none", none, "not a JWT"),
        ("HMAC", hs, "HS256 is not accepted"),
        ("another issuer", foreign, "not trusted"),
    ] {
        let (s, v) = exchange(&h, &t).await;
        assert_eq!(s, 401, "{what}: {v}");
        assert!(v["detail"].as_str().unwrap().contains(says), "{what}: {v}");
    }

    // Not a token exchange: refused before any token is looked at.
    let (s, v) = h
        .call(
            "POST",
            "/v1/auth/sso/token",
            None,
            Some(&json!({"grant_type": "password", "subject_token": ci})),
        )
        .await;
    assert_eq!(s, 400, "{v}");

    // A provider account named like the local admin does not become it.
    let err = login(&base, "root", None).await.unwrap_err();
    assert!(err.contains("exists and is not linked"), "{err}");
    let (_, user) = h.call("GET", "/v1/users/root", Some(&root), None).await;
    assert_eq!(user["identities"], json!([]));

    // The provider rotates its key: tokens of the new key verify (fetched on sight) and the
    // old one's still do while it is published.
    idp.restart(Rotation::Add).await.unwrap();
    let dave2 = login(&base, "dave", None).await.unwrap();
    assert_eq!(
        h.ok("GET", "/v1/auth/whoami", &dave2, None).await["user"],
        "dave"
    );
    login_with_token(&base, d, &ci).unwrap();
    // Retired: once rbac fetches the keys again, a token signed with the old key is refused.
    idp.restart(Rotation::Retire).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (s, v) = exchange(&h, &ci).await;
    assert_eq!(s, 401, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("publishes no key"),
        "{v}"
    );

    // alice's group is removed at the provider: at her next sign-in the role goes — on the
    // ledger, so the token she still holds loses it at once too.
    let mut changed = accounts();
    changed["alice"]["groups"] = json!(["team-payments"]);
    idp.set_accounts(&changed).unwrap();
    let err = login(&base, "alice", None).await.unwrap_err();
    assert!(err.contains("no Golden Goose role is mapped"), "{err}");
    let (s, v) = h
        .call(
            "POST",
            "/v1/promotions",
            Some(&alice),
            Some(&json!({"service": "pay-api", "version": "1.0.1"})),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    let me = h.ok("GET", "/v1/auth/whoami", &alice, None).await;
    assert_eq!(me["roles"], json!([]));

    // Who did all this is on the record: alice's stream says the provider revoked the role.
    let (_, user) = h.call("GET", "/v1/users/alice", Some(&root), None).await;
    assert_eq!(user["roles"], json!([]), "{user}");
}
