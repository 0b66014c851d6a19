//! Tracing for every Golden Goose process: the log subscriber (`RUST_LOG`, stderr) and, when
//! an OTLP endpoint is configured, OpenTelemetry spans exported over OTLP/gRPC.
//!
//! Export is off by default. It is on when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the OpenTelemetry names), unless `OTEL_SDK_DISABLED`
//! is `true` or `OTEL_TRACES_EXPORTER` is `none`. Spans at `GOOSE_TRACE_FILTER` (an
//! `EnvFilter`, default `info`) are exported whatever `RUST_LOG` says about logs.
//!
//! Trace context travels as W3C `traceparent` / `tracestate`: in HTTP headers (in: the
//! request's span continues the caller's trace; out: [`inject_http`]), and on events — the
//! ledger stamps the appending span's context on each event's metadata attributes
//! ([`stamp`]), the relay copies them into the NATS message headers, and a consumer's span
//! continues that trace ([`set_parent`]). So one promotion is one trace across processes.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// The W3C Trace Context header (and event attribute) names.
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported (and so carry trace context worth propagating).
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Where spans go, read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportConfig {
    /// The OTLP/gRPC endpoint (`http://collector:4317`).
    pub endpoint: String,
    /// `service.name` of the resource (`OTEL_SERVICE_NAME` overrides the binary's name).
    pub service_name: String,
}

impl ExportConfig {
    /// `None` when export is off (the default).
    pub fn from_env(service: &str) -> Option<Self> {
        Self::from_lookup(service, |k| std::env::var(k).ok())
    }

    fn from_lookup(service: &str, var: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let set = |k: &str| {
            var(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        if set("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || set("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"))
        {
            return None;
        }
        let endpoint = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| set("OTEL_EXPORTER_OTLP_ENDPOINT"))?;
        Some(Self {
            endpoint,
            service_name: set("OTEL_SERVICE_NAME").unwrap_or_else(|| service.to_owned()),
        })
    }
}

/// Keeps the exporter alive; dropping it flushes the spans not sent yet.
#[derive(Debug, Default)]
#[must_use = "dropping the guard stops the export"]
pub struct Guard {
    provider: Option<SdkTracerProvider>,
}

impl Guard {
    /// Whether this process exports spans.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            EXPORTING.store(false, Ordering::Relaxed);
            if let Err(e) = provider.shutdown() {
                // The subscriber may be gone by now: stderr is the one place left.
                eprintln!("warning: flushing the last spans to the OTLP endpoint failed: {e}");
            }
        }
    }
}

fn log_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Installs the subscriber: logs to stderr (`RUST_LOG`, default `info`) and, when configured
/// ([`ExportConfig::from_env`]), OpenTelemetry export. Call once at the top of `main` and keep
/// the guard until the end; a second call (tests) leaves the first subscriber in place.
pub fn init(service: &str) -> Guard {
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(log_filter());
    let Some(config) = ExportConfig::from_env(service) else {
        let _ = tracing_subscriber::registry().with(logs).try_init();
        return Guard::default();
    };
    let provider = match provider(&config) {
        Ok(p) => p,
        Err(e) => {
            let _ = tracing_subscriber::registry().with(logs).try_init();
            tracing::error!(endpoint = %config.endpoint, error = %e, "OpenTelemetry export is configured but could not start; no spans are exported");
            return Guard::default();
        }
    };
    let spans =
        EnvFilter::try_from_env("GOOSE_TRACE_FILTER").unwrap_or_else(|_| EnvFilter::new("info"));
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("golden-goose"))
        .with_filter(spans);
    if tracing_subscriber::registry()
        .with(logs)
        .with(otel)
        .try_init()
        .is_err()
    {
        // Another subscriber was installed first (a test harness): it keeps the spans.
        let _ = provider.shutdown();
        return Guard::default();
    }
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    EXPORTING.store(true, Ordering::Relaxed);
    tracing::info!(endpoint = %config.endpoint, service = %config.service_name, "exporting traces over OTLP");
    Guard {
        provider: Some(provider),
    }
}

fn provider(
    config: &ExportConfig,
) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    use opentelemetry_otlp::WithExportConfig as _;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(config.endpoint.clone())
        .build()?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(config.service_name.clone())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The current span's W3C trace context as `traceparent` (and `tracestate` when not empty);
/// empty when nothing is exported or no span is current.
pub fn current() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if exporting() {
        let cx = tracing::Span::current().context();
        TraceContextPropagator::new().inject_context(&cx, &mut MapInjector(&mut out));
        out.retain(|_, v| !v.is_empty());
    }
    out
}

