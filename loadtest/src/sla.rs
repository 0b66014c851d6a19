//! `loadtest telemetry` and `loadtest slo-status`: the sla service's two hot paths.
//!
//! - telemetry: raw samples published on a real nats-server as goose-sla's telemetry
//!   listener takes them (`goose_sla::telemetry::{Ingest, fold}`: core NATS, JSON triples,
//!   exact HdrHistograms per service and minute); the rate is samples folded per second, from
//!   the first publish to the last sample folded (publisher and listener share the machine).
//! - slo-status: an SLO's status (attainment, burn rates over every alert window, P50/P95/P99)
//!   over a window holding N samples of one service, decoded from the minute summaries the
//!   chain records — the work every status request and evaluation does.

use anyhow::{bail, Result};
use goose_domain::sla::openslo;
use goose_domain::sla::telemetry::Accumulator;
use goose_sla::telemetry::{fold, Ingest};
use hdrhistogram::Histogram;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct TelemetryArgs {
    #[arg(long, env = "GOOSE_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// Samples to publish.
    #[arg(long, default_value_t = 10_000_000)]
    samples: u64,
    /// Samples per message.
    #[arg(long, default_value_t = 1_000)]
    per_message: u64,
}

#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// Samples in the SLO's window (one service).
    #[arg(long, default_value_t = 10_000_000)]
    samples: u64,
    /// The window, an OpenSLO duration.
    #[arg(long, default_value = "7d")]
    window: String,
    /// Status computations timed.
    #[arg(long, default_value_t = 50)]
    runs: u64,
}

/// Synthetic traffic: latencies log-normal-ish around 120 ms, 0.5 % errors.
fn triple(rng: &mut impl rand::Rng, at_ms: i64) -> (i64, u64, u16) {
    let us = (120_000.0 * (rng.gen::<f64>() * 2.0 - 1.0).exp()) as u64 + rng.gen_range(0..5_000);
    (at_ms, us, if rng.gen_ratio(1, 200) { 503 } else { 200 })
}

pub async fn telemetry(args: &TelemetryArgs) -> Result<()> {
    let client = async_nats::ConnectOptions::new()
        .subscription_capacity(1 << 20)
        .connect(&args.nats_url)
        .await?;
    let prefix = format!("goose.loadtest.t{}", uuid::Uuid::new_v4().simple());
    let ingest = Arc::new(Ingest::new(&prefix));
    let sub = client.subscribe(format!("{prefix}.*")).await?;
    tokio::spawn(fold(sub, ingest.clone(), |_| true));
    // Messages prepared beforehand: what is timed is publishing and folding.
    let mut rng = rand::thread_rng();
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let messages = args.samples.div_ceil(args.per_message);
    let distinct = messages.min(200);
    let payloads: Vec<bytes::Bytes> = (0..distinct)
        .map(|m| {
            let v: Vec<_> = (0..args.per_message)
                .map(|i| {
                    triple(
                        &mut rng,
                        now_ms - 3_600_000 + ((m * args.per_message + i) % 3_600_000) as i64,
                    )
                })
                .collect();
            serde_json::to_vec(&v).map(bytes::Bytes::from)
        })
        .collect::<Result<_, _>>()?;
    let bytes_per_message = payloads.iter().map(bytes::Bytes::len).sum::<usize>() / payloads.len();
    let publisher = async_nats::connect(&args.nats_url).await?;
    let subject = format!("{prefix}.checkout");
    let total = messages * args.per_message;
    let started = Instant::now();
    for m in 0..messages {
        publisher
            .publish(subject.clone(), payloads[(m % distinct) as usize].clone())
            .await?;
    }
    publisher.flush().await?;
    let published = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(120);
    while ingest.pending() < total {
        if Instant::now() > deadline {
            bail!(
                "only {} of {total} samples folded after 120 s (slow consumer: NATS dropped messages)",
                ingest.pending()
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let took = started.elapsed();
    println!(
        "telemetry: {total} samples in {messages} messages of {} ({bytes_per_message} B), published in {:.2} s, folded in {:.2} s: {:.0} samples/s",
        args.per_message,
        published.as_secs_f64(),
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64()
    );
    Ok(())
}

pub fn status(args: &StatusArgs) -> Result<()> {
    let yaml = format!(
        "apiVersion: openslo/v1\nkind: SLO\nmetadata: {{name: bench}}\nspec:\n  service: checkout\n  timeWindow: [{{duration: {}, isRolling: true}}]\n  indicator:\n    metadata: {{name: bench-latency}}\n    spec:\n      thresholdMetric: {{metricSource: {{type: golden-goose, spec: {{signal: latency}}}}}}\n  objectives:\n    - {{displayName: p99, op: lte, value: 800, target: 0.99}}\n",
        args.window
    );
    let slo = openslo::parse(&yaml)?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no SLO"))?;
    let at = time::OffsetDateTime::now_utc().unix_timestamp();
    let at = at - at.rem_euclid(60);
    let window_ms = slo.window_seconds as i64 * 1000;
    let mut acc = Accumulator::default();
    let mut rng = rand::thread_rng();
    let built = Instant::now();
    let chunk = 100_000u64;
    let mut done = 0;
    while done < args.samples {
        let n = chunk.min(args.samples - done);
        let v: Vec<_> = (done..done + n)
            .map(|i| {
                triple(
                    &mut rng,
                    (at * 1000 - window_ms) + (i as i64 * window_ms / args.samples as i64),
                )
            })
            .collect();
        acc.add("checkout", None, &v)?;
        done += n;
    }
    let summaries = acc
        .take_closed(i64::MAX - 60)?
        .remove("checkout")
        .unwrap_or_default();
    let bytes: usize = summaries.iter().map(|s| s.latency_histogram.len()).sum();
    println!(
        "slo-status: {} samples in {} minute summaries ({:.1} MB of histograms, base64), built in {:.1} s",
        args.samples,
        summaries.len(),
        bytes as f64 / 1e6,
        built.elapsed().as_secs_f64()
    );
    let mut h = Histogram::<u64>::new(3)?;
    let mut last = None;
    for _ in 0..args.runs {
        let t = Instant::now();
        let st = goose_domain::sla::status::status(&slo, &summaries, at)?;
        h.record(t.elapsed().as_micros() as u64)?;
        last = Some(st);
    }
    let st = last.ok_or_else(|| anyhow::anyhow!("no runs"))?;
    if st.requests != args.samples {
        bail!(
            "the status counted {} requests of {}",
            st.requests,
            args.samples
        );
    }
    println!(
        "slo-status: P99 latency over the window {:.1} ms (exact); status computed in P50 {:.1} ms, P99 {:.1} ms, max {:.1} ms over {} runs",
        st.p99_ms.unwrap_or_default(),
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0,
        args.runs
    );
    Ok(())
}
