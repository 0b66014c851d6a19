//! The Grafana dashboards of deploy/grafana/dashboards, defined once here and rendered as
//! Grafana's JSON model by `goosectl dashboards --out DIR` (a test keeps the committed files
//! equal to this). Every panel queries only metrics of the catalog (`goose_metrics`), and a
//! test runs a real Prometheus against `goosectl dev` through a promotion and checks that
//! every panel's query returns data.
//!
//! Queries may use Grafana's `$__rate_interval`; nothing else of Grafana's templating.

use serde_json::{json, Value};

/// How a panel draws its queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Values over time.
    TimeSeries,
    /// The current value, large.
    Stat,
    /// The current values as rows (one per series).
    Table,
    /// Each series' value over time as coloured bands (the status grid).
    StateTimeline,
    /// Nodes and edges (the dependency graph).
    NodeGraph,
}

impl Kind {
    fn grafana(self) -> &'static str {
        match self {
            Self::TimeSeries => "timeseries",
            Self::Stat => "stat",
            Self::Table => "table",
            Self::StateTimeline => "state-timeline",
            Self::NodeGraph => "nodeGraph",
        }
    }

    /// Panels that show the newest value query instantly.
    fn instant(self) -> bool {
        matches!(self, Self::Stat | Self::Table | Self::NodeGraph)
    }
}

/// One panel: a title, how it draws, its unit and its queries (PromQL, legend).
#[derive(Debug)]
pub struct Panel {
    pub title: &'static str,
    pub kind: Kind,
    pub unit: &'static str,
    pub description: &'static str,
    pub queries: &'static [(&'static str, &'static str)],
}

/// One dashboard.
#[derive(Debug)]
pub struct Dashboard {
    pub uid: &'static str,
    pub title: &'static str,
    /// File name under deploy/grafana/dashboards.
    pub file: &'static str,
    pub description: &'static str,
    pub panels: &'static [Panel],
}

const fn panel(
    title: &'static str,
    kind: Kind,
    unit: &'static str,
    description: &'static str,
    queries: &'static [(&'static str, &'static str)],
) -> Panel {
    Panel {
        title,
        kind,
        unit,
        description,
        queries,
    }
}

use Kind::{NodeGraph, Stat, StateTimeline, Table, TimeSeries};

/// Istio's standard metrics (from the sidecars, not from Golden Goose) the Service Mesh Status
/// dashboard reads besides ours: they exist only where the services run in the mesh.
pub const ISTIO_METRICS: &[&str] = &[
    "istio_requests_total",
    "istio_request_duration_milliseconds_bucket",
];