/// Adds the current trace context to an event's metadata attributes, unless it carries one
/// already (the ledger calls it on every append; a no-op when nothing is exported).
pub fn stamp(attributes: &mut BTreeMap<String, String>) {
    if attributes.contains_key(TRACEPARENT) {
        return;
    }
    for (k, v) in current() {
        attributes.entry(k).or_insert(v);
    }
}

/// Adds the current trace context to outgoing HTTP request headers.
pub fn inject_http(headers: &mut http::HeaderMap) {
    for (k, v) in current() {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_str(&v),
        ) {
            headers.insert(name, value);
        }
    }
}

/// Makes `span` continue the trace whose context `get` finds (`traceparent`, `tracestate`):
/// from HTTP headers, NATS headers or event attributes. Returns whether a valid parent was
/// found; without one the span stays a root.
pub fn set_parent(span: &tracing::Span, get: impl Fn(&str) -> Option<String>) -> bool {
    if !exporting() {
        return false;
    }
    let found = Found {
        traceparent: get(TRACEPARENT),
        tracestate: get(TRACESTATE),
    };
    // From an empty context: the current one (an entered span) must not count as found.
    let cx =
        TraceContextPropagator::new().extract_with_context(&opentelemetry::Context::new(), &found);
    if !cx.span().span_context().is_valid() {
        return false;
    }
    span.set_parent(cx).is_ok()
}

/// [`set_parent`] from HTTP request headers.
pub fn set_parent_from_http(span: &tracing::Span, headers: &http::HeaderMap) -> bool {
    set_parent(span, |k| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    })
}

/// The trace id (32 hex digits) of the current span, when exported: for log lines and
/// answers that let a user find the trace.
pub fn current_trace_id() -> Option<String> {
    if !exporting() {
        return None;
    }
    let cx = tracing::Span::current().context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

struct MapInjector<'a>(&'a mut BTreeMap<String, String>);

impl Injector for MapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

/// The two W3C values, fetched up front (`Extractor` lends out borrowed strings).
struct Found {
    traceparent: Option<String>,
    tracestate: Option<String>,
}

impl Extractor for Found {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => self.traceparent.as_deref(),
            TRACESTATE => self.tracestate.as_deref(),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT, TRACESTATE]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn export_is_off_unless_an_endpoint_is_set() {
        assert_eq!(ExportConfig::from_lookup("goose-rbac", lookup(&[])), None);
        assert_eq!(
            ExportConfig::from_lookup(
                "goose-rbac",
                lookup(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])
            ),
            None
        );
        let on = ExportConfig::from_lookup(
            "goose-rbac",
            lookup(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4317")]),
        );
        assert_eq!(
            on,
            Some(ExportConfig {
                endpoint: "http://otel:4317".into(),
                service_name: "goose-rbac".into()
            })
        );
        let specific = ExportConfig::from_lookup(
            "goose-rbac",
            lookup(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4317"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4317"),
                ("OTEL_SERVICE_NAME", "rbac-eu"),
            ]),
        )
        .unwrap();
        assert_eq!(specific.endpoint, "http://traces:4317");
        assert_eq!(specific.service_name, "rbac-eu");
        for off in [
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ] {
            assert_eq!(
                ExportConfig::from_lookup(
                    "goose-rbac",
                    lookup(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4317"), off]),
                ),
                None,
                "{off:?}"
            );
        }
    }

    #[test]
    fn a_span_continues_the_trace_it_is_given_and_passes_it_on() {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        EXPORTING.store(true, Ordering::Relaxed);
        tracing::subscriber::with_default(subscriber, || {
            let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
            let span = tracing::info_span!("consume");
            assert!(set_parent(&span, |k| (k == TRACEPARENT).then(|| parent.to_owned())));
            let _entered = span.enter();
            assert_eq!(
                current_trace_id().as_deref(),
                Some("0af7651916cd43dd8448eb211c80319c")
            );
            let mut attributes = BTreeMap::new();
            stamp(&mut attributes);
            let stamped = attributes[TRACEPARENT].clone();
            assert!(
                stamped.starts_with("00-0af7651916cd43dd8448eb211c80319c-"),
                "{stamped}"
            );
            assert!(
                !stamped.contains("b7ad6b7169203331"),
                "the child's own span id: {stamped}"
            );
            // An event that carries a context keeps it.
            let mut given = BTreeMap::from([(TRACEPARENT.to_owned(), parent.to_owned())]);
            stamp(&mut given);
            assert_eq!(given[TRACEPARENT], parent);
            let mut headers = http::HeaderMap::new();
            inject_http(&mut headers);
            assert_eq!(headers[TRACEPARENT], stamped.as_str());
            // Garbage is not a parent: the span stays a root of its own.
            let other = tracing::info_span!("other");
            assert!(!set_parent(&other, |_| Some("00-zz-yy-01".to_owned())));
            assert!(!set_parent(&other, |_| None));
        });
    }
}
