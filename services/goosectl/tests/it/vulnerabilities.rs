//! A known vulnerability found by a real scanner stops a promotion; an OpenVEX statement
//! saying the version is not affected (with its justification) lets it through, and the gate
//! cites it. Driven through `goosectl dev` and the CLI, as a user would.

use crate::support::{repo_root, run, Dev};
use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The local OSV feed, killed when dropped.
struct Feed(std::process::Child, u16);

impl Drop for Feed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn osv_feed(python: &std::path::Path) -> Feed {
    let mut child = Command::new(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/osv_feed.py"))
        .arg(repo_root().join("tests/fixtures/evidence/osv/requests.json"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().parse().unwrap();
    Feed(child, port)
}

#[tokio::test]
async fn a_vulnerability_pip_audit_reports_stops_a_promotion_until_vex_answers_it() {
    let python = goose_testkit::python_env(&["pip-audit==2.10.0"]).unwrap();
    let feed = osv_feed(&python);
    let work = tempfile::tempdir().unwrap();
    let requirements = work.path().join("requirements.txt");
    std::fs::write(&requirements, "requests==2.25.0\n").unwrap();
    let sbom = work.path().join("sbom.cdx.json");
    let (code, out) = run(Command::new(python.with_file_name("pip-audit"))
        .arg("-r")
        .arg(&requirements)
        .args([
            "--no-deps",
            "--disable-pip",
            "--vulnerability-service",
            "osv",
        ])
        .arg(format!("--osv-url=http://127.0.0.1:{}/v1/query", feed.1))
        .args(["--format", "cyclonedx-json", "-o"])
        .arg(&sbom));
    assert_eq!(code, 1, "pip-audit exits 1 when it finds something: {out}");
    drop(feed);

    let dev = Dev::start().await;
    let (olga, ada) = (dev.user("olga", "operator"), dev.user("ada", "approver"));
    let (code, out) = run(dev
        .cli(&olga)
        .args(["service", "apply", "-f"])
        .arg(repo_root().join("deploy/examples/services/service-a.yaml")));
    assert_eq!(code, 0, "{out}");
    let ev = repo_root().join("tests/fixtures/evidence");
    dev.evidence(&olga, "service-a", "junit", &ev.join("passing/junit.xml"));
    dev.evidence(
        &olga,
        "service-a",
        "lcov",
        &ev.join("passing/coverage.lcov"),
    );
    dev.evidence(&olga, "service-a", "sarif", &ev.join("clippy.sarif"));
    dev.evidence(&olga, "service-a", "cyclonedx", &sbom);

    let (code, out) = run(dev.cli(&olga).args([
        "promote",
        "service-a",
        "--version",
        "1.0.0",
        "--reason",
        "first try",
        "--wait",
    ]));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("TargetFailed        service-a@1.0.0: no_known_vulnerabilities: known vulnerabilities at or above high (unrated ones count): PYSEC-2023-74 (unrated) in requests@2.25.0"),
        "{out}"
    );

    // A VEX statement must justify itself.
    let vex = |statement: serde_json::Value| {
        let file = work.path().join("vex.json");
        let doc = serde_json::json!({
            "@context": "https://openvex.dev/ns/v0.2.0",
            "@id": "https://example.com/vex/service-a-1.0.0",
            "author": "security@example.com",
            "timestamp": "2026-12-03T10:00:00Z",
            "version": 1,
            "statements": [statement],
        });
        std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
        file
    };
    let unjustified = vex(serde_json::json!({
        "vulnerability": {"name": "PYSEC-2023-74"},
        "products": [{"@id": "pkg:pypi/requests@2.25.0"}],
        "status": "not_affected",
    }));
    let (code, out) = run(dev
        .cli(&olga)
        .args([
            "evidence",
            "add",
            "--service",
            "service-a",
            "--version",
            "1.0.0",
            "--kind",
            "openvex",
        ])
        .arg(&unjustified));
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("statements[0].justification: a not_affected statement needs a justification"),
        "{out}"
    );
    let justified = vex(serde_json::json!({
        "vulnerability": {"name": "PYSEC-2023-74", "aliases": ["CVE-2023-32681"]},
        "products": [{"@id": "pkg:pypi/requests@2.25.0"}],
        "status": "not_affected",
        "justification": "vulnerable_code_not_in_execute_path",
        "impact_statement": "service-a never sends requests through a proxy",
    }));
    dev.evidence(&olga, "service-a", "openvex", &justified);

    let (code, out) = run(dev.cli(&olga).args([
        "promote",
        "service-a",
        "--version",
        "1.0.0",
        "--reason",
        "answered by VEX",
    ]));
    assert_eq!(code, 0, "{out}");
    let promotion = out.split_whitespace().nth(1).unwrap().to_owned();
    goose_testkit::eventually(Duration::from_secs(30), "the approval gate", || async {
        let (_, out) = run(dev.cli(&olga).args(["promotion", "status", &promotion]));
        out.contains("approval_granted: missing — awaiting approval")
            .then_some(())
    })
    .await
    .unwrap();
    let (code, out) = run(dev.cli(&ada).args(["promotion", "approve", &promotion]));
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(dev
        .cli(&olga)
        .args(["promotion", "status", &promotion, "--watch"]));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("no_known_vulnerabilities: pass — no open known vulnerabilities at or above high (1 reported, 0 below the threshold); answered by VEX: PYSEC-2023-74 not_affected (vulnerable_code_not_in_execute_path)"),
        "{out}"
    );
    assert!(out.contains("TargetPromoted      service-a@1.0.0"), "{out}");
    // The decision cites the VEX document among its facts.
    let audrey = dev.user("audrey", "auditor");
    let (code, out) = run(dev.cli(&audrey).args(["promotion", "explain", &promotion]));
    assert_eq!(code, 0, "{out}");
    let vex_line = out
        .lines()
        .skip_while(|l| !l.contains("no_known_vulnerabilities: pass"))
        .take_while(|l| l.contains("cites") || l.contains("no_known_vulnerabilities"))
        .count();
    assert!(
        vex_line >= 3,
        "the SBOM, the SARIF and the VEX are cited: {out}"
    );
}
