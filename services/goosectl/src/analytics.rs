//! `goosectl query` and `goosectl kpi`: SQL and KPIs from the analytics service.

use crate::api::{get, print_json, send, Svc};
use crate::cli::Api;
use anyhow::{Context as _, Result};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::util::pretty::pretty_format_batches;
use serde_json::{json, Value};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// How an answer is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutFormat {
    /// An aligned text table.
    Table,
    Json,
    Csv,
    /// An Arrow IPC stream (binary: use --out or redirect).
    Arrow,
}

#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// One read-only SQL statement, e.g. "SELECT * FROM kpi_dora". Tables: `goosectl query
    /// --tables`.
    #[arg(required_unless_present = "tables")]
    pub sql: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutFormat,
    /// Rows returned at most (the service caps it too).
    #[arg(long)]
    pub max_rows: Option<usize>,
    /// Write the answer to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// List the tables and their columns instead.
    #[arg(long, conflicts_with = "sql")]
    pub tables: bool,
}

#[derive(Debug, clap::Args)]
pub struct KpiArgs {
    /// The KPI (e.g. dora, promotion_success_rate); none: list them with their definitions.
    pub name: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutFormat,
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn wire(format: OutFormat) -> &'static str {
    match format {
        OutFormat::Json => "json",
        OutFormat::Csv => "csv",
        // A table is rendered here from Arrow's own batches (types kept).
        OutFormat::Table | OutFormat::Arrow => "arrow",
    }
}

fn emit(bytes: &[u8], format: OutFormat, out: Option<&PathBuf>) -> Result<ExitCode> {
    let rendered;
    let bytes = match format {
        OutFormat::Table => {
            let reader = StreamReader::try_new(std::io::Cursor::new(bytes), None)
                .context("the answer is not an Arrow stream")?;
            let batches = reader
                .collect::<Result<Vec<_>, _>>()
                .context("the answer's Arrow stream is cut short")?;
            rendered = format!("{}\n", pretty_format_batches(&batches)?);
            rendered.as_bytes()
        }
        OutFormat::Json => {
            let v: Value = serde_json::from_slice(bytes)?;
            rendered = format!("{}\n", serde_json::to_string_pretty(&v)?);
            rendered.as_bytes()
        }
        OutFormat::Csv | OutFormat::Arrow => bytes,
    };
    match out {
        Some(path) => {
            std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?
        }
        None => std::io::stdout().write_all(bytes)?,
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn query(api: &Api, args: &QueryArgs) -> Result<ExitCode> {
    if args.tables {
        return print_json(&get(api, Svc::Analytics, "/v1/analytics/tables").await?);
    }
    let sql = args.sql.as_deref().unwrap_or_default();
    let mut body = json!({ "sql": sql, "format": wire(args.format) });
    if let Some(m) = args.max_rows {
        body["max_rows"] = json!(m);
    }
    let answer = send(
        api.request(Svc::Analytics, reqwest::Method::POST, "/v1/analytics/query")?
            .json(&body),
    )
    .await?;
    emit(&answer.0, args.format, args.out.as_ref())
}

pub async fn kpi(api: &Api, args: &KpiArgs) -> Result<ExitCode> {
    let Some(name) = &args.name else {
        let list = get(api, Svc::Analytics, "/v1/analytics/kpis").await?;
        if args.format == OutFormat::Json {
            return print_json(&list);
        }
        for k in list.as_array().into_iter().flatten() {
            let field = |f: &str| {
                k.get(f)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            println!(
                "{} ({})\n  {}\n",
                field("name"),
                field("title"),
                field("definition")
            );
        }
        return Ok(ExitCode::SUCCESS);
    };
    let path = format!("/v1/analytics/kpis/{name}?format={}", wire(args.format));
    let answer = send(api.request(Svc::Analytics, reqwest::Method::GET, &path)?).await?;
    emit(&answer.0, args.format, args.out.as_ref())
}

/// `goosectl hardware`: the adapters the analytics service found and the one it uses.
pub async fn hardware(api: &Api, json: bool) -> Result<ExitCode> {
    let h = get(api, Svc::Analytics, "/v1/analytics/hardware").await?;
    if json {
        return print_json(&h);
    }
    let text = |v: &Value, f: &str| {
        v.get(f).map_or(String::new(), |x| match x {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };
    println!(
        "GPU support: {}; offload {}; software adapters {}; from {} rows; {} at once",
        if h["gpu_support"] == true {
            "built in"
        } else {
            "not built"
        },
        if h["enabled"] == true { "on" } else { "off" },
        if h["allow_software"] == true {
            "allowed"
        } else {
            "not allowed"
        },
        text(&h, "min_rows"),
        text(&h, "concurrency"),
    );
    println!("selected: {}", text(&h, "reason"));
    println!(
        "aggregates offloaded: {}, fell back to the CPU: {}",
        text(&h, "offloaded"),
        text(&h, "fallbacks")
    );
    for a in h["adapters"].as_array().into_iter().flatten() {
        println!(
            "- {} [{} {}{}] driver {}; storage binding {} bytes, {} workgroups/dim, {} invocations/workgroup",
            text(a, "name"),
            text(a, "backend"),
            text(a, "device_type"),
            if a["software"] == true { ", software" } else { "" },
            text(a, "driver"),
            text(a, "max_storage_buffer_binding_size"),
            text(a, "max_compute_workgroups_per_dimension"),
            text(a, "max_compute_invocations_per_workgroup"),
        );
    }
    Ok(ExitCode::SUCCESS)
}
