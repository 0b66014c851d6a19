//! The one-shot verbs: verify, verify-consistency, checkpoint, keys show, proof,
//! verify-proof, db migrate.

use crate::api::Svc;
use crate::chain_api;
use crate::cli::{
    Api, CheckpointArgs, LogKeyArgs, ProofArgs, Target, TrustArgs, VerifyArgs,
    VerifyConsistencyArgs, VerifyProofArgs,
};
use crate::keyfiles;
use crate::trust::{self, exit, ClientState};
use anyhow::{bail, Context as _, Result};
use base64::Engine as _;
use goose_ledger::postgres::PgBackend;
use goose_ledger::sqlite::SqliteBackend;
use goose_ledger::{
    canonical, verify, Authorship, Backend, LedgerReader, NoteKey, TlogProof, Vkey,
};
use goose_platform::checkpoints::{CheckpointPublisher, PublishConfig, WitnessClient};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;
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

/// The log's verifier key: given, or derived from the data dir's log key.
fn log_vkey(arg: Option<&str>, target: &Target) -> Result<Vkey> {
    match arg {
        Some(v) => keyfiles::parse_vkey_arg(v),
        None => Ok(Vkey::parse(
            &keyfiles::load_log_key(None, &target.data_dir)
                .context("no --log-key given")?
                .vkey(),
        )?),
    }
}

fn client_state(trust: &TrustArgs, log_key: &Vkey) -> ClientState {
    let dir = if trust.no_state {
        None
    } else {
        trust.state_dir.clone().or_else(trust::default_state_dir)
    };
    ClientState::open(dir.as_deref(), log_key)
}

