//! A real Prometheus (Debian's package) scrapes a sample target and remote-writes to the
//! sla service: the request counter and latency buckets become minute summaries, and the
//! SLO's status shows exactly the increases Prometheus scraped, latencies marked approximate.
//! Then what a misconfigured sender gets: clear 4xx errors, nothing recorded.

use crate::inprocess::start;
use crate::support::{user_with_token, Http};
use axum::routing::get;
use goose_testkit::{eventually, Prometheus};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Scrapes served before the counters stop moving.
const MOVING_SCRAPES: u64 = 5;

/// The exposition of a service after `n` scrapes: each scrape adds 100 good and 10 failed
/// requests — 99 within 100 ms, 10 within 250 ms, 1 within 1 s.
fn exposition(n: u64) -> String {
    let n = n.min(MOVING_SCRAPES);
    format!(
        "# TYPE http_requests_total counter\n\
         http_requests_total{{service=\"service-a\",code=\"200\"}} {ok}\n\
         http_requests_total{{service=\"service-a\",code=\"503\"}} {err}\n\
         # TYPE http_request_duration_seconds histogram\n\
         http_request_duration_seconds_bucket{{service=\"service-a\",le=\"0.1\"}} {b1}\n\
         http_request_duration_seconds_bucket{{service=\"service-a\",le=\"0.25\"}} {b2}\n\
         http_request_duration_seconds_bucket{{service=\"service-a\",le=\"1\"}} {b3}\n\
         http_request_duration_seconds_bucket{{service=\"service-a\",le=\"+Inf\"}} {b3}\n\
         http_request_duration_seconds_sum{{service=\"service-a\"}} {sum}\n\
         http_request_duration_seconds_count{{service=\"service-a\"}} {b3}\n",
        ok = 100 * n,
        err = 10 * n,
        b1 = 99 * n,
        b2 = 109 * n,
        b3 = 110 * n,
        sum = 13 * n,
    )
}

async fn sample_target() -> (u16, Arc<AtomicU64>) {
    let scrapes = Arc::new(AtomicU64::new(0));
    let counter = scrapes.clone();
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let counter = counter.clone();
            async move { exposition(counter.fetch_add(1, Ordering::SeqCst) + 1) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, scrapes)
}

