//! What every Golden Goose binary shares: tracing setup, the Prometheus recorder, health
//! routes, graceful shutdown, and the one mapping from errors to HTTP problem+json.

pub mod auth;
pub mod openapi;
pub mod problem;
pub mod routes;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

/// Installs the `tracing` subscriber (`RUST_LOG`, default `info`). Safe to call twice.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The process-wide Prometheus recorder (installed on first use).
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is already installed; then ours just stays idle.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutdown requested");
}

/// A readiness check: `Ok` (with notes worth surfacing, one per line, possibly none) when
/// the process can serve; `Err` says why not.
pub type ReadinessCheck = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<Vec<String>, String>> + Send>> + Send + Sync,
>;

#[derive(Clone)]
struct HealthState {
    ready: ReadinessCheck,
    metrics: PrometheusHandle,
}

/// `/healthz` (alive), `/readyz` (dependencies answer), `/metrics` (Prometheus text format).
pub fn health_routes(ready: ReadinessCheck) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(HealthState {
            ready,
            metrics: prometheus(),
        })
}

async fn readyz(State(s): State<HealthState>) -> Response {
    match (s.ready)().await {
        Ok(notes) => {
            let mut body = String::from("ready\n");
            for n in notes {
                body.push_str(&n);
                body.push('\n');
            }
            body.into_response()
        }
        Err(why) => {
            problem::Problem::new(StatusCode::SERVICE_UNAVAILABLE, "not ready", why).into_response()
        }
    }
}

async fn metrics_text(State(s): State<HealthState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}