pub async fn verify(target: &Target, args: &VerifyArgs) -> Result<ExitCode> {
    let log_key = log_vkey(args.log_key.as_deref(), target)?;
    let keyring = match &args.keyring {
        Some(path) => keyfiles::read_keyring(path)?,
        None if target.database_url.is_none() => keyfiles::data_dir_keyring(&target.data_dir)?,
        None => bail!(
            "--keyring FILE is needed to verify a PostgreSQL ledger (one service vkey per line)"
        ),
    };
    let state = client_state(&args.trust, &log_key);
    let mut trusted = trust::read_trusted(&args.trust.trusted_checkpoints, &log_key)?;
    trusted.extend(state.load()?);
    if let Err(e) = trust::check_no_fork(&trusted) {
        println!("FAILED: {e:#}");
        return Ok(ExitCode::from(exit::TAMPERED));
    }
    let backend = open_backend(target).await?;
    let reader = LedgerReader::new(backend.clone());
    let total = backend.size().await?;
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    if total < 50_000 {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let started = std::time::Instant::now();
    let outcome = verify::verify_backend(
        backend,
        keyring,
        &log_key,
        trusted.clone(),
        |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        },
    )
    .await?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    for i in &outcome.intrusions {
        println!("INTRUSION: {i}: not signed by this log's key; ignored");
    }
    let report = match outcome.verdict {
        Ok(report) => report,
        Err(failure) => {
            println!(
                "FAILED at position {}: {}",
                failure.position, failure.problem
            );
            return Ok(ExitCode::from(exit::TAMPERED));
        }
    };
    // The database's own newest valid checkpoint must not be older than one the client
    // trusts: that would mean checkpoints were deleted, or the log rolled back.
    let (newest, _) = reader.latest_valid_checkpoint(&log_key, 0).await?;
    let newest_trusted = trusted.iter().max_by_key(|c| c.checkpoint.size);
    if let Some(t) = newest_trusted {
        if newest
            .as_ref()
            .is_none_or(|n| n.checkpoint.size < t.checkpoint.size)
        {
            println!(
                "FAILED: the database's newest checkpoint ({}) is older than a trusted one (size {}): checkpoints were deleted or the log was rolled back",
                newest.as_ref().map_or_else(|| "none".to_owned(), |n| format!("size {}", n.checkpoint.size)),
                t.checkpoint.size
            );
            return Ok(ExitCode::from(exit::TAMPERED));
        }
    }
    println!(
        "OK: {} events verified in {:.2}s ({:.0} events/s); {} commit seals; root {}; checkpoints verified at sizes {:?}",
        report.events,
        secs,
        report.events as f64 / secs.max(1e-9),
        report.seals_verified,
        hex::encode(report.root),
        report.checkpoints_verified
    );
    let Some(newest) = newest.or_else(|| newest_trusted.cloned()) else {
        println!(
            "UNANCHORED: no checkpoint signed by {} covers this log, so nothing outside the database vouches for it (sign one: goosectl checkpoint)",
            log_key.key_id()
        );
        return Ok(ExitCode::from(if outcome.intrusions.is_empty() {
            exit::UNANCHORED
        } else {
            exit::INTRUSION
        }));
    };
    // Everything up to the log's size verified against it, so it extends what was remembered.
    if state.remember(&newest)? {
        println!(
            "remembered checkpoint of size {} in {}",
            newest.checkpoint.size,
            state.describe()
        );
    }
    if !outcome.intrusions.is_empty() {
        return Ok(ExitCode::from(exit::INTRUSION));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn verify_consistency(
    target: &Target,
    api: &Api,
    args: &VerifyConsistencyArgs,
) -> Result<ExitCode> {
    let log_key = log_vkey(args.log_key.as_deref(), target)?;
    let mut both = trust::read_trusted(&[args.old.clone(), args.new.clone()], &log_key)?;
    let (Some(new), Some(old)) = (both.pop(), both.pop()) else {
        bail!("two checkpoints are needed");
    };
    if old.checkpoint.size > new.checkpoint.size {
        bail!(
            "the old checkpoint (size {}) is larger than the new one (size {})",
            old.checkpoint.size,
            new.checkpoint.size
        );
    }
    let proof: Vec<goose_ledger::merkle::Hash> = if args.from_api {
        let path = format!(
            "/v1/chain/proofs/consistency?from={}&to={}",
            old.checkpoint.size, new.checkpoint.size
        );
        let body = crate::api::send(api.request(Svc::Evidence, reqwest::Method::GET, &path)?)
            .await?
            .json()?;
        let parsed: chain_api::ConsistencyResponse = serde_json::from_value(body)?;
        proof_hashes(&parsed.hashes)?
    } else {
        let reader = LedgerReader::new(open_backend(target).await?);
        reader
            .consistency_proof(old.checkpoint.size, new.checkpoint.size)
            .await?
    };
    if let Err(e) = goose_ledger::merkle::verify_consistency(
        old.checkpoint.size,
        new.checkpoint.size,
        &old.checkpoint.root,
        &new.checkpoint.root,
        &proof,
    ) {
        println!(
            "FAILED: checkpoint of size {} does not extend the one of size {}: {e} (fork)",
            new.checkpoint.size, old.checkpoint.size
        );
        return Ok(ExitCode::from(exit::TAMPERED));
    }
    // What the client remembers: a same-size checkpoint must match; the new one is remembered
    // only when the proof starts from what was remembered (or nothing was).
    let state = client_state(&args.trust, &log_key);
    let seen = state.load()?;
    if let Some(seen) = &seen {
        if let Err(e) = trust::check_no_fork(&[seen.clone(), old.clone(), new.clone()]) {
            println!("FAILED: {e:#}");
            return Ok(ExitCode::from(exit::TAMPERED));
        }
    }
    if seen
        .as_ref()
        .is_none_or(|s| s.checkpoint.size == old.checkpoint.size)
    {
        state.remember(&new)?;
    }
    println!(
        "OK: the checkpoint of size {} extends the one of size {} ({} proof hashes)",
        new.checkpoint.size,
        old.checkpoint.size,
        proof.len()
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn checkpoint(target: &Target, args: &CheckpointArgs) -> Result<ExitCode> {
    let key = keyfiles::load_log_key(args.key.log_key_file.as_deref(), &target.data_dir)?;
    let reader = LedgerReader::new(open_backend(target).await?);
    let dir = args.checkpoint_dir.clone().or_else(|| {
        target
            .database_url
            .is_none()
            .then(|| keyfiles::checkpoints_dir(&target.data_dir))
    });
    let publisher = CheckpointPublisher::new(
        reader,
        std::sync::Arc::new(key),
        PublishConfig {
            dir,
            archive: None,
            witnesses: args
                .witnesses
                .iter()
                .map(|w| WitnessClient::parse(w))
                .collect::<Result<_>>()?,
            threshold: 0,
        },
    )?;
    let signed = publisher.publish_now().await?;
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
    let log_key = log_vkey(args.log_key.as_deref(), target)?;
    let (proof, _) = crate::chain_api::offline_proof(&reader, &log_key, &event).await?;
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
    let Some(extra) = &proof.extra else {
        bail!("the proof carries no event record (extra line); cannot recompute the leaf");
    };
    let authorship = Authorship::decode(extra)?;
    let decoded = canonical::decode_record(&authorship.record, proof.index)?;
    let event = &decoded.event;
    if event.position != proof.index {
        println!(
            "FAILED: the record is for position {}, the proof for index {}",
            event.position, proof.index
        );
        return Ok(ExitCode::from(exit::TAMPERED));
    }
    let checkpoint = match proof.verify(&vkey, &event.digest) {
        Ok(cp) => cp,
        Err(e) => {
            println!("FAILED: {e}");
            return Ok(ExitCode::from(exit::TAMPERED));
        }
    };
    // Against what this client trusts: same size means same root; older is a rollback.
    let state = client_state(&args.trust, &vkey);
    let mut trusted = trust::read_trusted(&args.trust.trusted_checkpoints, &vkey)?;
    trusted.extend(state.load()?);
    let mut all = trusted.clone();
    all.push(checkpoint.clone());
    if let Err(e) = trust::check_no_fork(&all) {
        println!("FAILED: {e:#}");
        return Ok(ExitCode::from(exit::TAMPERED));
    }
    if let Some(newest) = trusted.iter().max_by_key(|c| c.checkpoint.size) {
        if newest.checkpoint.size > checkpoint.checkpoint.size {
            println!(
                "FAILED: rollback: the proof's checkpoint (size {}) is older than the newest this client trusts (size {}); ask for a proof against a current checkpoint",
                checkpoint.checkpoint.size, newest.checkpoint.size
            );
            return Ok(ExitCode::from(exit::TAMPERED));
        }
    }
    let mut writer = String::new();
    if let Some(path) = &args.keyring {
        let ring = keyfiles::read_keyring(path)?;
        match authorship.verify(&ring, &checkpoint.checkpoint.origin) {
            Ok(a) => {
                writer = format!(
                    ", written by {} (commit [{}, {}] sealed)",
                    a.seal.key_id,
                    a.seal.first,
                    a.seal.last()
                )
            }
            Err(e) => {
                println!("FAILED: {e}");
                return Ok(ExitCode::from(exit::TAMPERED));
            }
        }
    }
    println!(
        "OK: event {} ({} {} v{}) is at position {} of {} ({} events, signed by {}){writer}",
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

pub async fn db_migrate(target: &Target) -> Result<ExitCode> {
    let Some(url) = &target.database_url else {
        bail!("--database-url is needed (the embedded ledger migrates itself when opened)");
    };
    PgBackend::connect(url)
        .await
        .context("installing the ledger schema")?;
    println!("the ledger schema is installed and current");
    Ok(ExitCode::SUCCESS)
}

/// `goosectl admin recover`: see [`crate::cli::AdminCommand::Recover`].
pub async fn admin_recover(
    target: &Target,
    user: &str,
    api_key_file: &Path,
    token_key_file: Option<&Path>,
    service_key_file: Option<&Path>,
    log_origin: Option<&str>,
) -> Result<ExitCode> {
    if api_key_file.exists() {
        bail!(
            "{} exists: name a new file for the API key",
            api_key_file.display()
        );
    }
    let token_key =
        token_key_file.map_or_else(|| target.data_dir.join("tokens.key"), Path::to_path_buf);
    NoteKey::load(&token_key).with_context(|| {
        format!(
            "reading rbac's token key {} (the proof that you operate this installation)",
            token_key.display()
        )
    })?;
    let service_key = service_key_file.map_or_else(
        || keyfiles::service_key_path(&target.data_dir, keyfiles::DEV_SERVICE_KEY_NAME),
        Path::to_path_buf,
    );
    let service_key = Arc::new(
        NoteKey::load(&service_key)
            .with_context(|| format!("reading the service key {}", service_key.display()))?,
    );
    let origin = match (log_origin, &target.database_url) {
        (Some(o), _) => o.to_owned(),
        (None, None) => keyfiles::DEV_LOG_KEY_NAME.to_owned(),
        (None, Some(_)) => {
            bail!("--log-origin is needed with --database-url (the services' GOOSE_LOG_ORIGIN)")
        }
    };
    let ledger = goose_ledger::Ledger::open(
        open_backend(target).await?,
        service_key,
        goose_ledger::LedgerConfig {
            origin,
            ..Default::default()
        },
    )
    .await?;
    let who = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let (api_key, position) =
        goose_rbac::recover_admin(&ledger, user, &format!("break-glass:{who}")).await?;
    goose_rbac::write_key_file(api_key_file, &api_key)
        .with_context(|| format!("writing {}", api_key_file.display()))?;
    println!(
        "{user} holds rbac.admin, recorded at position {position} as break-glass:{who}; its new API key is in {}",
        api_key_file.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The hashes of a proof the chain API sent (base64 SHA-256 each).
pub(crate) fn proof_hashes(hashes: &[String]) -> Result<Vec<goose_ledger::merkle::Hash>> {
    hashes
        .iter()
        .map(|h| {
            base64::engine::general_purpose::STANDARD
                .decode(h)
                .ok()
                .and_then(|b| b.try_into().ok())
                .context("the API's proof holds a hash that is not base64 SHA-256")
        })
        .collect()
}
