//! `loadtest`: fills a ledger and measures it.
//!
//! - `loadtest ledger`: appends with W concurrent writers in batches of B; throughput and
//!   per-append latency percentiles; `--baseline` also times plain INSERTs of the same rows
//!   (no hashing, signing or Merkle work) in the same run.
//! - `loadtest matrix`: `ledger --baseline` for writers 1, 8, 32 x batches 1, 10, 100, as a
//!   Markdown table (what docs/benchmarks.md records).
//! - `loadtest proofs`: inclusion-proof latency at the log's current size.
//! - `loadtest evidence`: evidence parsing throughput and peak heap (synthetic 5 MB SARIF and
//!   CycloneDX, plus any real files given).
//! - `loadtest authz`: authorization decision latency, in process.
//! - `loadtest promotions`: request-to-`TargetPromoted` latency at 1 and 64 concurrent
//!   promotions, the whole system in process over PostgreSQL and NATS.
//! - `loadtest dag`: a random 1,000-service DAG promoted as one package, against its
//!   critical-path lower bound.
//! - `loadtest telemetry` / `loadtest slo-status`: the sla service's raw-sample ingestion
//!   over NATS, and an SLO's status over a window of 10M samples.
//! - `loadtest analytics`: the analytics tables fed N events shaped as the services record
//!   them, events applied per second, and each KPI query's median time.
//! - `loadtest tail`: commit-order visibility — 16 appenders with ledger handles of their own
//!   and a tailing reader that must see every position once, in order.
//!
//! Events are signed with `--key-file` (created if missing); its vkey is written to
//! `<key-file>.keyring` so `goosectl verify --keyring` can check the log afterwards.

mod analytics;
mod gpu;
mod ingest;
mod lag;
mod promote;
mod restart;
mod sla;
mod tail;

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};
use goose_ledger::postgres::PgBackend;
use goose_ledger::{Backend, Ledger, LedgerConfig, Metadata, NewEvent, NoteKey, StreamId};
use hdrhistogram::Histogram;
use rand::Rng as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(name = "loadtest", about = "Golden Goose load generator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Append events and report throughput and latency.
    Ledger(LedgerArgs),
    /// Run `ledger --baseline` over writers {1,8,32} x batch {1,10,100}.
    Matrix(MatrixArgs),
    /// Measure inclusion-proof latency at the current log size.
    Proofs(ProofArgs),
    /// Parse synthetic 5 MB SARIF and CycloneDX files: MB/s and peak heap over file size.
    Evidence(EvidenceArgs),
    /// Authorization decision latency, in process.
    Authz(AuthzArgs),
    /// Promotion latency (request to the subscriber's TargetPromoted) at each concurrency.
    Promotions(PromotionArgs),
    /// A random DAG promoted as one package, against its critical-path lower bound.
    Dag(DagArgs),
    /// Appenders in parallel (own handles, as processes) and a tail that must miss nothing.
    Tail(tail::TailArgs),
    /// Raw telemetry samples over NATS into sla's exact minute histograms: samples/s.
    Telemetry(sla::TelemetryArgs),
    /// An SLO's status over a window of N samples of one service, from minute summaries.
    SloStatus(sla::StatusArgs),
    /// The analytics tables fed N events, then every KPI view's query time.
    Analytics(analytics::AnalyticsArgs),
    /// The offloadable aggregates on the CPU and on the GPU by input size.
    Gpu(gpu::GpuArgs),
    /// Ingest-to-queryable lag: appends at a fixed rate, probes timed from commit to the
    /// analytics service's answer that contains them.
    Lag(lag::LagArgs),
    /// A replica of rbac starting over the ledger: replaying it, and from its snapshots.
    Restart(restart::RestartArgs),
}

#[derive(Debug, Clone, Args)]
struct SystemArgs {
    /// PostgreSQL URL; a fresh database is created next to it.
    #[arg(long, env = "GOOSE_DATABASE_URL")]
    database_url: String,
    #[arg(long, env = "GOOSE_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// The policy's scheduling.max_parallel.
    #[arg(long, default_value_t = 1000)]
    max_parallel: u32,
}

