//! `loadtest analytics`: the analytics tables fed N events shaped as the services record them
//! (promotions of three services with their evidence, approvals, gate evaluations, transitions
//! and, now and then, a failure and an incident), then every KPI view queried over them.
//! Reports: events applied per second, the tables' row counts, and each query's median time.
//!
//! The events are built here, not recorded by the services: this measures the tables and the
//! query engine, not the services (their digests are placeholders; nothing here verifies).

use anyhow::Result;
use clap::Args;
use goose_analytics::{kpis, query, Tables};
use goose_domain::approval::{ApprovalEvent, ApprovalKind, ImpactLevel};
use goose_domain::compliance::{ComplianceState, Requirement};
use goose_domain::evidence::{EvidenceEvent, EvidenceKind, EvidenceRecord, EvidenceSummary};
use goose_domain::gates::{Check, Evaluation, Gate, Outcome};
use goose_domain::policy::Policy;
use goose_domain::promotion::{PromotionEvent, PromotionOutcome, Requested, TargetSpec};
use goose_domain::sla::incident::{IncidentEvent, IncidentReport, IncidentSeverity, IncidentType};
use goose_domain::streams;
use goose_ledger::{Metadata, RecordedEvent, StreamId};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

#[derive(Debug, Args)]
pub struct AnalyticsArgs {
    /// Events to generate (about 42 per promotion of three services).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Runs of each query; the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Threads a query's plan may use (DuckDB gets as many).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Also export the tables as Parquet (timed) and run the same queries in DuckDB (PyPI
    /// `duckdb`, installed in a venv under target/) over it, and in our engine over the same
    /// files (`archive.*`).
    #[arg(long)]
    duckdb: bool,
    /// More statements to time (repeatable), after the built-in ones.
    #[arg(long = "query")]
    extra: Vec<String>,
    /// Only the queries whose label contains one of these (repeatable; e.g. `dora`).
    #[arg(long)]
    only: Vec<String>,
    /// Before timing, print each query's `EXPLAIN ANALYZE` (where our engine spends its time).
    #[arg(long)]
    explain: bool,
}

/// Builds the events of one promotion after another, positions in order.
struct Generator {
    policy: Policy,
    position: u64,
    /// The simulated clock: 2026-01-01, one event every 200 ms.
    start: i64,
    promotions: u64,
}

