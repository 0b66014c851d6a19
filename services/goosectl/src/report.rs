//! `goosectl report`: compliance reports of the sla service — issue one for a period (printed
//! as JSON or HTML, or written with the proofs of everything it cites as a bundle), list,
//! show, and check a bundle offline (`report verify`).

use crate::api::{get_print, print_json, send, Svc};
use crate::cli::Api;
use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Html,
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub command: Option<ReportCommand>,
    /// Start of the period (RFC 3339). Issues, signs and records a report (report.issue).
    #[arg(long)]
    pub from: Option<String>,
    /// End of the period (RFC 3339, excluded; default now).
    #[arg(long)]
    pub to: Option<String>,
    /// What to print: the report as JSON, or the HTML page.
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
    /// Write the offline-verifiable bundle here (report.json, report.html, the signed
    /// envelope, the signer's key and a tlog-proof of every cited event) instead of printing.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// With --out: seconds to wait for a checkpoint covering the report's event.
    #[arg(long, default_value_t = 60)]
    pub wait: u64,
}

#[derive(Debug, clap::Subcommand)]
pub enum ReportCommand {
    /// Issued reports.
    List,
    /// One report (JSON: the report with its envelope and event; or the HTML page).
    Show {
        id: String,
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
    /// Check a report bundle offline: the signature, the report recorded on the chain, and
    /// every cited event proven in the log (exit 0 all holds, 1 otherwise).
    Verify {
        dir: PathBuf,
        /// The log's verifier key (vkey text or @FILE).
        #[arg(long)]
        log_key: String,
        /// The sla service's verifier key (vkey or @FILE); default: the bundle's own.
        #[arg(long)]
        signer_key: Option<String>,
    },
}

pub async fn report(api: &Api, args: ReportArgs) -> Result<ExitCode> {
    match args.command {
        Some(ReportCommand::List) => get_print(api, Svc::Sla, "/v1/reports").await,
        Some(ReportCommand::Show { id, format }) => show(api, &id, format).await,
        Some(ReportCommand::Verify {
            dir,
            log_key,
            signer_key,
        }) => verify(&dir, &log_key, signer_key.as_deref()),
        None => {
            let Some(from) = args.from else {
                bail!("say the period: goosectl report --from <RFC 3339> [--to <RFC 3339>], or a subcommand (list, show, verify)");
            };
            let rb = api
                .request(Svc::Sla, reqwest::Method::POST, "/v1/reports")?
                .json(&json!({"from": from, "to": args.to}));
            let signed: Value = send(rb).await?.json()?;
            let id = signed["id"].as_str().unwrap_or_default().to_owned();
            eprintln!(
                "issued report {id} (SHA3-256 {}), recorded at position {}",
                signed["report_digest"].as_str().unwrap_or_default(),
                signed["report_event"]["position"]
            );
            match (&args.out, args.format) {
                (Some(out), _) => write_bundle(api, &signed, out, args.wait).await,
                (None, Format::Json) => print_json(&signed["report"]),
                (None, Format::Html) => show(api, &id, Format::Html).await,
            }
        }
    }
}

async fn show(api: &Api, id: &str, format: Format) -> Result<ExitCode> {
    match format {
        Format::Json => get_print(api, Svc::Sla, &format!("/v1/reports/{id}")).await,
        Format::Html => {
            let body = send(api.request(
                Svc::Sla,
                reqwest::Method::GET,
                &format!("/v1/reports/{id}/html"),
            )?)
            .await?;
            print!("{}", String::from_utf8_lossy(&body.0));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Writes the bundle of a just-issued report: the signed payload byte for byte, its HTML,
/// and a proof of every cited event and of the report's own event (waiting for a checkpoint).
async fn write_bundle(api: &Api, signed: &Value, out: &Path, wait: u64) -> Result<ExitCode> {
    use base64::Engine as _;
    let id = signed["id"].as_str().unwrap_or_default();
    let envelope = &signed["envelope"];
    let payload = base64::engine::general_purpose::STANDARD
        .decode(envelope["payload"].as_str().unwrap_or_default())
        .context("the report envelope's payload is not base64")?;
    write(&out.join("report.json"), &payload)?;
    write(
        &out.join("report.dsse.json"),
        serde_json::to_string_pretty(envelope)?.as_bytes(),
    )?;
    write(
        &out.join("report-event.json"),
        serde_json::to_string_pretty(&signed["report_event"])?.as_bytes(),
    )?;
    write(
        &out.join("signer.vkey"),
        format!("{}\n", signed["signer_vkey"].as_str().unwrap_or_default()).as_bytes(),
    )?;
    let html = send(api.request(
        Svc::Sla,
        reqwest::Method::GET,
        &format!("/v1/reports/{id}/html"),
    )?)
    .await?;
    write(&out.join("report.html"), &html.0)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let mut proofs = BTreeMap::new();
    let cited = signed["report"]["cited_events"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(std::iter::once(&signed["report_event"]));
    for fact in cited {
        let event_id = fact["id"].as_str().unwrap_or_default();
        if event_id.is_empty() || proofs.contains_key(event_id) {
            continue;
        }
        let text = crate::promote::proof_text(api, event_id, deadline).await?;
        write(
            &out.join("proofs").join(format!("{event_id}.tlog-proof")),
            text.as_bytes(),
        )?;
        proofs.insert(event_id.to_owned(), ());
    }
    println!(
        "wrote report {id} to {}: report.json (signed), report.html, {} proofs",
        out.display(),
        proofs.len()
    );
    println!(
        "check it offline: goosectl report verify {} --log-key <the log's vkey> --signer-key <the sla service's vkey>",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn verify(dir: &Path, log_key: &str, signer_key: Option<&str>) -> Result<ExitCode> {
    let checked = match crate::bundle::check(
        dir,
        log_key,
        signer_key,
        &crate::bundle::Spec {
            envelope_file: "report.dsse.json",
            payload_type: goose_domain::sla::report::PAYLOAD_TYPE,
            what: "compliance report",
            event_file: "report-event.json",
            digest_field: "report_digest",
        },
    )? {
        Ok(c) => c,
        Err(e) => return Ok(crate::audit::report(&[e], String::new)),
    };
    let mut failures = checked.failures;
    let payload = std::fs::read(dir.join("report.json"));
    match payload {
        Ok(bytes) => {
            if serde_json::from_slice::<Value>(&bytes).ok().as_ref() != Some(&checked.payload) {
                failures.push("report.json is not the signed report".into());
            }
        }
        Err(e) => failures.push(format!("report.json: {e}")),
    }
    // The newest checkpoint the report states must be one the log key signed.
    if let Some(note) = checked.payload["chain"]["checkpoint"].as_str() {
        if let Err(e) = goose_ledger::SignedCheckpoint::verify(note, &checked.log_key) {
            failures.push(format!("the report's checkpoint: {e}"));
        }
    }
    let r = &checked.payload;
    Ok(crate::audit::report(&failures, || {
        format!(
            "OK: compliance report {} ({} to {}) signed by {}; {} cited events and the report's own event proven in the log {} (checkpoint sizes {:?})\n  promotions: {} requested, {} succeeded, {} failed; approvals: {} (segregation of duties held: {}); incidents: {} opened, {} resolved",
            checked.digest,
            r["from"].as_str().unwrap_or_default(),
            r["to"].as_str().unwrap_or_default(),
            checked.signer.key_id(),
            checked.facts,
            checked.log_key.key_id(),
            checked.sizes,
            r["promotions"]["requested"],
            r["promotions"]["succeeded"],
            r["promotions"]["failed"],
            r["approvals"]["requested"],
            r["approvals"]["segregation_of_duties_held"],
            r["incidents"]["opened"],
            r["incidents"]["resolved"],
        )
    }))
}