#[derive(Debug, Clone, Args)]
struct PromotionArgs {
    #[command(flatten)]
    system: SystemArgs,
    /// Concurrency levels.
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    concurrency: Vec<usize>,
    /// Promotions per level (each of a distinct service).
    #[arg(long, default_value_t = 640)]
    promotions: usize,
}

#[derive(Debug, Clone, Args)]
struct DagArgs {
    #[command(flatten)]
    system: SystemArgs,
    #[arg(long, default_value_t = 1000)]
    services: usize,
    #[arg(long, default_value_t = 10)]
    depth: usize,
    /// Services promoted alone to measure one promotion (the bound's unit).
    #[arg(long, default_value_t = 20)]
    solo: usize,
}

#[derive(Debug, Clone, Args)]
struct EvidenceArgs {
    /// Size of each synthetic file in bytes.
    #[arg(long, default_value_t = 5_000_000)]
    bytes: usize,
    /// Parses per format for the throughput figure.
    #[arg(long, default_value_t = 20)]
    rounds: u32,
    /// Also parse these files (KIND=PATH, e.g. sarif=clippy.sarif).
    #[arg(long = "file")]
    files: Vec<String>,
    /// Also measure the whole ingestion path (HTTP handler, blob into PostgreSQL, event on the
    /// ledger) against this database.
    #[arg(long)]
    database_url: Option<String>,
}

#[derive(Debug, Clone, Args)]
struct AuthzArgs {
    #[arg(long, default_value_t = 1_000_000)]
    samples: u64,
}

#[global_allocator]
static PEAK: peak_alloc::PeakAlloc = peak_alloc::PeakAlloc;

#[derive(Debug, Clone, Args)]
struct Common {
    /// PostgreSQL URL of the ledger.
    #[arg(long, env = "GOOSE_DATABASE_URL")]
    database_url: String,
    /// Signing key for the events (created if missing).
    #[arg(long, default_value = "loadtest.key")]
    key_file: PathBuf,
    /// Log key that signs a checkpoint at the end (created if missing).
    #[arg(long, default_value = "loadtest-log.key")]
    log_key_file: PathBuf,
    /// Payload size in bytes (JSON).
    #[arg(long, default_value_t = 256)]
    payload_bytes: usize,
    /// Most events the committer puts in one transaction.
    #[arg(long, default_value_t = LedgerConfig::default().max_group_events)]
    group_events: usize,
}

#[derive(Debug, Clone, Args)]
struct LedgerArgs {
    #[command(flatten)]
    common: Common,
    /// Events to append in all.
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// Concurrent writers.
    #[arg(long, default_value_t = 8)]
    writers: u64,
    /// Events per append.
    #[arg(long, default_value_t = 10)]
    batch: u64,
    /// Stop after this many seconds even if fewer events were written.
    #[arg(long)]
    seconds: Option<u64>,
    /// Also time plain INSERTs of the same rows (table loadtest_plain).
    #[arg(long)]
    baseline: bool,
}

#[derive(Debug, Clone, Args)]
struct MatrixArgs {
    #[command(flatten)]
    common: Common,
    /// Seconds per cell (each of ledger and baseline).
    #[arg(long, default_value_t = 5)]
    seconds: u64,
}