/// Every dashboard, in the order of docs/operations.md.
pub const DASHBOARDS: &[Dashboard] = &[
    Dashboard {
        uid: "goose-compliance",
        title: "Service Compliance Status",
        file: "service-compliance-status.json",
        description: "Seed 001 §3.6: each version's compliance state, each service's newest promotion, the dependency graph.",
        panels: &[
            panel("Compliance State", StateTimeline, "none", "1 for the state each version is in (sandbox → compliance_ready → compliant).",
                &[("compliance_state == 1", "{{service}}@{{version}} {{state}}")]),
            panel("Promotion Pipeline", StateTimeline, "none", "The status of each service's newest promotion target.",
                &[("promotion_status == 1", "{{service}} {{status}}")]),
            panel("Dependency Graph", NodeGraph, "none", "The catalog's dependency edges (service → depends_on, by kind).",
                &[("service_dependencies", "{{service}} → {{depends_on}} ({{kind}})")]),
            panel("Declared Mode", Table, "none", "Each service's declared compliance mode.",
                &[("goose_service_mode == 1", "{{service}} {{mode}}")]),
            panel("Mode Transitions", Stat, "none", "Changes of declared mode recorded in the catalog, by direction.",
                &[("sum by (from, to) (goose_mode_transitions_total)", "{{from}} → {{to}}")]),
        ],
    },
    Dashboard {
        uid: "goose-promotion-kpis",
        title: "Promotion KPIs",
        file: "promotion-kpis.json",
        description: "Seed 003: promotion success and failure rates, duration, parallel efficiency, gates, approvals.",
        panels: &[
            panel("Target Success Rate", Stat, "percentunit", "Promoted targets over all ended targets.",
                &[("sum(goose_promotion_targets_ended_total{status=\"promoted\"}) / sum(goose_promotion_targets_ended_total)", "success rate")]),
            panel("Targets Ended", TimeSeries, "short", "Targets that ended, by status.",
                &[("sum by (status) (increase(goose_promotion_targets_ended_total[$__rate_interval]))", "{{status}}")]),
            panel("Promotion Duration", TimeSeries, "s", "Request to end, P50 and P95, by outcome.",
                &[("histogram_quantile(0.5, sum by (le, outcome) (rate(goose_promotion_duration_seconds_bucket[$__rate_interval])))", "P50 {{outcome}}"),
                  ("histogram_quantile(0.95, sum by (le, outcome) (rate(goose_promotion_duration_seconds_bucket[$__rate_interval])))", "P95 {{outcome}}")]),
            panel("Parallel Efficiency", TimeSeries, "percentunit", "Critical path over wall time of promotions with two or more targets (1: as parallel as the graph allows).",
                &[("histogram_quantile(0.5, sum by (le) (rate(goose_promotion_parallel_efficiency_bucket[$__rate_interval])))", "median")]),
            panel("Gate Failures by Check", TimeSeries, "short", "Failed gate checks, by check.",
                &[("sum by (check) (increase(goose_gate_evaluations_total{outcome=\"fail\"}[$__rate_interval]))", "{{check}}")]),
            panel("Promotions Requested", TimeSeries, "short", "Promotions recorded.",
                &[("sum(increase(goose_promotions_requested_total[$__rate_interval]))", "requested")]),
            panel("Running and Waiting", Stat, "short", "Promotions not yet ended, and those waiting for an approval decision.",
                &[("max(goose_promotions_running)", "running"), ("max(goose_approvals_pending)", "waiting for approval")]),
            panel("Oldest Waits", Stat, "s", "Age of the oldest running promotion and of the oldest pending approval.",
                &[("max(goose_promotion_oldest_running_age_seconds)", "oldest running"), ("max(goose_approval_oldest_pending_age_seconds)", "oldest approval wait")]),
        ],
    },
    Dashboard {
        uid: "goose-performance",
        title: "Performance",
        file: "performance.json",
        description: "Seed 002: requests, latency, errors, health and dependencies of every service; the ledger and the relay; SLOs.",
        panels: &[
            panel("Requests by Route", TimeSeries, "reqps", "Requests per second, by route template and status code.",
                &[("sum by (route, code) (rate(http_requests_total[$__rate_interval]))", "{{route}} {{code}}")]),
            panel("Server Error Ratio", TimeSeries, "percentunit", "5xx answers over all answers.",
                &[("(sum(rate(http_requests_total{code=~\"5..\"}[$__rate_interval])) or vector(0)) / sum(rate(http_requests_total[$__rate_interval]))", "5xx ratio")]),
            panel("Latency P95 by Route", TimeSeries, "s", "95th percentile of request latency, by route template.",
                &[("histogram_quantile(0.95, sum by (le, route) (rate(http_request_duration_seconds_bucket[$__rate_interval])))", "{{route}}")]),
            panel("Health", Stat, "none", "1: ready (dependencies answer, no readiness condition).",
                &[("goose_health_status", "{{job}} {{instance}}")]),
            panel("Dependencies", StateTimeline, "none", "Each dependency of each process: 1 up, 0 down.",
                &[("goose_dependency_up", "{{job}} {{dependency}}")]),
            panel("Ledger Commits", TimeSeries, "s", "Group commit latency P99, and events appended per second.",
                &[("histogram_quantile(0.99, sum by (le) (rate(goose_ledger_commit_seconds_bucket[$__rate_interval])))", "commit P99"),
                  ("sum(rate(goose_ledger_events_appended_total[$__rate_interval]))", "events/s")]),
            panel("Relay Lag", TimeSeries, "short", "Events committed but not yet published, by relay.",
                &[("max by (relay) (goose_relay_lag_events)", "{{relay}}")]),
            panel("SLO Burn Rates", TimeSeries, "none", "Each SLO objective's error-budget burn rate per alert window (sla service).",
                &[("goose_slo_burn_rate", "{{slo}} {{window}}")]),
            panel("SLO Error Budget Left", Stat, "percentunit", "Share of each SLO objective's error budget left.",
                &[("goose_slo_error_budget_remaining_ratio", "{{slo}}")]),
            panel("Open Incidents", Stat, "short", "Incidents not yet resolved, by service and severity.",
                &[("sum by (service, severity) (goose_incidents_open)", "{{service}} {{severity}}")]),
        ],
    },
    Dashboard {
        uid: "goose-chain",
        title: "Evidence Chain Integrity",
        file: "evidence-chain-integrity.json",
        description: "Seed 003: the log verified by the chain watch, checkpoints, witnesses, intrusions.",
        panels: &[
            panel("Chain Verifies", Stat, "none", "1 while every event up to the newest signed checkpoint verifies (each chain watch).",
                &[("min(goose_chain_verify_ok)", "verified")]),
            panel("Log and Checkpoint Size", TimeSeries, "short", "Events in the log, covered by the newest signed checkpoint, and verified.",
                &[("max(goose_ledger_log_size)", "log size"), ("max(goose_chain_checkpoint_size)", "checkpoint size"), ("max(goose_chain_verified_events)", "verified")]),
            panel("Events Not Yet Checkpointed", Stat, "short", "Log size minus the newest checkpoint's size.",
                &[("max(goose_ledger_log_size) - max(goose_chain_checkpoint_size)", "uncovered")]),
            panel("Checkpoint Age", Stat, "s", "Since the newest signed checkpoint appeared.",
                &[("time() - max(goose_chain_checkpoint_seen_timestamp_seconds)", "age")]),
            panel("Since Last Verification", Stat, "s", "Since a chain watch last finished a round.",
                &[("time() - max(goose_chain_last_verify_timestamp_seconds)", "since last verify")]),
            panel("Witnessed", Stat, "none", "1 when the newest checkpoint meets the witness policy.",
                &[("max(goose_checkpoint_witnessed)", "witnessed")]),
            panel("Checkpoints Published", TimeSeries, "short", "Checkpoints signed and stored.",
                &[("sum(increase(goose_checkpoints_published_total[$__rate_interval]))", "published")]),
            panel("Intrusions and Witness Disagreements", Stat, "short", "Checkpoint rows the log key did not sign; witnesses that hold a different tree.",
                &[("sum(goose_chain_intrusions_total) or vector(0)", "intrusions"),
                  ("sum(goose_checkpoint_witness_failures_total{reason=\"conflict\"}) or vector(0)", "witness conflicts")]),
        ],
    },
    Dashboard {
        uid: "goose-mesh",
        title: "Service Mesh Status",
        file: "service-mesh-status.json",
        description: "Seed 003: what the mesh allows (the dependency graph Golden Goose renders into AuthorizationPolicies) and what it sees (Istio's standard metrics: traffic, denials, mTLS, latency).",
        panels: &[
            panel("Allowed Edges", Stat, "short", "Dependency edges, each an ALLOW of the dependant's identity on the dependency (goosectl mesh render).",
                &[("count(max by (service, depends_on) (service_dependencies))", "allowed edges")]),
            panel("Allowed Calls", NodeGraph, "none", "Who may call whom: the dependency graph.",
                &[("max by (service, depends_on) (service_dependencies)", "{{service}} → {{depends_on}}")]),
            panel("Requests Between Services", TimeSeries, "reqps", "Requests per second by source, destination and response code, as the destination's sidecar reports them.",
                &[("sum by (source_workload, destination_workload, response_code) (rate(istio_requests_total{reporter=\"destination\"}[$__rate_interval]))", "{{source_workload}} → {{destination_workload}} {{response_code}}")]),
            panel("Denied by Policy", TimeSeries, "reqps", "403s the sidecars answered: calls no AuthorizationPolicy allows (a missing dependency edge, or an isolated service).",
                &[("sum by (source_workload, destination_workload) (rate(istio_requests_total{reporter=\"destination\",response_code=\"403\"}[$__rate_interval]))", "{{source_workload}} → {{destination_workload}}")]),
            panel("Mutual TLS Share", Stat, "percentunit", "Share of requests that arrived over mutual TLS (STRICT: 1).",
                &[("sum(rate(istio_requests_total{reporter=\"destination\",connection_security_policy=\"mutual_tls\"}[$__rate_interval])) / sum(rate(istio_requests_total{reporter=\"destination\"}[$__rate_interval]))", "mTLS")]),
            panel("Latency P95 Between Services", TimeSeries, "ms", "95th percentile of request latency by destination, as the sidecars measure it.",
                &[("histogram_quantile(0.95, sum by (le, destination_workload) (rate(istio_request_duration_milliseconds_bucket{reporter=\"destination\"}[$__rate_interval])))", "{{destination_workload}}")]),
        ],
    },
    Dashboard {
        uid: "goose-worm",
        title: "WORM Storage",
        file: "worm-storage.json",
        description: "Seed 003: the write-once evidence store — objects, bytes, retention.",
        panels: &[
            panel("Objects", Stat, "short", "Objects in the evidence store.", &[("sum by (backend) (goose_worm_objects)", "{{backend}}")]),
            panel("Bytes", TimeSeries, "bytes", "Bytes in the evidence store.", &[("sum by (backend) (goose_worm_bytes)", "{{backend}}")]),
            panel("Oldest Object Age", Stat, "s", "Since the oldest object was written.",
                &[("time() - min by (backend) (goose_worm_oldest_object_timestamp_seconds)", "{{backend}}")]),
            panel("Retention Horizon", Stat, "s", "Until the earliest retention date: nothing can be deleted before it.",
                &[("min by (backend) (goose_worm_retention_horizon_timestamp_seconds) - time()", "{{backend}}")]),
            panel("Growth", TimeSeries, "Bps", "Bytes added per second.", &[("sum by (backend) (deriv(goose_worm_bytes[$__rate_interval]))", "{{backend}}")]),
        ],
    },
];

