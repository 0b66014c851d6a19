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

pub use goose_telemetry as telemetry;

/// Installs the `tracing` subscriber (`RUST_LOG`, default `info`) and, when an OTLP endpoint
/// is configured, OpenTelemetry export as `service` ([`goose_telemetry::init`]). Keep the guard
/// until `main` returns: dropping it flushes the last spans.
pub fn init_tracing(service: &str) -> telemetry::Guard {
    telemetry::init(service)
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
    // One server span per request, continuing the caller's trace (W3C `traceparent`).
    let span = tracing::info_span!(
        "http request",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    telemetry::set_parent_from_http(&span, req.headers());
    let response = tracing::Instrument::instrument(next.run(req), span.clone()).await;
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    let labels = [route.as_str(), method.as_str(), status.as_str()];
    goose_metrics::http::REQUESTS.counter(&labels).increment(1);
    goose_metrics::http::DURATION
        .histogram(&labels)
        .record(started.elapsed().as_secs_f64());
    response
}