#[derive(Debug, Clone, Args)]
struct ProofArgs {
    #[command(flatten)]
    common: Common,
    /// Number of proofs to request.
    #[arg(long, default_value_t = 10_000)]
    samples: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Tail(args) => tail::run(&args).await?,
        Command::Telemetry(args) => sla::telemetry(&args).await?,
        Command::SloStatus(args) => sla::status(&args)?,
        Command::Analytics(args) => analytics::run(&args).await?,
        Command::Gpu(args) => gpu::run(&args)?,
        Command::Lag(args) => lag::run(&args).await?,
        Command::Restart(args) => restart::run(&args).await?,
        Command::Ledger(args) => {
            let env = Env::open(&args.common).await?;
            let r = run_ledger(&env, &args).await?;
            println!("{}", r.line("ledger"));
            if args.baseline {
                let b = run_baseline(&env, &args).await?;
                println!("{}", b.line("plain INSERT baseline"));
                println!(
                    "ledger/baseline throughput ratio: {:.2}",
                    r.rate() / b.rate()
                );
            }
            env.finish().await?;
        }
        Command::Matrix(args) => {
            let env = Env::open(&args.common).await?;
            println!("| writers | batch | ledger events/s | append p50 | append p99 | baseline events/s | ratio |");
            println!("|---:|---:|---:|---:|---:|---:|---:|");
            for writers in [1, 8, 32] {
                for batch in [1, 10, 100] {
                    let a = LedgerArgs {
                        common: args.common.clone(),
                        events: u64::MAX,
                        writers,
                        batch,
                        seconds: Some(args.seconds),
                        baseline: true,
                    };
                    let r = run_ledger(&env, &a).await?;
                    let b = run_baseline(&env, &a).await?;
                    println!(
                        "| {writers} | {batch} | {:.0} | {} | {} | {:.0} | {:.2} |",
                        r.rate(),
                        fmt_us(r.latency.value_at_quantile(0.5)),
                        fmt_us(r.latency.value_at_quantile(0.99)),
                        b.rate(),
                        r.rate() / b.rate()
                    );
                }
            }
            env.finish().await?;
        }
        Command::Proofs(args) => {
            let env = Env::open(&args.common).await?;
            run_proofs(&env, args.samples).await?;
        }
        Command::Evidence(args) => {
            use goose_domain::evidence::EvidenceKind;
            println!("| format | file | parse throughput | peak heap added | peak / file |");
            println!("|---|---:|---:|---:|---:|");
            let sarif = ingest::synthetic_sarif(args.bytes);
            print!(
                "{}",
                ingest::measure_parse(EvidenceKind::Sarif, &sarif, args.rounds, &PEAK)?
            );
            let cdx = ingest::synthetic_cyclonedx(args.bytes);
            print!(
                "{}",
                ingest::measure_parse(EvidenceKind::Cyclonedx, &cdx, args.rounds, &PEAK)?
            );
            if let Some(url) = &args.database_url {
                println!();
                println!("| format | file | uploads | ingest throughput | p50 | p99 | peak heap added | peak / file |");
                println!("|---|---:|---:|---:|---:|---:|---:|---:|");
                let files = vec![(EvidenceKind::Sarif, sarif), (EvidenceKind::Cyclonedx, cdx)];
                print!(
                    "{}",
                    ingest::measure_ingest(url, &files, args.rounds, &PEAK).await?
                );
            }
            for f in &args.files {
                let (kind, path) = f.split_once('=').context("--file takes KIND=PATH")?;
                let kind: EvidenceKind = kind.parse().map_err(anyhow::Error::msg)?;
                let bytes = std::fs::read(path).with_context(|| format!("reading {path}"))?;
                print!(
                    "{}",
                    ingest::measure_parse(kind, &bytes, args.rounds, &PEAK)?
                );
            }
        }
        Command::Authz(args) => print!("{}", ingest::measure_authz(args.samples)?),
        Command::Promotions(args) => {
            let a = &args.system;
            let sys =
                promote::System::start(&a.database_url, &a.nats_url, a.max_parallel, false).await?;
            promote::run_latency(&sys, &args.concurrency, args.promotions).await?;
            sys.platform.shutdown().await;
        }
        Command::Dag(args) => {
            let a = &args.system;
            let sys =
                promote::System::start(&a.database_url, &a.nats_url, a.max_parallel, false).await?;
            promote::run_dag(&sys, args.services, args.depth, args.solo).await?;
            sys.platform.shutdown().await;
        }
    }
    Ok(())
}

struct Env {
    ledger: Ledger,
    backend: Arc<PgBackend>,
    log_key: NoteKey,
    payload: Vec<u8>,
}

impl Env {
    async fn open(c: &Common) -> Result<Self> {
        let key = Arc::new(NoteKey::load_or_generate(&c.key_file, "loadtest")?);
        let keyring = c.key_file.with_extension("keyring");
        std::fs::write(&keyring, format!("{}\n", key.vkey()))
            .with_context(|| format!("writing {}", keyring.display()))?;
        let log_key = NoteKey::load_or_generate(&c.log_key_file, "goose.loadtest/ledger")?;
        let backend = Arc::new(PgBackend::connect(&c.database_url).await?);
        let sync: String = sqlx::query_scalar("SHOW synchronous_commit")
            .fetch_one(backend.pool())
            .await?;
        eprintln!("synchronous_commit = {sync}; log key {}", log_key.vkey());
        let ledger = Ledger::open(
            backend.clone() as Arc<dyn Backend>,
            key,
            LedgerConfig {
                origin: log_key.name().to_owned(),
                max_group_events: c.group_events,
                ..LedgerConfig::default()
            },
        )
        .await?;
        let filler = "x".repeat(c.payload_bytes.saturating_sub(40));
        let payload = serde_json::to_vec(&serde_json::json!({ "kind": "load", "filler": filler }))?;
        Ok(Self {
            ledger,
            backend,
            log_key,
            payload,
        })
    }