/// Grafana's JSON model of a dashboard (schema 39, Grafana 10/11), with a `datasource`
/// variable so it works with any Prometheus data source.
pub fn render(d: &Dashboard) -> Value {
    let panels: Vec<Value> = d
        .panels
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (w, h) = if p.kind == Kind::Stat {
                (8, 6)
            } else {
                (12, 8)
            };
            let targets: Vec<Value> = p
                .queries
                .iter()
                .enumerate()
                .map(|(j, (expr, legend))| {
                    json!({
                        "refId": char::from(b'A' + u8::try_from(j).unwrap_or(0)).to_string(),
                        "datasource": {"type": "prometheus", "uid": "${datasource}"},
                        "expr": expr,
                        "legendFormat": legend,
                        "instant": p.kind.instant(),
                        "range": !p.kind.instant(),
                    })
                })
                .collect();
            json!({
                "id": i + 1,
                "type": p.kind.grafana(),
                "title": p.title,
                "description": p.description,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": h, "w": w, "x": (i % 2) * 12, "y": (i / 2) * 8},
                "fieldConfig": {"defaults": {"unit": p.unit}, "overrides": []},
                "options": {},
                "targets": targets,
            })
        })
        .collect();
    json!({
        "uid": d.uid,
        "title": d.title,
        "description": d.description,
        "tags": ["golden-goose"],
        "editable": true,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "browser",
        "templating": {"list": [{
            "name": "datasource",
            "label": "Prometheus",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
        }]},
        "annotations": {"list": []},
        "panels": panels,
    })
}

/// Writes every dashboard into `dir` (pretty JSON, newline-terminated).
pub fn write_all(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for d in DASHBOARDS {
        let text = serde_json::to_string_pretty(&render(d))? + "\n";
        std::fs::write(dir.join(d.file), text)?;
    }
    Ok(())
}
