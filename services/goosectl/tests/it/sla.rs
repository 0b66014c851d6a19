//! `goosectl sla` and `goosectl incident` against `goosectl dev`, as an operator and an
//! analyst would use them.

use crate::support::{repo_root, run, Dev};

#[tokio::test]
async fn slos_and_incidents_from_the_terminal() {
    let dev = Dev::start().await;
    let root = repo_root();
    let (olga, ana) = (dev.user("olga", "operator"), dev.user("ana", "analyst"));
    let (code, out) = run(dev
        .cli(&olga)
        .args(["service", "apply", "-f"])
        .arg(root.join("deploy/examples/services/service-a.yaml")));
    assert_eq!(code, 0, "{out}");

    let slos = root.join("deploy/examples/slos/service-a.yaml");
    let (code, out) = run(dev.cli(&olga).args(["sla", "apply"]).arg(&slos));
    assert_eq!(code, 0, "{out}");
    let applied: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(applied[0]["name"], "service-a-availability", "{out}");
    assert_eq!(applied[1]["version"], 1, "{out}");
    // An analyst reads but does not define.
    let (code, out) = run(dev.cli(&ana).args(["sla", "apply"]).arg(&slos));
    assert_ne!(code, 0);
    assert!(out.contains("sla.define"), "{out}");
    let (code, out) = run(dev.cli(&ana).args(["sla", "list"]));
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(dev.cli(&ana).args([
        "sla",
        "status",
        "service-a-latency",
        "--at",
        "2026-12-01T12:00:00+01:00",
    ]));
    assert_eq!(code, 0, "{out}");
    let st: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (st["requests"].as_u64(), st["at"].as_i64()),
        (Some(0), Some(1_796_122_800)),
        "{out}"
    );

    let (code, out) = run(dev.cli(&ana).args([
        "incident",
        "report",
        "--type",
        "security_finding",
        "--severity",
        "error",
        "--title",
        "API key in a log line",
        "--service",
        "service-a",
    ]));
    assert_eq!(code, 0, "{out}");
    let id = serde_json::from_str::<serde_json::Value>(&out).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, out) = run(dev.cli(&olga).args(["incident", "ack", &id]));
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(dev.cli(&olga).args(["incident", "ack", &id]));
    assert_ne!(code, 0);
    assert!(out.contains("cannot be acknowledged"), "{out}");
    let (code, out) = run(dev
        .cli(&olga)
        .args(["incident", "resolve", &id, "key rotated"]));
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(dev
        .cli(&ana)
        .args(["incident", "list", "--status", "resolved"]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&id) && out.contains("key rotated"), "{out}");
    let (code, out) = run(dev.cli(&ana).args([
        "incident",
        "report",
        "--type",
        "outage",
        "--severity",
        "error",
        "--title",
        "x",
    ]));
    assert_ne!(code, 0, "{out}");
}
