//! The one-shot verbs: verify, checkpoint, keys show, proof, verify-proof.

use crate::cli::{LogKeyArgs, ProofArgs, Target, VerifyArgs, VerifyProofArgs};
use crate::keyfiles;
use anyhow::{bail, Context as _, Result};
use goose_ledger::postgres::PgBackend;
use goose_ledger::sqlite::SqliteBackend;
use goose_ledger::{canonical, verify, Backend, LedgerReader, TlogProof};
use indicatif::{ProgressBar, ProgressStyle};
use std::process::ExitCode;
use std::sync::Arc;

/// Opens the target's ledger storage.
pub async fn open_backend(target: &Target) -> Result<Arc<dyn Backend>> {
    Ok(match &target.database_url {
        Some(url) => Arc::new(
            PgBackend::connect(url)
                .await
                .context("connecting to the ledger database")?,
        ),
        None => {
            let path = target.data_dir.join("ledger.db");
            if !path.exists() {
                bail!(
                    "no embedded ledger at {} (run `goosectl dev`, or pass --database-url)",
                    path.display()
                );
            }
            Arc::new(SqliteBackend::open(&path).await?)
        }
    })
}

pub async fn verify(target: &Target, args: &VerifyArgs) -> Result<ExitCode> {
    let log_key = match &args.log_key {
        Some(v) => keyfiles::parse_vkey_arg(v)?,
        None => goose_ledger::Vkey::parse(
            &keyfiles::load_log_key(None, &target.data_dir)
                .context("no --log-key given")?
                .vkey(),
        )?,
    };
    let keyring = match &args.keyring {
        Some(path) => keyfiles::read_keyring(path)?,
        None if target.database_url.is_none() => keyfiles::data_dir_keyring(&target.data_dir)?,
        None => bail!(
            "--keyring FILE is needed to verify a PostgreSQL ledger (one service vkey per line)"
        ),
    };
    let backend = open_backend(target).await?;
    let total = backend.size().await?;
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    if total < 50_000 {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let started = std::time::Instant::now();
    let verdict = verify::verify_backend(backend, keyring, &log_key, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .await?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    match verdict {
        Ok(report) => {
            println!(
                "OK: {} events verified in {:.2}s ({:.0} events/s); root {}; checkpoints verified at sizes {:?}",
                report.events,
                secs,
                report.events as f64 / secs.max(1e-9),
                hex::encode(report.root),
                report.checkpoints_verified
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => {
            println!(
                "FAILED at position {}: {}",
                failure.position, failure.problem
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

pub async fn checkpoint(target: &Target, args: &LogKeyArgs) -> Result<ExitCode> {
    let key = keyfiles::load_log_key(args.log_key_file.as_deref(), &target.data_dir)?;
    let reader = LedgerReader::new(open_backend(target).await?);
    let signed = reader.sign_checkpoint(&key).await?;
    print!("{}", signed.note);
    Ok(ExitCode::SUCCESS)
}

pub fn keys_show(target: &Target, args: &LogKeyArgs) -> Result<ExitCode> {
    let key = keyfiles::load_log_key(args.log_key_file.as_deref(), &target.data_dir)?;
    println!("{}", key.vkey());
    Ok(ExitCode::SUCCESS)
}

pub async fn proof(target: &Target, args: &ProofArgs) -> Result<ExitCode> {
    let reader = LedgerReader::new(open_backend(target).await?);
    let event = reader.find_event(args.event_id).await?;
    let (proof, _) = crate::chain_api::offline_proof(&reader, &event).await?;
    match &args.out {
        Some(path) => {
            std::fs::write(path, proof.to_text())
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "wrote proof of position {} to {}",
                event.position,
                path.display()
            );
        }
        None => print!("{}", proof.to_text()),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn verify_proof(args: &VerifyProofArgs) -> Result<ExitCode> {
    let vkey = keyfiles::parse_vkey_arg(&args.key)?;
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let proof = TlogProof::parse(&text)?;
    let Some(record) = &proof.extra else {
        bail!("the proof carries no event record (extra line); cannot recompute the leaf");
    };
    let decoded = canonical::decode_record(record, proof.index)?;
    let event = &decoded.event;
    if event.position != proof.index {
        println!(
            "FAILED: the record is for position {}, the proof for index {}",
            event.position, proof.index
        );
        return Ok(ExitCode::FAILURE);
    }
    let checkpoint = match proof.verify(&vkey, &event.digest) {
        Ok(cp) => cp,
        Err(e) => {
            println!("FAILED: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if let Some(path) = &args.keyring {
        let ring = keyfiles::read_keyring(path)?;
        if let Err(e) = ring.verify(
            &event.key_id,
            &canonical::signing_message(decoded.content),
            &event.signature,
        ) {
            println!("FAILED: {e}");
            return Ok(ExitCode::FAILURE);
        }
    }
    println!(
        "OK: event {} ({} {} v{}) is at position {} of {} ({} events, signed by {})",
        event.event_id,
        event.event_type,
        event.stream,
        event.version,
        event.position,
        checkpoint.checkpoint.origin,
        checkpoint.checkpoint.size,
        vkey.key_id()
    );
    Ok(ExitCode::SUCCESS)
}