    fn event(&self) -> NewEvent {
        NewEvent {
            event_id: uuid::Uuid::now_v7(),
            event_type: "LoadGenerated".into(),
            schema_version: "1".into(),
            payload: self.payload.clone(),
            metadata: Metadata::now("loadtest"),
        }
    }

    async fn finish(&self) -> Result<()> {
        let cp = self.ledger.sign_checkpoint(&self.log_key).await?;
        eprintln!(
            "log now holds {} events; checkpoint signed. Verify with:\n  goosectl --database-url <URL> verify --no-state --log-key '{}' --keyring <key-file>.keyring",
            cp.checkpoint.size,
            self.log_key.vkey()
        );
        Ok(())
    }
}

struct RunResult {
    events: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
}

impl RunResult {
    fn rate(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn line(&self, what: &str) -> String {
        format!(
            "{what}: {} events in {:.2}s = {:.0} events/s; per-append latency p50 {} p90 {} p99 {} p99.9 {} max {}",
            self.events,
            self.elapsed.as_secs_f64(),
            self.rate(),
            fmt_us(self.latency.value_at_quantile(0.5)),
            fmt_us(self.latency.value_at_quantile(0.9)),
            fmt_us(self.latency.value_at_quantile(0.99)),
            fmt_us(self.latency.value_at_quantile(0.999)),
            fmt_us(self.latency.max()),
        )
    }
}

fn fmt_us(us: u64) -> String {
    if us >= 1000 {
        format!("{:.2}ms", us as f64 / 1000.0)
    } else {
        format!("{us}µs")
    }
}

fn histogram() -> Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

/// Runs `writers` tasks, each calling `append(writer, i)` until the event budget or the
/// deadline is used up; returns events written, time, and latency per call.
async fn drive<F, Fut>(
    writers: u64,
    batch: u64,
    events: u64,
    seconds: Option<u64>,
    append: F,
) -> Result<RunResult>
where
    F: Fn(u64, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let append = Arc::new(append);
    let per_writer = (events / writers / batch).max(1);
    let deadline = seconds.map(|s| Instant::now() + Duration::from_secs(s));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let append = append.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = histogram()?;
            let mut done = 0u64;
            for i in 0..per_writer {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let t = Instant::now();
                append(w, i).await?;
                hist.record(t.elapsed().as_micros().max(1) as u64)?;
                done += batch;
            }
            anyhow::Ok((done, hist))
        }));
    }
    let mut latency = histogram()?;
    let mut total = 0;
    for t in tasks {
        let (done, hist) = t.await??;
        total += done;
        latency.add(&hist)?;
    }
    Ok(RunResult {
        events: total,
        elapsed: started.elapsed(),
        latency,
    })
}

/// Starts every run from the same state: without this, autovacuum of the rows the previous run
/// inserted, and a checkpoint of the WAL it wrote, land in the middle of the next run and skew
/// it (seen: 10x slower cells).
async fn settle(env: &Env) {
    let pool = env.backend.pool();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_class WHERE relname IN ('ledger_events', 'loadtest_plain') AND relkind = 'r'",
    )
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    for t in tables {
        if let Err(e) = sqlx::query(&format!("VACUUM (ANALYZE) {t}"))
            .execute(pool)
            .await
        {
            eprintln!("note: cannot VACUUM {t} before the run ({e}); figures may be noisier");
        }
    }
    if let Err(e) = sqlx::query("CHECKPOINT").execute(pool).await {
        eprintln!("note: cannot CHECKPOINT before the run ({e}); figures may be noisier");
    }
}

