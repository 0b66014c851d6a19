//! `goosectl mesh render` against `goosectl dev`: the catalog's dependency edges become Istio
//! allows, a removed edge disappears (also from a running `--watch`), nothing else is allowed;
//! the registry serves the same policies for GitOps pulls.

use crate::support::{goosectl, repo_root, run, Dev, KillOnDrop};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

/// (caller principal, service) pairs the policies allow besides Prometheus's scrape.
fn allowed(yaml: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for doc in yaml.split("\n---\n").skip(1) {
        let p: Value = serde_saphyr::from_str(doc).unwrap();
        assert_eq!(p["kind"], "AuthorizationPolicy", "{doc}");
        assert_eq!(p["spec"]["action"], "ALLOW", "{doc}");
        let app = p["spec"]["selector"]["matchLabels"]["app"]
            .as_str()
            .unwrap()
            .to_owned();
        for rule in p["spec"]["rules"].as_array().unwrap() {
            let op = &rule["to"][0]["operation"];
            if op["paths"] == serde_json::json!(["/metrics"]) {
                assert_eq!(op["methods"], serde_json::json!(["GET"]), "{doc}");
                assert_eq!(
                    rule["from"][0]["source"]["principals"],
                    serde_json::json!(["cluster.local/ns/monitoring/sa/prometheus"])
                );
                continue;
            }
            assert_eq!(op["methods"], serde_json::json!(["GET", "POST"]), "{doc}");
            assert_eq!(op["paths"], serde_json::json!(["/api/*"]), "{doc}");
            for who in rule["from"][0]["source"]["principals"].as_array().unwrap() {
                out.insert((who.as_str().unwrap().to_owned(), app.clone()));
            }
        }
    }
    out
}

fn pair(from: &str, to: &str) -> (String, String) {
    (format!("cluster.local/ns/shop/sa/{from}"), to.to_owned())
}

#[tokio::test]
async fn mesh_policies_follow_the_dependency_graph() {
    let dev = Dev::start().await;
    let olga = dev.user("olga", "operator");
    let root = repo_root();
    let (code, out) = run(dev
        .cli(&olga)
        .args(["service", "apply", "-f"])
        .arg(root.join("deploy/examples/services")));
    assert_eq!(code, 0, "{out}");

    let (code, yaml) = run(dev
        .cli(&olga)
        .args(["mesh", "render", "--namespace", "shop"]));
    assert_eq!(code, 0, "{yaml}");
    // b needs a, c reads b's data: exactly those two allows; every service selected.
    assert_eq!(
        allowed(&yaml),
        BTreeSet::from([
            pair("service-b", "service-a"),
            pair("service-c", "service-b")
        ])
    );
    assert_eq!(
        yaml.matches("kind: AuthorizationPolicy").count(),
        3,
        "{yaml}"
    );
    // Offline from the same files: the same policies.
    let (code, offline) = run(goosectl()
        .args(["mesh", "render", "--namespace", "shop", "-f"])
        .arg(root.join("deploy/examples/services")));
    assert_eq!(code, 0, "{offline}");
    assert_eq!(offline, yaml);
    // The registry serves them for a GitOps controller.
    let served = reqwest::Client::new()
        .get(format!(
            "{}/v1/mesh/authorization-policies?namespace=shop",
            dev.url
        ))
        .bearer_auth(&olga)
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(
        served.headers()["content-type"].to_str().unwrap(),
        "application/yaml"
    );
    assert_eq!(served.text().await.unwrap(), yaml);
    let bad = reqwest::Client::new()
        .get(format!(
            "{}/v1/mesh/authorization-policies?namespace=Not_A_Name",
            dev.url
        ))
        .bearer_auth(&olga)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("not a Kubernetes name"));
    let (code, out) = run(dev
        .cli(&olga)
        .args(["mesh", "render", "--prometheus", "prometheus"]));
    assert_ne!(code, 0);
    assert!(out.contains("cluster.local/ns/"), "{out}");

    // A watcher keeps a file current while the catalog changes.
    let file = dev.data.path().join("mesh.yaml");
    let _watch = KillOnDrop(
        dev.cli(&olga)
            .args([
                "mesh",
                "render",
                "--namespace",
                "shop",
                "--watch",
                "1",
                "--out",
            ])
            .arg(&file)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    goose_testkit::eventually(Duration::from_secs(20), "the first render", || async {
        let text = std::fs::read_to_string(&file).ok()?;
        (allowed(&text).len() == 2).then_some(())
    })
    .await
    .unwrap();
    // service-c stops reading service-b's data: that allow disappears, nothing else changes.
    let yaml_c = std::fs::read_to_string(root.join("deploy/examples/services/service-c.yaml"))
        .unwrap()
        .replace("data: [service-b]", "data: []");
    let c_file = dev.data.path().join("service-c.yaml");
    std::fs::write(&c_file, yaml_c).unwrap();
    let (code, out) = run(dev.cli(&olga).args(["service", "apply", "-f"]).arg(&c_file));
    assert_eq!(code, 0, "{out}");
    goose_testkit::eventually(
        Duration::from_secs(20),
        "the edge's allow to go",
        || async {
            let text = std::fs::read_to_string(&file).ok()?;
            (allowed(&text) == BTreeSet::from([pair("service-b", "service-a")])).then_some(())
        },
    )
    .await
    .unwrap();
}
