//! `goosectl model` against `goosectl dev`, as an ML engineer (operator), two approvers and an
//! analyst would use it: register with a digest computed from the artifact, staging, the
//! production approval raised by the deploy and granted with `goosectl approval grant`,
//! rollback, history, production at a time.

use crate::support::{run, Dev};
use serde_json::Value;

/// The first JSON document of `out` (stderr may follow it).
fn first_json(out: &str) -> Value {
    serde_json::Deserializer::from_str(out)
        .into_iter::<Value>()
        .next()
        .unwrap_or_else(|| panic!("no JSON in {out}"))
        .unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[tokio::test]
async fn models_from_the_terminal() {
    let mut dev = Dev::start().await;
    let (mia, ann, bob, ana) = (
        dev.user("mia", "operator"),
        dev.user("ann", "approver"),
        dev.user("bob", "approver"),
        dev.user("ana", "analyst"),
    );
    let dir = tempfile::tempdir().unwrap();
    let artifact = dir.path().join("model.pkl");
    std::fs::write(&artifact, b"not really a pickle").unwrap();
    let card = dir.path().join("card.md");
    std::fs::write(&card, "# Churn\nPredicts churn.").unwrap();
    let register = |tok: &str, accuracy: &str| {
        run(dev
            .cli(tok)
            .args([
                "model",
                "register",
                "churn",
                "--artifact-uri",
                "s3://m/churn.pkl",
                "--artifact",
            ])
            .arg(&artifact)
            .args([
                "--framework",
                "sklearn",
                "--training-data",
                "s3://data/churn/2026-11",
            ])
            .args([
                "--metric",
                &format!("accuracy@holdout={accuracy}"),
                "--risk",
                "high",
                "--model-card",
            ])
            .arg(&card))
    };
    let (code, out) = register(&mia, "0.91");
    assert_eq!(code, 0, "{out}");
    assert_eq!(first_json(&out)["version"], 1, "{out}");
    assert_eq!(first_json(&out)["created"], true, "{out}");
    let (code, out) = register(&mia, "0.93");
    assert_eq!(code, 0, "{out}");
    assert_eq!(first_json(&out)["version"], 2, "{out}");
    let (code, out) = register(&ana, "0.99");
    assert_ne!(code, 0, "an analyst cannot register");
    assert!(out.contains("model.register"), "{out}");
    let (code, out) = run(dev.cli(&mia).args([
        "model",
        "register",
        "churn",
        "--artifact-uri",
        "s3://m",
        "--metric",
        "accuracy",
    ]));
    assert_ne!(code, 0);
    assert!(out.contains("name=value"), "{out}");

    // The digest is the artifact's SHA-256.
    let (code, out) = run(dev.cli(&ana).args(["model", "show", "churn"]));
    assert_eq!(code, 0, "{out}");
    let m = first_json(&out);
    use sha2::Digest as _;
    let want = format!("{:x}", sha2::Sha256::digest(b"not really a pickle"));
    assert_eq!(m["versions"]["1"]["spec"]["digest"], want.as_str(), "{out}");

    // The production gate's evidence, submitted to the evidence service for each version.
    let sbom = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/evidence/sbom.cdx.json"
    );
    let metrics = dir.path().join("metrics.json");
    std::fs::write(
        &metrics,
        r#"{"dataset": "holdout", "metrics": {"accuracy": 0.9}}"#,
    )
    .unwrap();
    let evidence = |v: &str, kind: &str, file: &std::path::Path| {
        run(dev
            .cli(&mia)
            .args([
                "evidence",
                "add",
                "--model",
                "churn",
                "--version",
                v,
                "--kind",
                kind,
            ])
            .arg(file))
    };
    for v in ["1", "2"] {
        let (code, out) = run(dev
            .cli(&mia)
            .args(["model", "deploy", "churn", v, "--to", "staging"]));
        assert_eq!(code, 0, "{out}");
        let (code, out) =
            run(dev
                .cli(&mia)
                .args(["model", "deploy", "churn", v, "--to", "production"]));
        assert_ne!(code, 0, "no evidence yet: {out}");
        assert!(out.contains("production.evidence.sbom: fail"), "{out}");
        for (kind, file) in [
            ("model-metrics", metrics.as_path()),
            ("model-card", card.as_path()),
            ("cyclonedx", std::path::Path::new(sbom)),
        ] {
            let (code, out) = evidence(v, kind, file);
            assert_eq!(code, 0, "{kind}: {out}");
            assert_eq!(first_json(&out)["subject"], "model", "{out}");
        }
        let (code, out) = run(dev.cli(&mia).args([
            "model",
            "deploy",
            "churn",
            v,
            "--to",
            "production",
            "--reason",
            "quarterly",
        ]));
        assert_eq!(code, 0, "{out}");
        let a = first_json(&out);
        assert_eq!(a["status"], "pending_approval", "{out}");
        assert!(
            out.contains("once granted, run again with --approval"),
            "{out}"
        );
        let id = a["approval_id"].as_str().unwrap().to_owned();
        let (code, out) = run(dev.cli(&mia).args(["approval", "grant", &id]));
        assert_ne!(code, 0, "the deployer cannot approve: {out}");
        for who in [&ann, &bob] {
            let (code, out) = run(dev.cli(who).args(["approval", "grant", &id]));
            assert_eq!(code, 0, "{out}");
        }
        let (code, out) = run(dev.cli(&mia).args([
            "model",
            "deploy",
            "churn",
            v,
            "--to",
            "production",
            "--approval",
            &id,
        ]));
        assert_eq!(code, 0, "{out}");
        assert_eq!(first_json(&out)["status"], "deployed", "{out}");
    }
    let between = time::OffsetDateTime::now_utc();
    let (code, out) = run(dev.cli(&mia).args([
        "model",
        "rollback",
        "churn",
        "--reason",
        "drift on live traffic",
    ]));
    assert_eq!(code, 0, "{out}");
    assert_eq!(first_json(&out)["production"], 1, "{out}");

    let (code, out) = run(dev.cli(&ana).args(["model", "history", "churn"]));
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "a header and five changes: {out}");
    assert!(
        lines[5].contains("rollback")
            && lines[5].contains("drift on live traffic")
            && lines[5].contains("mia"),
        "{out}"
    );
    let at = between
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (code, out) = run(dev
        .cli(&ana)
        .args(["model", "history", "churn", "--at", &at]));
    assert_eq!(code, 0, "{out}");
    assert_eq!(first_json(&out)["version"], 2, "{out}");
    let (code, out) =
        run(dev
            .cli(&mia)
            .args(["model", "deprecate", "churn", "1", "--reason", "old"]));
    assert_ne!(code, 0);
    assert!(out.contains("is in production"), "{out}");
    let (code, out) = run(dev.cli(&ana).args(["evidence", "list", "--model", "churn"]));
    assert_eq!(code, 0, "{out}");
    assert_eq!(first_json(&out).as_array().unwrap().len(), 6, "{out}");
    let (code, out) = evidence("9", "model-card", &card);
    assert_ne!(code, 0);
    assert!(out.contains("has no version 9"), "{out}");

    // A use case on the model's champion: drafted and submitted by the operator, granted by
    // an approver (not by its submitter), deployed on the production version, deprecated.
    let (code, out) = run(dev.cli(&mia).args([
        "usecase",
        "create",
        "churn-alerts",
        "--title",
        "Churn alerts",
        "--impact",
        "low",
        "--model",
        "churn",
    ]));
    assert_eq!(code, 0, "{out}");
    assert_eq!(first_json(&out)["state"], "draft", "{out}");
    let (code, out) = run(dev.cli(&mia).args([
        "usecase", "create", "x", "--title", "X", "--impact", "low", "--model", "@1",
    ]));
    assert_ne!(code, 0);
    assert!(out.contains("name@version"), "{out}");
    let (code, out) = run(dev.cli(&mia).args(["usecase", "submit", "churn-alerts"]));
    assert_eq!(code, 0, "{out}");
    assert_eq!(first_json(&out)["state"], "submitted", "{out}");
    let (code, out) = run(dev.cli(&mia).args(["usecase", "approve", "churn-alerts"]));
    assert_ne!(code, 0, "the submitter cannot approve: {out}");
    let (code, out) =
        run(dev
            .cli(&ann)
            .args(["usecase", "approve", "churn-alerts", "--comment", "ok"]));
    assert_eq!(code, 0, "{out}");
    assert_eq!(first_json(&out)["state"], "approved", "{out}");
    let (code, out) = run(dev.cli(&mia).args(["usecase", "deploy", "churn-alerts"]));
    assert_eq!(code, 0, "{out}");
    let u = first_json(&out);
    assert_eq!(u["state"], "deployed", "{out}");
    assert!(
        out.contains("\"version\": 1"),
        "pinned to the production version: {out}"
    );
    let (code, out) = run(dev.cli(&ana).args(["usecase", "list"]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("churn-alerts"), "{out}");

    // Version 2 goes back to production; version 1 is out of production but the deployed use
    // case still runs on it: deprecating it is refused, naming the use case.
    let (code, out) =
        run(dev
            .cli(&mia)
            .args(["model", "deploy", "churn", "2", "--to", "production"]));
    assert_eq!(code, 0, "{out}");
    let id = first_json(&out)["approval_id"].as_str().unwrap().to_owned();
    for who in [&ann, &bob] {
        let (code, out) = run(dev.cli(who).args(["approval", "grant", &id]));
        assert_eq!(code, 0, "{out}");
    }
    let (code, out) = run(dev.cli(&mia).args([
        "model",
        "deploy",
        "churn",
        "2",
        "--to",
        "production",
        "--approval",
        &id,
    ]));
    assert_eq!(code, 0, "{out}");
    let (code, out) =
        run(dev
            .cli(&mia)
            .args(["model", "deprecate", "churn", "1", "--reason", "old"]));
    assert_ne!(code, 0);
    assert!(
        out.contains("version 1 is used by deployed use cases: churn-alerts"),
        "{out}"
    );
    let (code, out) = run(dev.cli(&mia).args([
        "usecase",
        "deprecate",
        "churn-alerts",
        "--reason",
        "replaced by retention-v2",
    ]));
    assert_eq!(code, 0, "{out}");
    assert_eq!(first_json(&out)["state"], "deprecated", "{out}");
    let (code, out) = run(dev.cli(&ana).args(["usecase", "show", "churn-alerts"]));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("replaced by retention-v2") && out.contains("mia"),
        "who and why stay: {out}"
    );

    // Rejected: back to draft, with the approver's reason.
    let (code, out) = run(dev.cli(&mia).args([
        "usecase", "create", "upsell", "--title", "Upsell", "--impact", "low", "--model", "churn@1",
    ]));
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(dev.cli(&mia).args(["usecase", "submit", "upsell"]));
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(dev.cli(&bob).args([
        "usecase",
        "reject",
        "upsell",
        "--reason",
        "no consent basis",
    ]));
    assert_eq!(code, 0, "{out}");
    assert_eq!(first_json(&out)["state"], "draft", "{out}");

    // With the use case deprecated, version 1 can go.
    let (code, out) =
        run(dev
            .cli(&mia)
            .args(["model", "deprecate", "churn", "1", "--reason", "old"]));
    assert_eq!(code, 0, "{out}");

    // Everything above is on the chain, and the chain verifies offline.
    dev.kill();
    let (code, out) = run(crate::support::goosectl()
        .arg("--data-dir")
        .arg(dev.data.path())
        .arg("verify"));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("OK: ") && out.contains(" events verified"),
        "{out}"
    );
}