async fn run_ledger(env: &Env, args: &LedgerArgs) -> Result<RunResult> {
    settle(env).await;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let batch = args.batch;
    let ledger = env.ledger.clone();
    let events: Arc<Vec<NewEvent>> = Arc::new((0..batch).map(|_| env.event()).collect());
    drive(
        args.writers,
        batch,
        args.events,
        args.seconds,
        move |w, i| {
            let ledger = ledger.clone();
            let template = events.clone();
            let stream = StreamId::new("loadtest", format!("{}-w{w}", &run[..8]));
            async move {
                let stream = stream?;
                let batch_events = template
                    .iter()
                    .map(|e| NewEvent {
                        event_id: uuid::Uuid::now_v7(),
                        metadata: Metadata::now("loadtest"),
                        ..e.clone()
                    })
                    .collect();
                ledger.append(&stream, i * batch, batch_events).await?;
                Ok(())
            }
        },
    )
    .await
}

async fn run_baseline(env: &Env, args: &LedgerArgs) -> Result<RunResult> {
    let pool = env.backend.pool().clone();
    settle(env).await;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS loadtest_plain ( \
           position BIGSERIAL PRIMARY KEY, event_id UUID NOT NULL UNIQUE, aggregate_type TEXT NOT NULL, \
           aggregate_id TEXT NOT NULL, version BIGINT NOT NULL, event_type TEXT NOT NULL, \
           record BYTEA NOT NULL, digest BYTEA NOT NULL, subtrees BYTEA NOT NULL, \
           UNIQUE (aggregate_type, aggregate_id, version))",
    )
    .execute(&pool)
    .await?;
    // Rows of the same size as the ledger's: record = payload plus the ~250 bytes of envelope
    // and signature the ledger adds; random bytes stand in for the digest.
    let record_len = env.payload.len() + 250;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let batch = args.batch;
    drive(args.writers, batch, args.events, args.seconds, move |w, i| {
        let pool = pool.clone();
        let stream_id = format!("{}-w{w}", &run[..8]);
        async move {
            let n = batch as usize;
            let ids: Vec<uuid::Uuid> = (0..n).map(|_| uuid::Uuid::now_v7()).collect();
            let versions: Vec<i64> = (0..n as i64).map(|k| (i * batch) as i64 + k + 1).collect();
            let records: Vec<Vec<u8>> = (0..n).map(|_| vec![0x42; record_len]).collect();
            let digests: Vec<Vec<u8>> = {
                let mut rng = rand::thread_rng();
                (0..n).map(|_| (0..32).map(|_| rng.gen()).collect()).collect()
            };
            sqlx::query(
                "INSERT INTO loadtest_plain (event_id, aggregate_type, aggregate_id, version, event_type, record, digest, subtrees) \
                 SELECT e, 'loadtest', $2, v, 'LoadGenerated', r, d, '' \
                 FROM UNNEST($1::uuid[], $3::bigint[], $4::bytea[], $5::bytea[]) AS t(e, v, r, d)",
            )
            .bind(&ids)
            .bind(&stream_id)
            .bind(&versions)
            .bind(&records)
            .bind(&digests)
            .execute(&pool)
            .await?;
            Ok(())
        }
    })
    .await
}

async fn run_proofs(env: &Env, samples: u64) -> Result<()> {
    let size = env.ledger.size().await?;
    anyhow::ensure!(
        size > 0,
        "the log is empty: fill it with `loadtest ledger` first"
    );
    let mut hist = histogram()?;
    let mut rng = rand::thread_rng();
    let started = Instant::now();
    for _ in 0..samples {
        let index = rng.gen_range(0..size);
        let t = Instant::now();
        let proof = env.ledger.inclusion_proof(index, size).await?;
        hist.record(t.elapsed().as_micros().max(1) as u64)?;
        anyhow::ensure!(!proof.hashes.is_empty() || size == 1, "empty proof");
    }
    println!(
        "inclusion proofs at size {size}: {samples} in {:.2}s; latency p50 {} p90 {} p99 {} max {}",
        started.elapsed().as_secs_f64(),
        fmt_us(hist.value_at_quantile(0.5)),
        fmt_us(hist.value_at_quantile(0.9)),
        fmt_us(hist.value_at_quantile(0.99)),
        fmt_us(hist.max())
    );
    Ok(())
}
