//! Prometheus remote write (`POST /api/v1/write`, protocol 1.0: a snappy-compressed
//! protobuf `prometheus.WriteRequest`, as Prometheus and agents that speak it send it).
//!
//! The request counter and latency histogram series named by the [`Mapping`] become
//! approximate minute summaries ([`goose_domain::sla::prom`]), one measurement batch per
//! service and request, its id the request body's digest: a retried request (Prometheus
//! retries on 5xx and timeouts) is recognised and not counted twice. The last sample of each
//! series is remembered only once its summaries are recorded.
//!
//! The protobuf messages are declared here with `prost` derives (the five messages of
//! `prometheus/prompb/{remote,types}.proto` that protocol 1.0 uses, field numbers as
//! upstream): a crate of generated Prometheus types would bring a second prost version.

use crate::handlers::known_service_quiet;
use crate::{AppState, BatchAgg};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use goose_domain::sla::prom::{Mapping, Series};
use goose_domain::sla::MeasurementEvent;
use goose_ledger::{aggregate, Metadata};
use goose_platform::{execute_problem, problem};
use goose_runtime::auth::Caller;
use goose_runtime::problem::Problem;
use serde::{Deserialize, Serialize};
use sha3::Digest as _;
use std::convert::Infallible;

/// The largest decompressed request accepted (Prometheus sends a few hundred KiB at most).
pub const MAX_DECOMPRESSED: usize = 32 << 20;

#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<PromSample>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PromSample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// What a remote-write request became.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RemoteWriteResult {
    pub series: usize,
    /// Minute summaries recorded, all services together.
    pub summaries: usize,
    /// Series that are neither the request counter nor the latency buckets.
    pub ignored_series: usize,
    /// Series of ours without a service label or with a bad `le` / status code.
    pub unusable_series: usize,
    /// Samples already seen (a retry) or not a counter value, skipped.
    pub stale_samples: usize,
    /// Services whose summaries were recorded.
    pub services: Vec<String>,
    /// Services named by series that the catalog does not know (their samples dropped).
    pub unknown_services: Vec<String>,
}

/// Decodes a remote-write body into series.
pub fn decode(headers: &HeaderMap, body: &[u8]) -> Result<Vec<Series>, Problem> {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    let ct = header("content-type");
    if !ct.is_empty() && !ct.starts_with("application/x-protobuf") {
        return Err(Problem::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported media type",
            format!("content-type {ct}: remote write sends application/x-protobuf"),
        ));
    }
    if ct.contains("io.prometheus.write.v2") {
        return Err(Problem::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported media type",
            "remote write 2.0 is not supported; send protocol 1.0 (prometheus.WriteRequest)"
                .to_owned(),
        ));
    }
    let enc = header("content-encoding");
    if !enc.is_empty() && enc != "snappy" {
        return Err(Problem::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported media type",
            format!("content-encoding {enc}: remote write is snappy-compressed"),
        ));
    }
    let len = snap::raw::decompress_len(body)
        .map_err(|e| Problem::bad_request(format!("body is not snappy (block format): {e}")))?;
    if len > MAX_DECOMPRESSED {
        return Err(Problem::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "request too large",
            format!("{len} bytes decompressed; at most {MAX_DECOMPRESSED}"),
        ));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| Problem::bad_request(format!("body is not snappy (block format): {e}")))?;
    let req = <WriteRequest as prost::Message>::decode(raw.as_slice())
        .map_err(|e| Problem::bad_request(format!("body is not a prometheus.WriteRequest: {e}")))?;
    Ok(req
        .timeseries
        .into_iter()
        .map(|ts| Series {
            labels: ts.labels.into_iter().map(|l| (l.name, l.value)).collect(),
            samples: ts
                .samples
                .into_iter()
                .map(|s| (s.timestamp, s.value))
                .collect(),
        })
        .collect())
}