async fn onboard_with_slos(h: &Http, olga: &str) {
    let read = |f: &str| {
        std::fs::read(format!(
            "{}/../deploy/examples/{f}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let (s, v) = h
        .raw(
            "POST",
            "/v1/services",
            olga,
            "application/yaml",
            read("services/service-a.yaml"),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = h
        .raw(
            "PUT",
            "/v1/slos",
            olga,
            "application/yaml",
            read("slos/service-a.yaml"),
        )
        .await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_remote_writes_into_slo_status() {
    let sys = start().await;
    let (h, root) = (&sys.http, sys.admin.as_str());
    let olga = user_with_token(h, root, "olga", &["operator"]).await;
    onboard_with_slos(h, &olga).await;
    let (target, scrapes) = sample_target().await;
    let base = h.base.clone();
    let prom = Prometheus::start_with(|dir| {
        let creds = dir.join("goose-token");
        std::fs::write(&creds, &olga)?;
        Ok(format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             scrape_configs:\n  - job_name: sample\n    static_configs: [{{targets: ['127.0.0.1:{target}']}}]\n\
             remote_write:\n  - url: {base}/api/v1/write\n    authorization: {{credentials_file: {creds}}}\n\
             \x20   queue_config: {{batch_send_deadline: 500ms, min_backoff: 100ms, max_backoff: 1s}}\n",
            creds = creds.display()
        ))
    })
    .unwrap();

    // Once the counters stopped moving and Prometheus sent it all: every increase after the
    // first scrape (which only sets the baseline) is counted, nothing twice.
    let want_requests = 110 * (MOVING_SCRAPES - 1);
    let status = eventually(Duration::from_secs(60), "remote-written requests", || {
        let (h, olga) = (h.clone(), olga.clone());
        let scrapes = scrapes.clone();
        async move {
            let (_, st) = h
                .call(
                    "GET",
                    "/v1/slos/service-a-latency/status",
                    Some(&olga),
                    None,
                )
                .await;
            (scrapes.load(Ordering::SeqCst) > MOVING_SCRAPES + 2 && st["requests"] == want_requests)
                .then_some(st)
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\nprometheus log:\n{}", prom.log()));
    assert_eq!(status["errors"], 10 * (MOVING_SCRAPES - 1), "{status}");
    assert_eq!(status["approximate_latency"], true, "{status}");
    // Percentiles at bucket upper bounds: P50 in the 100 ms bucket, P95 and P99 in 250 ms.
    // (Within the histogram's 0.1 % precision.)
    let near = |field: &str, ms: f64| {
        let got = status[field].as_f64().unwrap();
        assert!(
            (got - ms).abs() <= ms * 0.001,
            "{field}: {got} ≠ {ms}: {status}"
        );
    };
    near("p50_ms", 100.0);
    near("p95_ms", 250.0);
    near("p99_ms", 250.0);
    // "P95 under 250 ms": the 1 in 110 requests of the 1 s bucket are the bad ones.
    let obj = &status["objectives"][0];
    assert_eq!(obj["total"], want_requests, "{status}");
    assert_eq!(obj["good"], 109 * (MOVING_SCRAPES - 1), "{status}");

    // Prometheus itself saw no failed or dropped sends (its own /metrics).
    let own = reqwest::get(format!("{}/metrics", prom.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let sent: Vec<&str> = own
        .lines()
        .filter(|l| {
            l.starts_with("prometheus_remote_storage_samples_failed_total")
                || l.starts_with("prometheus_remote_storage_samples_dropped_total")
        })
        .collect();
    assert!(!sent.is_empty(), "{own}");
    assert!(sent.iter().all(|l| l.ends_with(" 0")), "{sent:?}");
}

/// Labels and (unix ms, value) samples of one series.
type TestSeries<'a> = (&'a [(&'a str, &'a str)], &'a [(i64, f64)]);

fn write_request(series: &[TestSeries<'_>]) -> Vec<u8> {
    use goose_sla::remote_write::{Label, PromSample, TimeSeries, WriteRequest};
    let req = WriteRequest {
        timeseries: series
            .iter()
            .map(|(labels, samples)| TimeSeries {
                labels: labels
                    .iter()
                    .map(|(n, v)| Label {
                        name: (*n).into(),
                        value: (*v).into(),
                    })
                    .collect(),
                samples: samples
                    .iter()
                    .map(|(t, v)| PromSample {
                        timestamp: *t,
                        value: *v,
                    })
                    .collect(),
            })
            .collect(),
    };
    snap::raw::Encoder::new()
        .compress_vec(&prost::Message::encode_to_vec(&req))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_refuses_what_is_not_remote_write_and_counts_a_retry_once() {
    let sys = start().await;
    let (h, root) = (&sys.http, sys.admin.as_str());
    let olga = user_with_token(h, root, "olga", &["operator"]).await;
    let audrey = user_with_token(h, root, "audrey", &["auditor"]).await;
    onboard_with_slos(h, &olga).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let ok: &[(&str, &str)] = &[
        ("__name__", "http_requests_total"),
        ("job", "service-a"),
        ("code", "200"),
    ];
    let ghost: &[(&str, &str)] = &[
        ("__name__", "http_requests_total"),
        ("job", "ghost"),
        ("code", "200"),
    ];
    let body = write_request(&[
        (ok, &[(now - 20_000, 10.0), (now - 10_000, 60.0)]),
        (ghost, &[(now - 20_000, 1.0), (now - 10_000, 2.0)]),
    ]);
    let proto = "application/x-protobuf";
    let (s, v) = h
        .raw("POST", "/api/v1/write", &olga, proto, body.clone())
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["summaries"], 1, "{v}");
    assert_eq!(v["unknown_services"], json!(["ghost"]), "{v}");
    // Sent again (a retry after a lost response): nothing counted twice.
    let (s, v) = h
        .raw("POST", "/api/v1/write", &olga, proto, body.clone())
        .await;
    assert_eq!((s, &v["summaries"]), (200, &json!(0)), "{v}");
    assert_eq!(v["stale_samples"], 4, "{v}");
    let st = h
        .ok("GET", "/v1/slos/service-a-availability/status", &olga, None)
        .await;
    assert_eq!(st["requests"], 50, "{st}");

    // Only operators (measurement.submit) may write.
    let (s, _) = h
        .raw("POST", "/api/v1/write", &audrey, proto, body.clone())
        .await;
    assert_eq!(s, 403);
    // Not snappy, not a WriteRequest, another media type, remote write 2.0: refused, clearly.
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (proto, b"plain bytes".to_vec(), 400, "snappy"),
        (
            proto,
            snap::raw::Encoder::new().compress_vec(&[0xff; 12]).unwrap(),
            400,
            "prometheus.WriteRequest",
        ),
        (
            "application/json",
            body.clone(),
            415,
            "application/x-protobuf",
        ),
        (
            "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            body,
            415,
            "2.0",
        ),
    ];
    for (ct, b, want, says) in cases {
        let (s, v): (u16, Value) = h.raw("POST", "/api/v1/write", &olga, ct, b).await;
        assert_eq!(s, want, "{ct}: {v}");
        assert!(v["detail"].as_str().unwrap().contains(says), "{ct}: {v}");
    }
    let st = h
        .ok("GET", "/v1/slos/service-a-availability/status", &olga, None)
        .await;
    assert_eq!(
        st["requests"], 50,
        "nothing recorded by refused requests: {st}"
    );

    // The same reads over gRPC.
    use goose_proto::v1 as pb;
    let channel = tonic::transport::Channel::from_shared(h.base.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = pb::sla_client::SlaClient::new(channel);
    let req = |msg| {
        let mut r = tonic::Request::new(msg);
        r.metadata_mut()
            .insert("authorization", format!("Bearer {audrey}").parse().unwrap());
        r
    };
    let got = client
        .get_slo_status(req(pb::GetSloStatusRequest {
            name: "service-a-availability".into(),
            at: 0,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (got.requests, got.errors, got.approximate_latency),
        (50, 0, true)
    );
    assert_eq!(got.objectives[0].attainment, Some(1.0));
    let missing = client
        .get_slo_status(req(pb::GetSloStatusRequest {
            name: "nothing".into(),
            at: 0,
        }))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound, "{missing:?}");
    assert!(
        missing.message().contains("no SLO named nothing"),
        "{missing:?}"
    );
}
