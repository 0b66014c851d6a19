//! What an SRE team runs Golden Goose with: the metric catalog (docs/metrics.md), the Grafana
//! dashboards and the Prometheus alert rules in deploy/ — checked against each other, by
//! promtool, and by a real Prometheus scraping `goosectl dev` through a promotion: every
//! panel of every dashboard must return data (those reading Istio's sidecar metrics must run,
//! and may be empty: no mesh runs here).

use crate::support::{approve_and_watch, quick_start_promotion, repo_root, run, Dev};
use goose_testkit::{eventually, promtool, Prometheus};
use goosectl::dashboards::{self, DASHBOARDS};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

/// The window Grafana's `$__rate_interval` stands for when the test asks Prometheus itself:
/// the whole scenario.
const RATE_INTERVAL: &str = "10m";

/// Metric names a PromQL expression reads (ours: `goose_*`, `http_*` and the seed's names).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in expr.chars().chain(std::iter::once(' ')) {
        if c == '"' {
            quoted = !quoted;
            word.clear();
            continue;
        }
        if !quoted && (c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            word.push(c);
            continue;
        }
        let ours = word.starts_with("goose_")
            || word.starts_with("http_")
            || word.starts_with("istio_")
            || [
                "compliance_state",
                "promotion_status",
                "service_dependencies",
            ]
            .contains(&word.as_str());
        if ours {
            out.insert(std::mem::take(&mut word));
        }
        word.clear();
    }
    out
}

fn alert_rules() -> Vec<Value> {
    let text =
        std::fs::read_to_string(repo_root().join("deploy/prometheus/goose-alerts.yaml")).unwrap();
    let doc: Value = serde_saphyr::from_str(&text).unwrap();
    doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .collect()
}

#[test]
fn metrics_doc_dashboards_and_alerts_agree_with_the_catalog() {
    let root = repo_root();
    let doc = std::fs::read_to_string(root.join("docs/metrics.md")).unwrap_or_default();
    assert!(
        doc == goose_metrics::markdown(),
        "docs/metrics.md is stale: run `goosectl metrics > docs/metrics.md`"
    );
    let mut exprs = Vec::new();
    for d in DASHBOARDS {
        let file = root.join("deploy/grafana/dashboards").join(d.file);
        let committed: Value = serde_json::from_str(
            &std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display())),
        )
        .unwrap();
        assert!(
            committed == dashboards::render(d),
            "{} is stale: run `goosectl dashboards`",
            file.display()
        );
        for p in d.panels {
            for (q, _) in p.queries {
                exprs.push((format!("{} / {}", d.title, p.title), (*q).to_owned()));
            }
        }
    }
    let rules = alert_rules();
    assert!(rules.len() >= 12, "{}", rules.len());
    for r in &rules {
        let name = r["alert"].as_str().unwrap();
        exprs.push((name.to_owned(), r["expr"].as_str().unwrap().to_owned()));
        // Every alert says how bad and where to start.
        let severity = r["labels"]["severity"].as_str();
        assert!(
            matches!(severity, Some("page" | "ticket"))
                || r["expr"].as_str().unwrap().contains("severity"),
            "{name}: severity"
        );
        let url = r["annotations"]["runbook_url"].as_str().unwrap();
        let page = url
            .strip_prefix("https://github.com/golden-goose/golden-goose/blob/main/")
            .unwrap_or_else(|| panic!("{name}: runbook_url {url}"));
        assert!(root.join(page).is_file(), "{name}: {page} does not exist");
    }
    for (what, expr) in exprs {
        let names = metric_names(&expr);
        assert!(
            !names.is_empty(),
            "{what}: reads none of our metrics: {expr}"
        );
        for n in names {
            assert!(
                goose_metrics::by_series_name(&n).is_some()
                    || dashboards::ISTIO_METRICS.contains(&n.as_str()),
                "{what}: {n} is not in the metric catalog (libs/metrics) nor one of Istio's"
            );
        }
    }
}

