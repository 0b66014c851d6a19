//! `goosectl sla` and `goosectl incident`: the sla service's objectives, their status and
//! incidents, from the terminal.

use crate::api::{get_print, print_json, send, Svc};
use crate::cli::Api;
use anyhow::{Context as _, Result};
use goose_domain::sla::prom::Mapping;
use goose_domain::sla::{openslo, rules};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum SlaCommand {
    /// Apply OpenSLO v1 documents (a YAML file, several documents): changed SLOs get a new version.
    Apply { file: PathBuf },
    /// Every SLO, current version.
    List,
    /// An SLO's attainment, error budget left, burn-rate alerts and latency percentiles.
    Status {
        name: String,
        /// The moment (RFC 3339; default now).
        #[arg(long)]
        at: Option<String>,
    },
    /// Prometheus recording and alerting rules (Sloth-style burn rates) for SLOs: from OpenSLO
    /// files (offline), or the sla service's current SLOs when no file is given.
    Rules {
        files: Vec<PathBuf>,
        /// The runbook the alerts link to (`runbook_url`).
        #[arg(
            long,
            default_value = "https://github.com/golden-goose/golden-goose/blob/main/docs/runbooks/slo-burn-rate.md"
        )]
        runbook: String,
        /// The request counter (one series per status code).
        #[arg(long, default_value = "http_requests_total")]
        requests_metric: String,
        /// The latency histogram in seconds (`_bucket` and `_count` are read).
        #[arg(long, default_value = "http_request_duration_seconds")]
        latency_metric: String,
        /// The label naming the service.
        #[arg(long, default_value = "service")]
        service_label: String,
        /// The label holding the status code.
        #[arg(long, default_value = "code")]
        status_label: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum IncidentCommand {
    /// Incidents, optionally of one status (open, acknowledged, mitigated, resolved).
    List {
        #[arg(long)]
        status: Option<String>,
    },
    /// One incident with its timeline.
    Show { id: String },
    /// Report an incident by hand.
    Report {
        /// sla_breach, compliance_violation, security_finding, evidence_integrity,
        /// unauthorized_access or promotion_failure.
        #[arg(long = "type")]
        kind: String,
        /// info, warning, error or critical.
        #[arg(long)]
        severity: String,
        #[arg(long)]
        title: String,
        #[arg(long)]
        service: Option<String>,
    },
    /// Acknowledge an open incident.
    Ack { id: String },
    /// Assign an incident.
    Assign { id: String, assignee: String },
    /// Add a note to its timeline.
    Note { id: String, note: String },
    /// Mark it mitigated, saying what was done.
    Mitigate { id: String, note: String },
    /// Resolve it, saying how.
    Resolve { id: String, note: String },
    /// Reopen it, saying why.
    Reopen { id: String, reason: String },
}

/// Percent-encodes a query value (RFC 3986 unreserved characters kept).
pub(crate) fn query_value(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub async fn sla(api: &Api, command: SlaCommand) -> Result<ExitCode> {
    match command {
        SlaCommand::Apply { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let rb = api
                .request(Svc::Sla, reqwest::Method::PUT, "/v1/slos")?
                .header("content-type", "application/yaml")
                .body(text);
            print_json(&send(rb).await?.json()?)
        }
        SlaCommand::List => get_print(api, Svc::Sla, "/v1/slos").await,
        SlaCommand::Rules {
            files,
            runbook,
            requests_metric,
            latency_metric,
            service_label,
            status_label,
        } => {
            let mut slos = Vec::new();
            for file in &files {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("reading {}", file.display()))?;
                slos.extend(openslo::parse(&text).with_context(|| format!("{}", file.display()))?);
            }
            if files.is_empty() {
                let rb = api.request(Svc::Sla, reqwest::Method::GET, "/v1/slos")?;
                slos = serde_json::from_value(send(rb).await?.json()?)
                    .context("the sla service's SLO list")?;
            }
            let mapping = Mapping {
                requests_metric,
                latency_metric,
                service_labels: vec![service_label],
                status_labels: vec![status_label],
                ..Mapping::default()
            };
            let file = rules::rules(&slos, &mapping, &runbook);
            print!(
                "# Generated by `goosectl sla rules` from {} SLO(s); regenerate, do not edit.\n{}",
                slos.len(),
                serde_saphyr::to_string(&file).context("rules as YAML")?
            );
            Ok(ExitCode::SUCCESS)
        }
        SlaCommand::Status { name, at } => {
            let path = match at {
                Some(at) => format!("/v1/slos/{name}/status?at={}", query_value(&at)),
                None => format!("/v1/slos/{name}/status"),
            };
            get_print(api, Svc::Sla, &path).await
        }
    }
}

pub async fn incident(api: &Api, command: IncidentCommand) -> Result<ExitCode> {
    let post = |path: String, body: serde_json::Value| async move {
        let rb = api
            .request(Svc::Sla, reqwest::Method::POST, &path)?
            .json(&body);
        print_json(&send(rb).await?.json()?)
    };
    match command {
        IncidentCommand::List { status } => {
            let path = match status {
                Some(s) => format!("/v1/incidents?status={}", query_value(&s)),
                None => "/v1/incidents".to_owned(),
            };
            get_print(api, Svc::Sla, &path).await
        }
        IncidentCommand::Show { id } => {
            get_print(api, Svc::Sla, &format!("/v1/incidents/{id}")).await
        }
        IncidentCommand::Report {
            kind,
            severity,
            title,
            service,
        } => {
            post(
                "/v1/incidents".into(),
                json!({"type": kind, "severity": severity, "title": title, "service": service}),
            )
            .await
        }
        IncidentCommand::Ack { id } => {
            post(format!("/v1/incidents/{id}/acknowledge"), json!({})).await
        }
        IncidentCommand::Assign { id, assignee } => {
            post(
                format!("/v1/incidents/{id}/assign"),
                json!({"assignee": assignee}),
            )
            .await
        }
        IncidentCommand::Note { id, note } => {
            post(format!("/v1/incidents/{id}/notes"), json!({"note": note})).await
        }
        IncidentCommand::Mitigate { id, note } => {
            post(
                format!("/v1/incidents/{id}/mitigate"),
                json!({"note": note}),
            )
            .await
        }
        IncidentCommand::Resolve { id, note } => {
            post(format!("/v1/incidents/{id}/resolve"), json!({"note": note})).await
        }
        IncidentCommand::Reopen { id, reason } => {
            post(
                format!("/v1/incidents/{id}/reopen"),
                json!({"note": reason}),
            )
            .await
        }
    }
}
