//! `goosectl runbook`: the seed's SRE runbooks (deploy/runbooks/*.yaml) executed against the
//! live system. Each step reads (or, for isolate_service, changes) the system through its
//! APIs, prints what it found and what to do next, and the whole run is recorded on the chain
//! by the sla service (`POST /v1/runbook-runs`).

use crate::api::{self, Svc};
use crate::cli::{Api, Target};
use anyhow::{bail, Context as _, Result};
use goose_domain::runbook::{Runbook, RunbookRun, StepOutcome, StepResult, STEPS};
use goose_ledger::{SignedCheckpoint, Vkey};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;

/// The runbooks shipped in deploy/runbooks.
const SHIPPED: &[&str] = &[
    include_str!("../../../deploy/runbooks/promotion_failure.yaml"),
    include_str!("../../../deploy/runbooks/compliance_violation.yaml"),
];

#[derive(Debug, clap::Subcommand)]
pub enum RunbookCommand {
    /// The runbooks and their steps.
    List,
    /// Run a runbook's steps for a service: print findings and next actions, record the run.
    Run(RunArgs),
    /// Recorded runs (from the chain), optionally of one service.
    Runs {
        #[arg(long)]
        service: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The runbook: promotion_failure, compliance_violation (or one given with --file).
    name: String,
    /// The service it is about.
    #[arg(long)]
    service: String,
    /// The promotion it is about (promotion_failure).
    #[arg(long)]
    promotion: Option<String>,
    /// A runbook file instead of the shipped one of that name.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Where collect_evidence writes the audit export and isolate_service the mesh policy
    /// (default: ./runbook-<service>-<unix time>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The namespace of the mesh policy isolate_service writes.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// The log's verifier key for check_evidence_chain (default: the data dir's log key).
    #[arg(long)]
    log_vkey: Option<String>,
}

pub async fn run(target: &Target, api: &Api, command: RunbookCommand) -> Result<ExitCode> {
    match command {
        RunbookCommand::List => {
            for r in shipped()? {
                println!("{}: {}", r.name, r.title);
                for s in &r.steps {
                    let what = STEPS.iter().find(|(k, _)| k == s).map_or("", |(_, w)| *w);
                    println!("  {s}: {what}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        RunbookCommand::Runs { service } => {
            let path = match service {
                Some(s) => format!("/v1/runbook-runs?service={s}"),
                None => "/v1/runbook-runs".into(),
            };
            api::get_print(api, Svc::Sla, &path).await
        }
        RunbookCommand::Run(args) => execute(target, api, args).await,
    }
}

fn shipped() -> Result<Vec<Runbook>> {
    SHIPPED
        .iter()
        .map(|t| Runbook::parse(t).map_err(anyhow::Error::msg))
        .collect()
}

async fn execute(target: &Target, api: &Api, args: RunArgs) -> Result<ExitCode> {
    let runbook = match &args.file {
        Some(f) => Runbook::parse(
            &std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?,
        )
        .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?,
        None => shipped()?
            .into_iter()
            .find(|r| r.name == args.name)
            .with_context(|| format!("no runbook named {:?} (goosectl runbook list)", args.name))?,
    };
    goose_domain::catalog::ServiceName::parse(&args.service).map_err(anyhow::Error::msg)?;
    // The service must exist: a typo should not produce a run full of "not found".
    api::get(
        api,
        Svc::Registry,
        &format!("/v1/services/{}", args.service),
    )
    .await
    .with_context(|| format!("service {}", args.service))?;
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "runbook-{}-{}",
            args.service,
            time::OffsetDateTime::now_utc().unix_timestamp()
        ))
    });
    println!("{} — {} ({})", runbook.title, args.service, runbook.name);
    let mut steps = Vec::new();
    for step in &runbook.steps {
        let ctx = Ctx {
            target,
            api,
            args: &args,
            out: &out,
            earlier: &steps,
        };
        let (outcome, findings) = match ctx.step(step).await {
            Ok(r) => r,
            Err(e) => (StepOutcome::Failed, vec![format!("{e:#}")]),
        };
        println!("\n[{}] {step}", label(outcome));
        for f in &findings {
            println!("  - {f}");
        }
        steps.push(StepResult {
            step: step.clone(),
            outcome,
            findings,
        });
    }
    let run = RunbookRun {
        runbook: runbook.name.clone(),
        service: args.service.clone(),
        promotion: args.promotion.clone(),
        steps,
    };
    let recorded = api::send(
        api.request(Svc::Sla, reqwest::Method::POST, "/v1/runbook-runs")?
            .json(&run),
    )
    .await
    .context("recording the run")?
    .json()?;
    println!(
        "\nrecorded as runbook run {} (ledger position {})",
        recorded["id"].as_str().unwrap_or("?"),
        recorded["position"]
    );
    let worst = run
        .steps
        .iter()
        .map(|s| s.outcome)
        .fold(StepOutcome::Ok, |a, b| match (a, b) {
            (StepOutcome::Failed, _) | (_, StepOutcome::Failed) => StepOutcome::Failed,
            (StepOutcome::Attention, _) | (_, StepOutcome::Attention) => StepOutcome::Attention,
            _ => StepOutcome::Ok,
        });
    Ok(match worst {
        StepOutcome::Ok => ExitCode::SUCCESS,
        StepOutcome::Attention => ExitCode::from(1),
        StepOutcome::Failed => ExitCode::from(2),
    })
}

