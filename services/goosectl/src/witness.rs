//! `goosectl witness`: a c2sp.org/tlog-witness server. It keeps, durably, the newest
//! checkpoint it cosigned of each log it is configured for, and cosigns a new one only when a
//! consistency proof shows it extends that one. A fork (another tree of a size it holds, or a
//! tree that does not extend it) is refused with 422 and the log-signed note is kept under
//! `<state dir>/refused/` as evidence.

use crate::cli::{WitnessCommand, WitnessKeyArgs, WitnessServeArgs};
use crate::keyfiles;
use anyhow::{Context as _, Result};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use goose_ledger::witness::{self, AddCheckpoint, WitnessKey, Witnessed};
use goose_ledger::{NoteKey, SignedCheckpoint, Vkey};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

pub async fn run(command: WitnessCommand) -> Result<ExitCode> {
    match command {
        WitnessCommand::Key(args) => {
            println!("{}", WitnessKey::of(&load_key(&args)?).to_text());
            Ok(ExitCode::SUCCESS)
        }
        WitnessCommand::Serve(args) => {
            let listener = tokio::net::TcpListener::bind(args.listen)
                .await
                .with_context(|| format!("listening on {}", args.listen))?;
            serve(&args, listener, goose_runtime::shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn load_key(args: &WitnessKeyArgs) -> Result<NoteKey> {
    Ok(NoteKey::load_or_generate(&args.key_file, &args.name)?)
}

struct Witness {
    key: NoteKey,
    logs: Vec<Vkey>,
    state_dir: PathBuf,
    /// One request at a time: check and store are one step.
    lock: tokio::sync::Mutex<()>,
}

/// Serves the witness on `listener` until `stop`.
pub async fn serve(
    args: &WitnessServeArgs,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let key = load_key(&args.key)?;
    let logs = args
        .logs
        .iter()
        .map(|l| keyfiles::parse_vkey_arg(l))
        .collect::<Result<Vec<_>>>()?;
    std::fs::create_dir_all(args.state_dir.join("refused"))
        .with_context(|| format!("creating {}", args.state_dir.display()))?;
    eprintln!(
        "witness {} on {} for {} log(s); cosigner key: {}",
        key.name(),
        listener.local_addr()?,
        logs.len(),
        WitnessKey::of(&key).to_text()
    );
    let state = Arc::new(Witness {
        key,
        logs,
        state_dir: args.state_dir.clone(),
        lock: tokio::sync::Mutex::new(()),
    });
    let app = Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
        .context("witness server failed")
}

fn state_file(dir: &Path, log: &Vkey) -> PathBuf {
    dir.join(format!("{}.checkpoint", crate::trust::log_file_name(log)))
}

fn plain(status: StatusCode, body: impl Into<String>) -> Response {
    let ct = if status == StatusCode::CONFLICT {
        witness::SIZE_CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    (
        status,
        [(header::CONTENT_TYPE, ct)],
        format!("{}\n", body.into().trim_end()),
    )
        .into_response()
}

async fn add_checkpoint(State(w): State<Arc<Witness>>, body: Bytes) -> Response {
    let Ok(text) = std::str::from_utf8(&body) else {
        return plain(StatusCode::BAD_REQUEST, "request is not UTF-8");
    };
    let req = match AddCheckpoint::parse(text) {
        Ok(r) => r,
        Err(refusal) => return plain(StatusCode::BAD_REQUEST, refusal.body),
    };
    let origin = req.note.lines().next().unwrap_or_default();
    let Some(log) = w.logs.iter().find(|l| l.name == origin) else {
        return plain(StatusCode::NOT_FOUND, format!("unknown log {origin:?}"));
    };
    let _guard = w.lock.lock().await;
    let file = state_file(&w.state_dir, log);
    let stored = match load(&file, log) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "witness state unreadable");
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "witness state unreadable",
            );
        }
    };
    match witness::decide(&req, log, stored.as_ref()) {
        Ok(cp) => {
            // Durable before the cosignature leaves.
            if let Err(e) = crate::trust::write_durably(&file, cp.note.as_bytes()) {
                tracing::error!(error = %format!("{e:#}"), "witness state not written");
                return plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "witness state not written",
                );
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let body = match witness::note_body(&cp.note) {
                Ok(b) => b,
                Err(e) => return plain(StatusCode::BAD_REQUEST, e.to_string()),
            };
            tracing::info!(log = %log.name, size = cp.checkpoint.size, "cosigned");
            plain(StatusCode::OK, witness::cosign(&w.key, body, now))
        }
        Err(refusal) => {
            let status =
                StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            if status == StatusCode::UNPROCESSABLE_ENTITY {
                tracing::error!(log = %log.name, reason = %refusal.body, "refused a checkpoint that forks the log");
                let name = format!(
                    "{}.note",
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos())
                );
                if let Err(e) = std::fs::write(w.state_dir.join("refused").join(name), &req.note) {
                    tracing::error!(error = %e, "could not keep the refused checkpoint");
                }
            } else {
                tracing::warn!(log = %log.name, status = refusal.status, reason = %refusal.body, "refused");
            }
            plain(status, refusal.body)
        }
    }
}

fn load(file: &Path, log: &Vkey) -> Result<Option<Witnessed>> {
    let note = match std::fs::read_to_string(file) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    let cp = SignedCheckpoint::verify(&note, log)?;
    Ok(Some(Witnessed {
        size: cp.checkpoint.size,
        root: cp.checkpoint.root,
    }))
}
