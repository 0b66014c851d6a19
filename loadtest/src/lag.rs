//! `loadtest lag`: ingest-to-queryable lag of the analytics service under load.
//!
//! The whole system runs in this process (as `loadtest promotions`, plus the analytics service)
//! over real PostgreSQL and NATS JetStream. W writers append events (256-byte JSON payloads)
//! through the platform's ledger at a fixed total rate; the outbox relay publishes them and
//! every service's read model follows them, as in production. Meanwhile, a prober appends one
//! event every 1/P s and, as soon as the append has committed, asks the analytics service over
//! HTTP for the row of that position (`SELECT count(*) FROM events WHERE position = p`, as a
//! dashboard polling for fresh data would). The lag is the time from the commit to the answer
//! that contains the row: relay, NATS, the view applying it and the query together.

use crate::promote::System;
use anyhow::{bail, Context as _, Result};
use goose_ledger::{Metadata, NewEvent, StreamId};
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct LagArgs {
    /// PostgreSQL URL; a fresh database is created next to it.
    #[arg(long, env = "GOOSE_DATABASE_URL")]
    database_url: String,
    #[arg(long, env = "GOOSE_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// Background events appended per second (all writers together).
    #[arg(long, default_value_t = 2_000)]
    rate: u64,
    /// Concurrent writers.
    #[arg(long, default_value_t = 4)]
    writers: u64,
    /// Events per append.
    #[arg(long, default_value_t = 20)]
    batch: u64,
    /// Probes per second.
    #[arg(long, default_value_t = 10)]
    probes: u64,
    /// How long probes run (after 2 s of load without them).
    #[arg(long, default_value_t = 30)]
    seconds: u64,
}

fn payload(writer: u64, n: u64) -> serde_json::Value {
    // About 256 bytes, as the ledger benchmarks use.
    serde_json::json!({
        "writer": writer,
        "n": n,
        "service": format!("svc-{}", n % 150),
        "note": "x".repeat(190),
    })
}

/// One probe: commit, then query until the answer has the row. (commit time, lag, queries).
async fn probe(sys: &System, n: u64) -> Result<(Duration, Duration, u32)> {
    let stream = StreamId::new("lagprobe", format!("p{n}"))?;
    let ev = NewEvent::json("Probed", &payload(u64::MAX, n), Metadata::now("loadtest"))?;
    let sent = Instant::now();
    let receipt = sys.platform.ledger.append(&stream, 0, vec![ev]).await?;
    let committed = Instant::now();
    let p = receipt.last_position;
    let sql = format!("SELECT count(*) AS n FROM events WHERE position = {p}");
    for queries in 1..=100 {
        let answer = sys.query(&sql).await?;
        if answer["rows"][0]["n"] == 1 {
            return Ok((committed - sent, committed.elapsed(), queries));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bail!("position {p} was not queryable after 100 queries")
}

pub async fn run(args: &LagArgs) -> Result<()> {
    let sys = Arc::new(System::start(&args.database_url, &args.nats_url, 1000, true).await?);
    let stop = Arc::new(AtomicBool::new(false));
    let appended = Arc::new(AtomicU64::new(0));
    let writers = args.writers.max(1);
    let batch = args.batch.max(1);
    // Each writer appends `batch` events every `every`.
    let every = Duration::from_secs_f64((writers * batch) as f64 / args.rate.max(1) as f64);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (sys, stop, appended) = (sys.clone(), stop.clone(), appended.clone());
        tasks.push(tokio::spawn(async move {
            let stream = StreamId::new("lagload", format!("w{w}"))?;
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut version = 0;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let events = (0..batch)
                    .map(|i| {
                        NewEvent::json(
                            "Loaded",
                            &payload(w, version + i),
                            Metadata::now("loadtest"),
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                sys.platform.ledger.append(&stream, version, events).await?;
                version += batch;
                appended.fetch_add(batch, Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (from, started) = (appended.load(Ordering::Relaxed), Instant::now());
    let mut probes = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.probes.max(1) as f64));
    for n in 0..args.seconds * args.probes.max(1) {
        tick.tick().await;
        let sys = sys.clone();
        probes.push(tokio::spawn(async move { probe(&sys, n).await }));
    }
    let mut lag = Histogram::<u64>::new(3)?;
    let mut commit = Histogram::<u64>::new(3)?;
    let mut repeated = 0;
    for p in probes {
        let (c, l, queries) = p.await.context("a probe panicked")??;
        commit.record(c.as_micros() as u64)?;
        lag.record(l.as_micros() as u64)?;
        repeated += u32::from(queries > 1);
    }
    let load_rate =
        (appended.load(Ordering::Relaxed) - from) as f64 / started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.context("a writer panicked")??;
    }
    let size = sys.query("SELECT count(*) AS n FROM events").await?["rows"][0]["n"].clone();
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "lag: background load {load_rate:.0} events/s ({writers} writers, batches of {batch}; asked {}), \
         {} probes over {} s, {size} events in the analytics tables at the end",
        args.rate,
        lag.len(),
        args.seconds,
    );
    println!("| | p50 | p90 | p99 | max |");
    println!("|---|---:|---:|---:|---:|");
    for (name, h) in [
        ("probe append (commit)", &commit),
        ("commit to an answer containing it", &lag),
    ] {
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
            ms(h, 0.5),
            ms(h, 0.9),
            ms(h, 0.99),
            h.max() as f64 / 1000.0
        );
    }
    println!("probes that needed more than one query: {repeated}");
    sys.platform.shutdown().await;
    Ok(())
}