fn label(o: StepOutcome) -> &'static str {
    match o {
        StepOutcome::Ok => "ok",
        StepOutcome::Attention => "ATTENTION",
        StepOutcome::Failed => "FAILED",
    }
}

struct Ctx<'a> {
    target: &'a Target,
    api: &'a Api,
    args: &'a RunArgs,
    out: &'a PathBuf,
    earlier: &'a [StepResult],
}

type Step = (StepOutcome, Vec<String>);

impl Ctx<'_> {
    async fn step(&self, name: &str) -> Result<Step> {
        match name {
            "verify_dependencies" => self.verify_dependencies().await,
            "check_evidence_chain" => self.check_evidence_chain().await,
            "validate_compliance_state" => self.validate_compliance_state().await,
            "isolate_service" => self.isolate_service().await,
            "collect_evidence" => self.collect_evidence().await,
            "trigger_investigation" => self.trigger_investigation().await,
            other => bail!("no executor for step {other:?}"),
        }
    }

    fn service(&self) -> &str {
        &self.args.service
    }

    /// The compliance rows of a service: (version, state).
    async fn states(&self, service: &str) -> Result<Vec<(String, String)>> {
        let rows = api::get(
            self.api,
            Svc::Orchestrator,
            &format!("/v1/compliance?service={service}"),
        )
        .await?;
        Ok(rows
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                (
                    r["version"].as_str().unwrap_or("?").to_owned(),
                    r["state"].as_str().unwrap_or("?").to_owned(),
                )
            })
            .collect())
    }

    async fn verify_dependencies(&self) -> Result<Step> {
        let svc = api::get(
            self.api,
            Svc::Registry,
            &format!("/v1/services/{}", self.service()),
        )
        .await?;
        let deps = &svc["definition"]["spec"]["dependencies"];
        let mut findings = Vec::new();
        let mut outcome = StepOutcome::Ok;
        for kind in ["runtime", "data", "security"] {
            for d in deps[kind].as_array().into_iter().flatten() {
                let d = d.as_str().unwrap_or("?");
                let compliant: Vec<String> = self
                    .states(d)
                    .await?
                    .into_iter()
                    .filter(|(_, s)| s == "compliant")
                    .map(|(v, _)| v)
                    .collect();
                if compliant.is_empty() {
                    outcome = StepOutcome::Attention;
                    findings.push(format!(
                        "{d} ({kind}): no compliant version — promote it first (goosectl promote {d} VERSION)"
                    ));
                } else {
                    findings.push(format!(
                        "{d} ({kind}): compliant at {}",
                        compliant.join(", ")
                    ));
                }
            }
        }
        if findings.is_empty() {
            findings.push("no dependencies".into());
        }
        Ok((outcome, findings))
    }

    async fn check_evidence_chain(&self) -> Result<Step> {
        let log_key = match &self.args.log_vkey {
            Some(v) => crate::keyfiles::parse_vkey_arg(v)?,
            None => match crate::keyfiles::load_log_key(None, &self.target.data_dir) {
                Ok(k) => Vkey::parse(&k.vkey())?,
                Err(_) => {
                    return Ok((
                        StepOutcome::Attention,
                        vec!["no log key to check checkpoints against: give --log-vkey".into()],
                    ))
                }
            },
        };
        let note = api::send(self.api.request(
            Svc::Evidence,
            reqwest::Method::GET,
            "/v1/chain/checkpoint",
        )?)
        .await?
        .text();
        let mut findings = Vec::new();
        let cp = match SignedCheckpoint::verify(&note, &log_key) {
            Ok(cp) => cp,
            Err(e) => {
                return Ok((
                    StepOutcome::Attention,
                    vec![format!(
                        "the newest checkpoint is not signed by the log key {}: {e} — see docs/runbooks/chain-integrity.md",
                        log_key.name
                    )],
                ))
            }
        };
        findings.push(format!(
            "newest checkpoint: size {}, root {}, signed by {}",
            cp.checkpoint.size,
            hex::encode(cp.checkpoint.root),
            log_key.name
        ));
        let state =
            crate::trust::ClientState::open(crate::trust::default_state_dir().as_deref(), &log_key);
        let mut outcome = StepOutcome::Ok;
        match state.load()? {
            Some(seen) if seen.checkpoint.size <= cp.checkpoint.size => {
                let proof = api::get(
                    self.api,
                    Svc::Evidence,
                    &format!(
                        "/v1/chain/proofs/consistency?from={}&to={}",
                        seen.checkpoint.size, cp.checkpoint.size
                    ),
                )
                .await?;
                let parsed: crate::chain_api::ConsistencyResponse = serde_json::from_value(proof)?;
                let hashes = crate::commands::proof_hashes(&parsed.hashes)?;
                match goose_ledger::merkle::verify_consistency(
                    seen.checkpoint.size,
                    cp.checkpoint.size,
                    &seen.checkpoint.root,
                    &cp.checkpoint.root,
                    &hashes,
                ) {
                    Ok(()) => {
                        state.remember(&cp)?;
                        findings.push(format!(
                            "extends the checkpoint of size {} this client trusted ({})",
                            seen.checkpoint.size,
                            state.describe()
                        ));
                    }
                    Err(e) => {
                        outcome = StepOutcome::Attention;
                        findings.push(format!(
                            "does NOT extend the checkpoint of size {} this client trusted: {e} — a fork or a rewrite; see docs/runbooks/chain-integrity.md",
                            seen.checkpoint.size
                        ));
                    }
                }
            }
            Some(seen) => {
                outcome = StepOutcome::Attention;
                findings.push(format!(
                    "this client trusted a checkpoint of size {}, larger than the log's newest {}: the log was cut back",
                    seen.checkpoint.size, cp.checkpoint.size
                ));
            }
            None => {
                state.remember(&cp)?;
                findings.push(format!(
                    "first checkpoint this client sees; remembered ({})",
                    state.describe()
                ));
            }
        }
        let evidence = api::get(
            self.api,
            Svc::Evidence,
            &format!("/v1/evidence?service={}", self.service()),
        )
        .await?;
        let records = evidence.as_array().cloned().unwrap_or_default();
        findings.push(format!(
            "{} evidence record(s) of {}",
            records.len(),
            self.service()
        ));
        for r in records.iter().take(20) {
            findings.push(format!(
                "{}@{} {} sha3 {}",
                r["service"].as_str().unwrap_or("?"),
                r["version"].as_str().unwrap_or("?"),
                r["kind"].as_str().unwrap_or("?"),
                r["digest"].as_str().unwrap_or("?")
            ));
        }
        Ok((outcome, findings))
    }

    async fn validate_compliance_state(&self) -> Result<Step> {
        let mut findings: Vec<String> = self
            .states(self.service())
            .await?
            .into_iter()
            .map(|(v, s)| format!("{}@{v}: {s}", self.service()))
            .collect();
        if findings.is_empty() {
            findings.push(format!(
                "{}: no version has a compliance record yet",
                self.service()
            ));
        }
        let mut outcome = StepOutcome::Ok;
        if let Some(id) = &self.args.promotion {
            let p = api::get(self.api, Svc::Orchestrator, &format!("/v1/promotions/{id}")).await?;
            for t in p["targets"].as_array().into_iter().flatten() {
                let spec = &t["spec"];
                let (svc, ver, status) = (
                    spec["service"].as_str().unwrap_or("?"),
                    spec["version"].as_str().unwrap_or("?"),
                    t["status"].as_str().unwrap_or("?"),
                );
                if svc != self.service() {
                    continue;
                }
                findings.push(format!("promotion {id}: {svc}@{ver} {status}"));
                if matches!(status, "failed" | "blocked") {
                    outcome = StepOutcome::Attention;
                    if let Some(r) = t["reason"].as_str() {
                        findings.push(format!("reason: {r}"));
                    }
                    for (check, r) in t["checks"].as_object().into_iter().flatten() {
                        if r[0] != "pass" {
                            findings.push(format!(
                                "{check}: {} — {}",
                                r[0].as_str().unwrap_or("?"),
                                r[1].as_str().unwrap_or("")
                            ));
                        }
                    }
                    findings.push(format!(
                        "next: fix what the checks name, then promote again; goosectl promotion explain {id} shows every fact read"
                    ));
                }
            }
        }
        Ok((outcome, findings))
    }

    async fn isolate_service(&self) -> Result<Step> {
        let mut findings = Vec::new();
        let compliant: Vec<String> = self
            .states(self.service())
            .await?
            .into_iter()
            .filter(|(_, s)| s == "compliant")
            .map(|(v, _)| v)
            .collect();
        for v in &compliant {
            let reason = format!("runbook {}: isolated for investigation", self.args.name);
            let r = api::send(
                self.api
                    .request(
                        Svc::Orchestrator,
                        reqwest::Method::POST,
                        &format!("/v1/compliance/{}/{v}/demote", self.service()),
                    )?
                    .json(&json!({"reason": reason})),
            )
            .await?
            .json()?;
            findings.push(format!(
                "{}@{v} demoted to sandbox (dependants reported: {})",
                self.service(),
                r["dependants"]
                    .as_array()
                    .map(|d| d
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", "))
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "none".into())
            ));
        }
        if compliant.is_empty() {
            findings.push(format!(
                "{} has no compliant version to demote",
                self.service()
            ));
        }
        let opts = goose_domain::mesh::MeshOptions {
            namespace: self.args.namespace.clone(),
            ..Default::default()
        };
        let policy = goose_domain::mesh::isolation_policy(self.service(), &opts);
        let yaml = goose_domain::mesh::to_yaml(&[policy]).map_err(anyhow::Error::msg)?;
        std::fs::create_dir_all(self.out)?;
        let file = self.out.join(format!("{}-isolated.yaml", self.service()));
        std::fs::write(&file, yaml)?;
        findings.push(format!(
            "mesh DENY policy written to {} — apply it: kubectl apply -f {}",
            file.display(),
            file.display()
        ));
        Ok((StepOutcome::Ok, findings))
    }

    async fn collect_evidence(&self) -> Result<Step> {
        let dir = self.out.join("audit");
        let path = format!("/v1/audit/services/{}/export", self.service());
        crate::audit::export(self.api, &path, &dir, 30).await?;
        let files = walk(&dir);
        Ok((
            StepOutcome::Ok,
            vec![format!(
                "audit export of {} written to {} ({files} files; check it offline: goosectl audit verify {})",
                self.service(),
                dir.display(),
                dir.display()
            )],
        ))
    }

    async fn trigger_investigation(&self) -> Result<Step> {
        let done: Vec<String> = self
            .earlier
            .iter()
            .map(|s| format!("{} ({})", s.step, label(s.outcome)))
            .collect();
        let incident = api::send(
            self.api
                .request(Svc::Sla, reqwest::Method::POST, "/v1/incidents")?
                .json(&json!({
                    "type": "compliance_violation",
                    "severity": "critical",
                    "title": format!("compliance violation: {} under investigation (runbook {})", self.service(), self.args.name),
                    "service": self.service(),
                })),
        )
        .await?
        .json()?;
        let id = incident["id"].as_str().unwrap_or("?").to_owned();
        if !done.is_empty() {
            api::send(
                self.api
                    .request(
                        Svc::Sla,
                        reqwest::Method::POST,
                        &format!("/v1/incidents/{id}/notes"),
                    )?
                    .json(&json!({"note": format!("runbook {} steps so far: {}", self.args.name, done.join(", "))})),
            )
            .await?;
        }
        Ok((
            StepOutcome::Ok,
            vec![format!(
                "incident {id} opened (compliance_violation, critical): goosectl incident show {id}"
            )],
        ))
    }
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                walk(&p)
            } else {
                1
            }
        })
        .sum()
}
