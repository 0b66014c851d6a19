//! `loadtest tail`: commit-order visibility. W appenders, each with a ledger handle, pool and
//! committer of its own (as W processes would be), append to one PostgreSQL ledger while a
//! reader tails it from position 0. The reader must see every position exactly once, in
//! order, each event chained to the one before (so a position seen before an earlier commit
//! became visible — the classic gap of sequence-numbered logs — is a failure, not a skip).

use anyhow::{bail, Context as _, Result};
use futures::StreamExt as _;
use goose_ledger::postgres::PgBackend;
use goose_ledger::{Backend, Ledger, LedgerConfig, Metadata, NewEvent, NoteKey, StreamId};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct TailArgs {
    /// PostgreSQL URL of the ledger (use an empty database: the tail starts at position 0).
    #[arg(long, env = "GOOSE_DATABASE_URL")]
    database_url: String,
    /// Concurrent appenders, each with its own ledger handle.
    #[arg(long, default_value_t = 16)]
    writers: u64,
    /// Events each appender writes.
    #[arg(long, default_value_t = 1_000_000)]
    events_per_writer: u64,
    /// Events per append.
    #[arg(long, default_value_t = 100)]
    batch: u64,
}

async fn open(url: &str, name: &str) -> Result<Ledger> {
    let backend: Arc<dyn Backend> = Arc::new(PgBackend::connect(url).await?);
    let key = Arc::new(NoteKey::generate(name)?);
    Ok(Ledger::open(
        backend,
        key,
        LedgerConfig {
            origin: "goose.loadtest/tail".into(),
            ..LedgerConfig::default()
        },
    )
    .await?)
}

pub async fn run(args: &TailArgs) -> Result<()> {
    let reader = open(&args.database_url, "loadtest-tail-reader").await?;
    let start_size = reader.size().await?;
    if start_size != 0 {
        bail!("the ledger already holds {start_size} events: give an empty database");
    }
    let total = args.writers * args.events_per_writer;
    let started = Instant::now();
    let tail = tokio::spawn(async move {
        let mut s = Box::pin(reader.tail(0));
        let mut expected = 0u64;
        let mut previous = None;
        let mut max_wait = Duration::ZERO;
        while expected < total {
            let waited = Instant::now();
            let ev = tokio::time::timeout(Duration::from_secs(60), s.next())
                .await
                .context("the tail stalled for 60 s")?
                .context("the tail ended")??;
            max_wait = max_wait.max(waited.elapsed());
            if ev.position != expected {
                bail!(
                    "the tail saw position {} where {expected} was next: {} missed",
                    ev.position,
                    ev.position.saturating_sub(expected)
                );
            }
            if let Some(prev) = previous {
                if ev.previous_digest != prev {
                    bail!(
                        "position {} does not chain to the event before it",
                        ev.position
                    );
                }
            }
            previous = Some(ev.digest);
            expected += 1;
        }
        Ok::<_, anyhow::Error>((expected, max_wait))
    });
    let mut writers = Vec::new();
    for w in 0..args.writers {
        let ledger = open(&args.database_url, &format!("loadtest-tail-writer-{w}")).await?;
        let (per, batch) = (args.events_per_writer, args.batch.max(1));
        writers.push(tokio::spawn(async move {
            let stream = StreamId::new("tail", format!("w{w}"))?;
            let mut written = 0;
            while written < per {
                let n = batch.min(per - written);
                let events = (0..n)
                    .map(|i| {
                        NewEvent::json(
                            "Appended",
                            &serde_json::json!({ "writer": w, "n": written + i }),
                            Metadata::now("loadtest"),
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                ledger.append(&stream, written, events).await?;
                written += n;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for w in writers {
        w.await??;
    }
    let written_in = started.elapsed();
    let (seen, max_wait) = tail.await??;
    let secs = written_in.as_secs_f64();
    println!(
        "tail: {} appenders x {} events (batches of {}): {seen} of {total} events seen in order, 0 missed, 0 twice; \
         appended in {secs:.1} s ({:.0} events/s); longest wait for the next event {:.0} ms",
        args.writers,
        args.events_per_writer,
        args.batch,
        total as f64 / secs,
        max_wait.as_secs_f64() * 1000.0,
    );
    Ok(())
}
