//! The web console (docs/console.md) in Debian's Chromium against `goosectl dev`: the bundle
//! is what its sources build to, and a person's path through the pages works end to end
//! (libs/console/web/e2e/console.e2e.mjs drives the browser; this sets up what it needs the
//! way the quick start does and checks the outcome through the API).

use crate::support::{quick_start_package, repo_root, run, Dev};
use std::path::PathBuf;
use std::process::Command;

fn web_dir() -> PathBuf {
    repo_root().join("libs/console/web")
}

fn node(args: &[&str]) -> (bool, String) {
    let out = Command::new("node")
        .args(args)
        .current_dir(web_dir())
        .output()
        .expect("node (Node.js) must be installed");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_embedded_bundle_is_built_from_its_formatted_typechecked_sources() {
    goose_testkit::npm_ci(&web_dir()).unwrap();
    let (ok, out) = node(&[
        "node_modules/prettier/bin/prettier.cjs",
        "--check",
        "src",
        "e2e",
        "build.mjs",
    ]);
    assert!(ok, "not formatted (npm run format):\n{out}");
    let (ok, out) = node(&["node_modules/typescript/bin/tsc", "--noEmit"]);
    assert!(ok, "TypeScript errors:\n{out}");
    let (ok, out) = node(&["build.mjs", "--check"]);
    assert!(ok, "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_promotes_approves_watches_and_verifies_through_the_console_in_chromium() {
    goose_testkit::npm_ci(&web_dir()).unwrap();
    let chromium = goose_testkit::chromium().unwrap();

    // The organisation's provider: ada signs in through it (an approver by her group).
    let idp_dir = tempfile::tempdir().unwrap();
    let idp = goose_testkit::OidcProvider::start(
        idp_dir.path(),
        &serde_json::json!({"ada": {"sub": "ada-7f3a", "name": "Ada", "groups": ["approvers"]}}),
    )
    .await
    .unwrap();
    let identity = idp_dir.path().join("identity.yaml");
    std::fs::write(
        &identity,
        format!(
            "issuers:\n  - issuer: {}\n    audiences: [goose-console]\n    roles:\n      approvers: [approver]\n    client: {{client_id: goose-console, scopes: [openid, profile, groups]}}\n",
            idp.issuer()
        ),
    )
    .unwrap();
    let dev = Dev::start_with(&["--identity-config".as_ref(), identity.as_os_str()]).await;

    // olga operates and approves (so segregation of duties has something to refuse); audrey audits.
    let (code, out) = run(dev.cli(&dev.admin).args([
        "user", "create", "olga", "--role", "operator", "--role", "approver",
    ]));
    assert_eq!(code, 0, "{out}");
    let olga_key = serde_json::from_str::<serde_json::Value>(&out).unwrap()["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    std::fs::write(dev.data.path().join("olga.key"), &olga_key).unwrap();
    let (code, olga) = run(&mut goose_cli_token(&dev, "olga"));
    assert_eq!(code, 0, "{olga}");
    dev.user("audrey", "auditor");
    let audrey_key = std::fs::read_to_string(dev.data.path().join("audrey.key")).unwrap();
    let package = quick_start_package(&dev, olga.trim()).await;
    // service-a's SLOs and an incident reported by hand, for those pages.
    let (code, out) = run(dev
        .cli(olga.trim())
        .args(["sla", "apply"])
        .arg(repo_root().join("deploy/examples/slos/service-a.yaml")));
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(dev.cli(olga.trim()).args([
        "incident",
        "report",
        "--type",
        "promotion_failure",
        "--severity",
        "warning",
        "--title",
        "service-c coverage below the gate",
        "--service",
        "service-c",
    ]));
    assert_eq!(code, 0, "{out}");
    let (code, vkey) = run(dev.cli(&dev.admin).args(["keys", "show"]));
    assert_eq!(code, 0, "{vkey}");

    let shots = std::env::var("GOOSE_CONSOLE_SCREENSHOTS").ok();
    let result = dev.data.path().join("console-result.json");
    let mut cmd = Command::new("node");
    cmd.arg("e2e/console.e2e.mjs")
        .current_dir(web_dir())
        .env("GOOSE_URL", &dev.url)
        .env("GOOSE_CHROMIUM", &chromium)
        .env(
            "GOOSE_KEYS",
            serde_json::json!({"olga": olga_key, "audrey": audrey_key}).to_string(),
        )
        .env("GOOSE_PACKAGE", &package)
        .env("GOOSE_ADMIN_TOKEN", &dev.admin)
        .env("GOOSE_LOG_VKEY", vkey.trim())
        .env(
            "GOOSE_UPLOAD_FILE",
            repo_root().join("tests/fixtures/evidence/passing/junit.xml"),
        )
        .env(
            "GOOSE_SSO",
            serde_json::json!({"issuer": idp.issuer()}).to_string(),
        )
        .env("GOOSE_RESULT", &result);
    if let Some(dir) = &shots {
        cmd.env("GOOSE_SCREENSHOTS", dir);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{log}");
    assert!(out.status.success(), "the browser run failed:\n{log}");

    // The page is served with its policy: this origin only, no framing, no inline code.
    let index = reqwest::get(format!("{}/", dev.url)).await.unwrap();
    let csp = index.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(
        csp.contains(&format!("connect-src 'self' {}", idp.issuer())),
        "{csp}"
    );

    // What the pages did is what the API recorded.
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    let promotion = r["promotion"].as_str().unwrap();
    let client = reqwest::Client::new();
    let get = |path: String| {
        let client = client.clone();
        let url = format!("{}{path}", dev.url);
        let admin = dev.admin.clone();
        async move {
            client
                .get(url)
                .bearer_auth(admin)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let p = get(format!("/v1/promotions/{promotion}")).await;
    assert_eq!(p["outcome"], "partially_succeeded", "{p}");
    assert_eq!(p["request"]["requester"], "olga", "{p}");
    assert_eq!(p["request"]["reason"], "release 1.0.0 from the console");
    let approval = get(format!(
        "/v1/approvals/{}",
        p["request"]["approval_id"].as_str().unwrap()
    ))
    .await;
    assert_eq!(
        approval["approvers"],
        serde_json::json!(["ada"]),
        "{approval}"
    );
    assert!(
        approval["refusals"].as_u64().unwrap() >= 1,
        "olga's refusal: {approval}"
    );
    let ada = get("/v1/users/ada".into()).await;
    assert_eq!(ada["identities"][0]["issuer"], idp.issuer(), "{ada}");
    let uploaded = get("/v1/evidence?service=service-a&version=1.0.1".into()).await;
    assert_eq!(uploaded[0]["submitted_by"], "olga", "{uploaded}");
}

fn goose_cli_token(dev: &Dev, user: &str) -> Command {
    let mut c = crate::support::goosectl();
    c.env("GOOSE_URL", &dev.url)
        .args(["token", "--user", user, "--api-key-file"])
        .arg(dev.data.path().join(format!("{user}.key")));
    c
}