#[test]
fn promtool_checks_and_unit_tests_the_alert_rules() {
    let dir = repo_root().join("deploy/prometheus");
    let promtool = promtool().unwrap();
    for args in [
        vec!["check", "rules", "goose-alerts.yaml"],
        vec!["test", "rules", "goose-alerts.test.yaml"],
    ] {
        let out = std::process::Command::new(&promtool)
            .current_dir(&dir)
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Whether a panel reads Istio's sidecar metrics (no mesh runs in the test).
fn reads_istio(expr: &str) -> bool {
    metric_names(expr).iter().any(|n| n.starts_with("istio_"))
}

async fn query(prom: &str, expr: &str) -> Vec<Value> {
    let v: Value = reqwest::Client::new()
        .get(format!("{prom}/api/v1/query"))
        .query(&[("query", expr)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "success", "{expr}: {v}");
    match &v["data"]["result"] {
        Value::Array(a) => a.clone(),
        // A scalar result (`time() - ...` of a scalar) is one value.
        other if !other.is_null() => vec![other.clone()],
        _ => Vec::new(),
    }
}

/// A real Prometheus scrapes `goosectl dev` every second while an operator onboards three
/// services, submits evidence, promotes a package (one target fails its coverage gate), an
/// approver approves it, an SLO gets measurements and a service changes its declared mode.
/// Then every panel query of every dashboard returns data from Prometheus's HTTP API, and
/// the series say what happened.
#[tokio::test]
async fn every_dashboard_panel_has_data_from_a_real_prometheus_scraping_goosectl_dev() {
    let dev = Dev::start().await;
    let target = format!("127.0.0.1:{}", dev.port);
    let prom = Prometheus::start_with(|_| {
        Ok(format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: goose-dev\n    static_configs:\n      - targets: ['{target}']\n"
        ))
    })
    .unwrap();
    let (olga, ada) = (dev.user("olga", "operator"), dev.user("ada", "approver"));
    let (_package, promotion) = quick_start_promotion(&dev, &olga).await;
    approve_and_watch(&dev, &ada, &olga, &promotion);

    // service-a's SLOs, and a minute of its requests (one in ten failing).
    let root = repo_root();
    let (code, out) = run(dev
        .cli(&olga)
        .args(["sla", "apply"])
        .arg(root.join("deploy/examples/slos/service-a.yaml")));
    assert_eq!(code, 0, "{out}");
    let now = time::OffsetDateTime::now_utc();
    let samples: Vec<Value> = (0..100)
        .map(|i| {
            let at = now - time::Duration::seconds(60 - i64::from(i) / 2);
            serde_json::json!({
                "at": at.format(&time::format_description::well_known::Rfc3339).unwrap(),
                "latency_ms": 20 + i,
                "status": if i % 10 == 0 { 503 } else { 200 },
            })
        })
        .collect();
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/measurements", dev.url))
        .bearer_auth(&olga)
        .json(&serde_json::json!({"service": "service-a", "samples": samples}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    // service-c moves from its declared mode to the other one.
    let yaml =
        std::fs::read_to_string(root.join("deploy/examples/services/service-c.yaml")).unwrap();
    let changed = if yaml.contains("compliance_mode: sandbox") {
        yaml.replace("compliance_mode: sandbox", "compliance_mode: compliant")
    } else {
        yaml.replace("compliance_mode: compliant", "compliance_mode: sandbox")
    };
    assert_ne!(changed, yaml, "service-c.yaml declares a compliance_mode");
    let file = dev.data.path().join("service-c.yaml");
    std::fs::write(&file, changed).unwrap();
    let (code, out) = run(dev.cli(&olga).args(["service", "apply", "-f"]).arg(&file));
    assert_eq!(code, 0, "{out}");

    let url = prom.url();
    let panels: Vec<(String, String)> = DASHBOARDS
        .iter()
        .flat_map(|d| {
            d.panels.iter().flat_map(move |p| {
                p.queries.iter().map(move |(q, _)| {
                    (
                        format!("{} / {}", d.title, p.title),
                        q.replace("$__rate_interval", RATE_INTERVAL),
                    )
                })
            })
        })
        .collect();
    let empty = eventually(
        Duration::from_secs(60),
        "every dashboard panel to return data",
        || {
            let (url, panels) = (url.clone(), panels.clone());
            async move {
                let mut empty = Vec::new();
                for (what, expr) in &panels {
                    // Every query runs (`query` asserts success); Istio's series exist only
                    // where sidecars report them, so those panels may be empty here.
                    let rows = query(&url, expr).await;
                    if rows.is_empty() && !reads_istio(expr) {
                        empty.push(format!("{what}: {expr}"));
                    }
                }
                empty.is_empty().then_some(empty)
            }
        },
    )
    .await;
    if empty.is_err() {
        let mut missing = Vec::new();
        for (what, expr) in &panels {
            if query(&url, expr).await.is_empty() && !reads_istio(expr) {
                missing.push(format!("{what}: {expr}"));
            }
        }
        panic!(
            "panels without data:\n{}\nprometheus log:\n{}",
            missing.join("\n"),
            prom.log()
        );
    }

    // The series say what happened, not just that something is there.
    let states = query(&url, "compliance_state == 1").await;
    let state_of = |svc: &str| {
        states
            .iter()
            .find(|s| s["metric"]["service"] == svc && s["metric"]["version"] == "1.0.0")
            .map(|s| s["metric"]["state"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        state_of("service-a").as_deref(),
        Some("compliant"),
        "{states:?}"
    );
    let failed = query(
        &url,
        "promotion_status{service=\"service-c\",status=\"failed\"} == 1",
    )
    .await;
    assert_eq!(failed.len(), 1, "service-c's target failed: {failed:?}");
    let edges = query(&url, "service_dependencies").await;
    assert!(
        edges
            .iter()
            .any(|e| e["metric"]["service"] == "service-b"
                && e["metric"]["depends_on"] == "service-a"),
        "{edges:?}"
    );
    let coverage = query(
        &url,
        "sum(goose_gate_evaluations_total{check=\"test_coverage_threshold\",outcome=\"fail\"})",
    )
    .await;
    assert!(!coverage.is_empty(), "the coverage failure is counted");
    let routes = query(
        &url,
        "sum by (route) (http_requests_total{route=\"/v1/approvals/{id}/grant\",code=\"200\"})",
    )
    .await;
    assert!(
        !routes.is_empty(),
        "requests are labelled by route template"
    );
    let deps = query(&url, "goose_dependency_up == 1").await;
    let named: BTreeSet<&str> = deps
        .iter()
        .filter_map(|d| d["metric"]["dependency"].as_str())
        .collect();
    assert!(
        ["ledger", "bus", "rbac"].iter().all(|d| named.contains(d)),
        "{named:?}"
    );
    // Panels reading Istio's metrics mix them with nothing of ours: those are the only ones
    // allowed to be empty here.
    for (what, expr) in &panels {
        if reads_istio(expr) {
            assert!(
                metric_names(expr).iter().all(|n| n.starts_with("istio_")),
                "{what}: {expr}"
            );
        }
    }
}