impl Generator {
    fn at(&self) -> OffsetDateTime {
        let ns = i128::from(self.start) * 1_000_000_000 + i128::from(self.position) * 200_000_000;
        OffsetDateTime::from_unix_timestamp_nanos(ns).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    fn event(
        &mut self,
        aggregate: &str,
        id: &str,
        version: u64,
        event_type: &str,
        payload: &impl serde::Serialize,
    ) -> Result<RecordedEvent> {
        let position = self.position;
        let recorded_at = self.at();
        self.position += 1;
        let mut digest = [0u8; 32];
        digest[..8].copy_from_slice(&position.to_be_bytes());
        Ok(RecordedEvent {
            position,
            stream: StreamId::new(aggregate, id)?,
            version,
            event_id: uuid::Uuid::now_v7(),
            event_type: event_type.to_owned(),
            schema_version: "1".into(),
            payload: serde_json::to_vec(payload)?,
            metadata: Metadata {
                actor: "olga".into(),
                correlation_id: None,
                causation_id: None,
                recorded_at,
                attributes: Default::default(),
            },
            key_id: "goose-orchestrator+00000000".into(),
            previous_digest: [0; 32],
            digest,
            record: Vec::new(),
        })
    }

    /// One promotion of three services (the second and third depend on the first).
    fn promotion(&mut self) -> Result<Vec<RecordedEvent>> {
        let n = self.promotions;
        self.promotions += 1;
        let version = format!("1.{n}.0");
        let services: Vec<String> = (0..3)
            .map(|i| format!("svc-{}", (n * 3 + i) % 150))
            .collect();
        let mut out = Vec::new();
        for s in &services {
            let stream = format!("{s}@{version}");
            for (k, kind) in [
                EvidenceKind::Junit,
                EvidenceKind::Sarif,
                EvidenceKind::Lcov,
                EvidenceKind::Cyclonedx,
                EvidenceKind::InToto,
            ]
            .into_iter()
            .enumerate()
            {
                let e = EvidenceEvent::EvidenceAccepted(EvidenceRecord {
                    id: uuid::Uuid::now_v7().to_string(),
                    subject: Default::default(),
                    service: s.clone(),
                    version: version.clone(),
                    kind,
                    digest: format!("{:064x}", self.position),
                    size: 20_000 + (n % 7) * 1_000,
                    filename: format!("{}.json", kind.as_str()),
                    summary: EvidenceSummary::new(kind),
                    submitted_at: self.at(),
                    submitted_by: "ci".into(),
                    retain_until: self.at() + time::Duration::days(365 * 7),
                });
                out.push(self.event(
                    streams::EVIDENCE,
                    &stream,
                    k as u64 + 1,
                    "EvidenceAccepted",
                    &e,
                )?);
            }
        }
        let approval = uuid::Uuid::now_v7().to_string();
        let requested = ApprovalEvent::Requested {
            kind: ApprovalKind::Promotion,
            subject: format!("{}@{version}", services[0]),
            impact: ImpactLevel::Medium,
            requester: "olga".into(),
            required_approvers: 1,
            reason: "release".into(),
            owner_teams: Vec::new(),
        };
        out.push(self.event(
            streams::APPROVAL,
            &approval,
            1,
            "ApprovalRequested",
            &requested,
        )?);
        let granted = ApprovalEvent::Granted {
            approver: "ada".into(),
            comment: String::new(),
            approver_teams: Vec::new(),
        };
        out.push(self.event(streams::APPROVAL, &approval, 2, "ApprovalGranted", &granted)?);
        let approved = ApprovalEvent::Approved {
            approvers: vec!["ada".into()],
        };
        out.push(self.event(
            streams::APPROVAL,
            &approval,
            3,
            "ApprovalApproved",
            &approved,
        )?);

        let promotion = uuid::Uuid::now_v7().to_string();
        let mut v = 0u64;
        let mut next = |g: &mut Self, e: &PromotionEvent| {
            v += 1;
            g.event(streams::PROMOTION, &promotion, v, e.event_type(), e)
        };
        let req = PromotionEvent::PromotionRequested(Box::new(Requested {
            targets: services
                .iter()
                .enumerate()
                .map(|(i, s)| TargetSpec {
                    service: s.clone(),
                    version: version.clone(),
                    dependencies: if i == 0 {
                        Vec::new()
                    } else {
                        vec![services[0].clone()]
                    },
                    required: Vec::new(),
                    optional: Vec::new(),
                    evidence_refs: Vec::new(),
                    owner: None,
                })
                .collect(),
            requester: "olga".into(),
            requester_teams: Vec::new(),
            package: None,
            approval_id: Some(approval),
            impact: ImpactLevel::Medium,
            policy: self.policy.clone(),
            policy_digest: "0".repeat(64),
            reason: "release".into(),
            requested_at: self.at(),
        }));
        out.push(next(self, &req)?);
        // One promotion in ten fails its coverage check on the last service.
        let fails = n % 10 == 9;
        let (mut promoted, mut failed) = (Vec::new(), Vec::new());
        for (i, s) in services.iter().enumerate() {
            let last_fails = fails && i == 2;
            let started = PromotionEvent::TargetStarted {
                service: s.clone(),
                version: version.clone(),
                at: self.at(),
            };
            out.push(next(self, &started)?);
            for (gate, checks) in [
                (Gate::DependencyCheck, vec![Check::DependenciesCompliant]),
                (Gate::EvidenceCollection, Check::BLOCKING[1..].to_vec()),
                (Gate::ApprovalCheck, vec![Check::ApprovalGranted]),
            ] {
                let checks: Vec<Evaluation> = checks
                    .into_iter()
                    .map(|c| {
                        let bad = last_fails && c == Check::TestCoverageThreshold;
                        Evaluation {
                            check: c,
                            outcome: if bad { Outcome::Fail } else { Outcome::Pass },
                            detail: if bad {
                                "line coverage 61.0% is below 80%".into()
                            } else {
                                "ok".into()
                            },
                            inputs: Vec::new(),
                        }
                    })
                    .collect();
                let outcome = if checks.iter().any(|c| c.outcome == Outcome::Fail) {
                    Outcome::Fail
                } else {
                    Outcome::Pass
                };
                let e = PromotionEvent::GateEvaluated {
                    service: s.clone(),
                    version: version.clone(),
                    gate,
                    outcome,
                    checks,
                };
                out.push(next(self, &e)?);
            }
            if last_fails {
                let e = PromotionEvent::TargetFailed {
                    service: s.clone(),
                    version: version.clone(),
                    check: Some(Check::TestCoverageThreshold),
                    reason: "line coverage 61.0% is below 80%".into(),
                };
                out.push(next(self, &e)?);
                failed.push(s.clone());
                continue;
            }
            for (from, to) in [
                (ComplianceState::Sandbox, ComplianceState::ComplianceReady),
                (ComplianceState::ComplianceReady, ComplianceState::Compliant),
            ] {
                let e = PromotionEvent::TargetTransitioned {
                    service: s.clone(),
                    version: version.clone(),
                    from,
                    to,
                    met: vec![Requirement::AllTestsPassing],
                };
                out.push(next(self, &e)?);
            }
            let e = PromotionEvent::TargetPromoted {
                service: s.clone(),
                version: version.clone(),
                already_compliant: false,
            };
            out.push(next(self, &e)?);
            promoted.push(s.clone());
        }
        let done = PromotionEvent::PromotionCompleted {
            outcome: if failed.is_empty() {
                PromotionOutcome::Succeeded
            } else {
                PromotionOutcome::PartiallySucceeded
            },
            promoted,
            failed,
            blocked: Vec::new(),
        };
        out.push(next(self, &done)?);
        // One promotion in fifty has an incident, resolved a little later.
        if n.is_multiple_of(50) {
            let id = uuid::Uuid::now_v7().to_string();
            let cause = format!("bench:{n}");
            let opened = IncidentEvent::IncidentOpened {
                id: id.clone(),
                cause: cause.clone(),
                report: IncidentReport {
                    kind: IncidentType::SlaBreach,
                    severity: IncidentSeverity::Critical,
                    title: "error budget burning".into(),
                    service: Some(services[0].clone()),
                    caused_by: Vec::new(),
                },
                by: "sla".into(),
            };
            out.push(self.event(streams::INCIDENT, &cause, 1, "IncidentOpened", &opened)?);
            let resolved = IncidentEvent::IncidentResolved {
                id,
                note: "rolled back".into(),
                by: "olga".into(),
            };
            out.push(self.event(streams::INCIDENT, &cause, 2, "IncidentResolved", &resolved)?);
        }
        Ok(out)
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

pub async fn run(args: &AnalyticsArgs) -> Result<()> {
    let policy = Policy::parse(goose_domain::policy::DEFAULT_POLICY_YAML)?;
    let mut g = Generator {
        policy,
        position: 0,
        start: 1_767_225_600,
        promotions: 0,
    };
    let mut tables = Tables::default();
    let (mut building, mut applying) = (Duration::ZERO, Duration::ZERO);
    while g.position < args.events {
        let t = Instant::now();
        let events = g.promotion()?;
        building += t.elapsed();
        let t = Instant::now();
        for e in &events {
            tables.apply(e)?;
        }
        applying += t.elapsed();
    }
    let n = g.position;
    println!(
        "events: {n} ({} promotions); applied in {:.2} s = {:.0} events/s (building them took {:.2} s more)",
        g.promotions,
        applying.as_secs_f64(),
        n as f64 / applying.as_secs_f64(),
        building.as_secs_f64()
    );
    for (name, rows) in tables.row_counts() {
        println!("  {name}: {rows} rows");
    }
    let t = Instant::now();
    let snapshot = tables.snapshot()?;
    println!(
        "snapshot (every table as record batches): {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let limits = query::Limits {
        memory_bytes: 8 << 30,
        timeout: Duration::from_secs(600),
        max_rows: 100_000,
        partitions: args.threads.max(1),
        concurrent: 1,
    };
    let mut queries: Vec<(String, String)> = vec![
        (
            "events by type (scan of `events`)".into(),
            "SELECT event_type, count(*) FROM events GROUP BY event_type".into(),
        ),
        (
            "events per day".into(),
            "SELECT date_trunc('day', recorded_at) AS day, count(*) FROM events GROUP BY 1".into(),
        ),
        (
            "events per day (date_bin)".into(),
            "SELECT date_bin(INTERVAL '1 day', recorded_at, TIMESTAMP '1970-01-01T00:00:00Z') AS day, count(*) FROM events GROUP BY 1".into(),
        ),
    ];
    queries.extend(
        args.extra
            .iter()
            .enumerate()
            .map(|(i, sql)| (format!("--query {}", i + 1), sql.clone())),
    );
    queries.extend(kpis::KPIS.iter().map(|k| {
        (
            format!("kpi {}", k.name),
            format!("SELECT * FROM {}", k.view()),
        )
    }));
    if !args.only.is_empty() {
        queries.retain(|(label, _)| args.only.iter().any(|o| label.contains(o.as_str())));
    }
    let mut ours = Vec::new();
    let in_memory = query::Engine::new(limits.clone());
    if args.explain {
        for (label, sql) in &queries {
            let a = in_memory
                .run(&snapshot, n, &format!("EXPLAIN ANALYZE {sql}"), None)
                .await?;
            let plan = goose_analytics::datafusion::arrow::util::pretty::pretty_format_batches(
                &a.batches,
            )?;
            println!("\n## {label}\n{plan}");
        }
    }
    for (_, sql) in &queries {
        ours.push(time_query(&in_memory, &snapshot, n, sql, args.runs).await?);
    }
    if !args.duckdb {
        println!("\n| query | rows | median ms |\n|---|---:|---:|");
        for ((label, _), (rows, ms)) in queries.iter().zip(&ours) {
            println!("| {label} | {rows} | {ms:.1} |");
        }
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let store: std::sync::Arc<dyn object_store::ObjectStore> = std::sync::Arc::new(
        object_store::local::LocalFileSystem::new_with_prefix(dir.path())?,
    );
    let t = Instant::now();
    let mut exporter =
        goose_analytics::export::Exporter::open(store, object_store::path::Path::from("")).await?;
    let report = exporter.export(&snapshot, n).await?;
    let exported = t.elapsed();
    let bytes = dir_bytes(dir.path());
    println!(
        "Parquet export: {} files, {} rows, {:.1} MB in {:.2} s",
        report.files,
        report.rows,
        bytes as f64 / 1e6,
        exported.as_secs_f64()
    );
    // Our engine over the same files: the tables replaced by the Parquet, views and all.
    let mut archive =
        goose_analytics::archive::Archive::new(&dir.path().display().to_string(), None)?;
    archive.replace_tables = true;
    let on_files = query::Engine::new(limits.clone()).with_archive(archive);
    let mut ours_on_files = Vec::new();
    for (_, sql) in &queries {
        ours_on_files.push(time_query(&on_files, &snapshot, n, sql, args.runs).await);
    }
    let duck = duckdb(dir.path(), &queries, args)?;
    println!(
        "\n| query | rows | ours, in memory (ms) | ours, Parquet (ms) | DuckDB, Parquet (ms) | ours in memory / DuckDB |\n|---|---:|---:|---:|---:|---:|"
    );
    for (((label, _), (rows, ms)), on_files) in queries.iter().zip(&ours).zip(&ours_on_files) {
        let files = match on_files {
            Ok((_, f)) => format!("{f:.1}"),
            Err(e) => format!("error: {e}"),
        };
        let (d, ratio) = match duck.get(label) {
            Some(v) if v["ms"].is_number() => {
                let d = v["ms"].as_f64().unwrap_or(f64::NAN);
                (format!("{d:.1}"), format!("{:.2}", ms / d))
            }
            Some(v) => (
                format!("n/a ({})", v["error"].as_str().unwrap_or("?")),
                "–".into(),
            ),
            None => ("n/a".into(), "–".into()),
        };
        println!("| {label} | {rows} | {ms:.1} | {files} | {d} | {ratio} |");
    }
    Ok(())
}

/// Rows and median milliseconds of `runs` runs of `sql`.
async fn time_query(
    engine: &query::Engine,
    snapshot: &[goose_analytics::TableData],
    position: u64,
    sql: &str,
    runs: usize,
) -> Result<(usize, f64)> {
    let mut times = Vec::new();
    let mut rows = 0;
    for _ in 0..runs.max(1) {
        let a = engine.run(snapshot, position, sql, None).await?;
        rows = a.rows;
        times.push(a.elapsed);
    }
    Ok((rows, median(times).as_secs_f64() * 1e3))
}

pub(crate) fn dir_bytes(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Runs `queries` in DuckDB over the export in `dir`.
fn duckdb(
    dir: &std::path::Path,
    queries: &[(String, String)],
    args: &AnalyticsArgs,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    use std::io::Write as _;
    let python = goose_testkit::python_env(&["duckdb==2.0.1"])?;
    let spec = serde_json::json!({
        "tables": goose_analytics::export::PARTITIONING.iter().map(|p| p.table).collect::<Vec<_>>(),
        "views": kpis::KPIS.iter().map(|k| serde_json::json!({"name": k.view(), "sql": k.sql})).collect::<Vec<_>>(),
        "queries": queries.iter().map(|(l, s)| serde_json::json!({"label": l, "sql": s})).collect::<Vec<_>>(),
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/py/duckdb_bench.py");
    let mut child = std::process::Command::new(python)
        .arg(script)
        .arg(dir)
        .arg(args.runs.max(1).to_string())
        .arg(args.threads.max(1).to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdin for the DuckDB script"))?
        .write_all(spec.to_string().as_bytes())?;
    let out = child.wait_with_output()?;
    anyhow::ensure!(out.status.success(), "the DuckDB script failed");
    Ok(serde_json::from_slice(&out.stdout)?)
}
