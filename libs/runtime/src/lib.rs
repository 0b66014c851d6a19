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
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
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
            // Histograms get the catalog's buckets (summaries otherwise, which cannot be
            // aggregated across replicas). Only an empty list is refused; the catalog's test
            // excludes those.
            let builder = goose_metrics::ALL
                .iter()
                .filter(|m| !m.buckets.is_empty())
                .try_fold(PrometheusBuilder::new(), |b, m| {
                    b.set_buckets_for_metric(Matcher::Full(m.name.to_owned()), m.buckets)
                })
                .unwrap_or_else(|e| {
                    tracing::error!(error = %e, "histogram buckets refused; exporting summaries");
                    PrometheusBuilder::new()
                });
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is already installed; then ours just stays idle.
            if metrics::set_global_recorder(recorder).is_ok() {
                goose_metrics::describe_all();
            }
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
    goose_metrics::collect();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}

/// Middleware: counts and times every request by route template (`http_requests_total`,
/// `http_request_duration_seconds`). Requests no route matched are labelled `unmatched`, so
/// scanners cannot blow up the label set.
pub async fn track_requests(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let started = std::time::Instant::now();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().clone();
    let response = next.run(req).await;
    let status = response.status();
    let labels = [route.as_str(), method.as_str(), status.as_str()];
    goose_metrics::http::REQUESTS.counter(&labels).increment(1);
    goose_metrics::http::DURATION
        .histogram(&labels)
        .record(started.elapsed().as_secs_f64());
    response
}