pub(crate) async fn write(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<RemoteWriteResult>, Problem> {
    let body = body.map_err(|e| Problem::new(e.status(), "invalid request body", e.body_text()))?;
    let series = decode(&headers, &body)?;
    let batch_id = format!("prw-{}", &hex::encode(sha3::Sha3_256::digest(&body))[..40]);
    // One request at a time: the memory of last samples must follow the recorded order.
    let mut memory = s.remote_write.lock().await;
    let conversion = memory
        .convert(&series, &s.config.prometheus)
        .map_err(|e| problem(&e))?;
    let mut out = RemoteWriteResult {
        series: series.len(),
        ignored_series: conversion.ignored_series,
        unusable_series: conversion.unusable_series,
        stale_samples: conversion.stale_samples,
        ..Default::default()
    };
    let meta = Metadata::now(caller.user.clone());
    for (service, summaries) in &conversion.summaries {
        if !known_service_quiet(&s, service).await? {
            out.unknown_services.push(service.clone());
            continue;
        }
        let done = aggregate::execute::<BatchAgg, Infallible>(
            &s.platform.ledger,
            &MeasurementEvent::stream_id(service, &batch_id),
            &meta,
            |cur| Ok(cur.0.record(summaries)),
        )
        .await
        .map_err(execute_problem)?;
        s.view.after_write(done.receipt, "sla").await;
        out.summaries += summaries.len();
        out.services.push(service.clone());
    }
    memory.commit(conversion);
    let counter = |outcome: &'static str, n: usize| {
        crate::metrics::REMOTE_WRITE_SERIES
            .counter(&[outcome])
            .increment(n as u64);
    };
    counter("ignored", out.ignored_series);
    counter("unusable", out.unusable_series);
    counter(
        "used",
        out.series - out.ignored_series - out.unusable_series,
    );
    if !out.unknown_services.is_empty() {
        tracing::warn!(services = ?out.unknown_services, "remote write: series of services not in the catalog dropped");
    }
    if out.unusable_series > 0 {
        tracing::warn!(
            count = out.unusable_series,
            "remote write: series without a service label or with a bad le/code dropped"
        );
    }
    Ok(Json(out))
}

/// The mapping's flags, for the service binary and `goosectl dev`.
#[derive(Debug, Clone, clap::Args)]
pub struct MappingArgs {
    /// Remote write: the request counter, one series per status code.
    #[arg(
        long,
        env = "GOOSE_SLA_PROM_REQUESTS",
        default_value = "http_requests_total"
    )]
    pub prom_requests_metric: String,
    /// Remote write: the latency histogram (seconds; `<name>_bucket` is read).
    #[arg(
        long,
        env = "GOOSE_SLA_PROM_LATENCY",
        default_value = "http_request_duration_seconds"
    )]
    pub prom_latency_metric: String,
    /// Remote write: labels naming the service, first present wins.
    #[arg(
        long,
        env = "GOOSE_SLA_PROM_SERVICE_LABELS",
        value_delimiter = ',',
        default_value = "service,job"
    )]
    pub prom_service_labels: Vec<String>,
    /// Remote write: labels holding the status code (5xx is an error), first present wins.
    #[arg(
        long,
        env = "GOOSE_SLA_PROM_STATUS_LABELS",
        value_delimiter = ',',
        default_value = "code,status"
    )]
    pub prom_status_labels: Vec<String>,
    /// Remote write: labels naming the version that served the requests, first present wins.
    #[arg(
        long,
        env = "GOOSE_SLA_PROM_VERSION_LABELS",
        value_delimiter = ',',
        default_value = "version"
    )]
    pub prom_version_labels: Vec<String>,
}

impl From<MappingArgs> for Mapping {
    fn from(a: MappingArgs) -> Self {
        Mapping {
            requests_metric: a.prom_requests_metric,
            latency_metric: a.prom_latency_metric,
            service_labels: a.prom_service_labels,
            status_labels: a.prom_status_labels,
            version_labels: a.prom_version_labels,
        }
    }
}
