//! NATS JetStream: stream `GOOSE_EVENTS` (file storage), subjects
//! `goose.evt.<aggregate>.<event type>`, `Nats-Msg-Id` = event id so the server drops
//! duplicates, CloudEvents attributes as headers, the canonical record as the body.

use crate::{check_consumer_name, Acker, Bus, BusConfig, Delivery, Error, Result, Subscription};
use crate::{TRACEPARENT, TRACESTATE};
use async_nats::jetstream::{self, consumer, stream};
use async_nats::HeaderMap;
use futures::StreamExt as _;
use goose_ledger::{canonical, RecordedEvent};
use std::time::Duration;

/// Header carrying the global position (also inside the record; this saves a decode).
pub const POSITION_HEADER: &str = "Goose-Position";
/// CloudEvents `source` of every event.
pub const CE_SOURCE: &str = "urn:golden-goose:ledger";

/// The JetStream bus.
#[derive(Debug, Clone)]
pub struct JetStreamBus {
    js: jetstream::Context,
    stream: stream::Stream,
    config: BusConfig,
}

fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::Unavailable(e.to_string())
}

/// A NATS user name and password (the production configuration gives each service its own
/// user, allowed to publish on its own subjects only: `goosectl nats-config`).
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl JetStreamBus {
    /// Connects (retrying while the server is not up yet) and creates the stream if missing.
    pub async fn connect(url: &str, config: BusConfig) -> Result<Self> {
        Self::connect_as(url, None, config).await
    }

    /// [`JetStreamBus::connect`] as a NATS user.
    pub async fn connect_as(
        url: &str,
        credentials: Option<&Credentials>,
        config: BusConfig,
    ) -> Result<Self> {
        let options = match credentials {
            Some(c) => async_nats::ConnectOptions::with_user_and_password(
                c.user.clone(),
                c.password.clone(),
            ),
            None => async_nats::ConnectOptions::new(),
        };
        let client = options
            .connection_timeout(Duration::from_secs(5))
            .retry_on_initial_connect()
            .connect(url)
            .await
            .map_err(unavailable)?;
        let js = jetstream::new(client);
        let stream = js
            .get_or_create_stream(stream::Config {
                name: config.stream.clone(),
                subjects: vec![config.filter(None)],
                storage: stream::StorageType::File,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        Ok(Self { js, stream, config })
    }

    pub fn config(&self) -> &BusConfig {
        &self.config
    }
}

fn headers_of(event: &RecordedEvent) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        async_nats::header::NATS_MESSAGE_ID,
        event.event_id.to_string().as_str(),
    );
    h.insert("ce-specversion", "1.0");
    h.insert("ce-id", event.event_id.to_string().as_str());
    h.insert("ce-type", event.event_type.as_str());
    h.insert("ce-source", CE_SOURCE);
    h.insert("ce-subject", event.stream.to_string().as_str());
    if let Ok(t) = event
        .metadata
        .recorded_at
        .format(&time::format_description::well_known::Rfc3339)
    {
        h.insert("ce-time", t.as_str());
    }
    h.insert(POSITION_HEADER, event.position.to_string().as_str());
    // W3C trace context of the span that appended it, for consumers to continue the trace.
    for (k, v) in crate::trace_context_of(event) {
        h.insert(k.as_str(), v.as_str());
    }
    h
}

#[async_trait::async_trait]
impl Bus for JetStreamBus {
    async fn health(&self) -> Result<()> {
        // A JetStream API round trip: the connection is up and the stream exists.
        let mut stream = self.stream.clone();
        stream.info().await.map_err(unavailable)?;
        Ok(())
    }

    async fn publish(&self, events: &[RecordedEvent]) -> Result<()> {
        // Pipelined: send all, then wait for the acks, in order.
        let mut acks = Vec::with_capacity(events.len());
        for ev in events {
            let ack = self
                .js
                .publish_with_headers(
                    self.config.subject(ev),
                    headers_of(ev),
                    bytes::Bytes::from(ev.record.clone()),
                )
                .await
                .map_err(unavailable)?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await.map_err(unavailable)?;
        }
        Ok(())
    }

    async fn subscribe(
        &self,
        name: &str,
        aggregate_type: Option<&str>,
    ) -> Result<Box<dyn Subscription>> {
        check_consumer_name(name)?;
        let consumer = self
            .stream
            .get_or_create_consumer(
                name,
                consumer::pull::Config {
                    durable_name: Some(name.to_owned()),
                    filter_subject: self.config.filter(aggregate_type),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: self.config.ack_wait,
                    deliver_policy: consumer::DeliverPolicy::All,
                    ..Default::default()
                },
            )
            .await
            .map_err(unavailable)?;
        Ok(Box::new(JetStreamSubscription { consumer }))
    }

    async fn subscribe_live(&self, aggregate_type: Option<&str>) -> Result<Box<dyn Subscription>> {
        // An ephemeral consumer: no durable name, deleted by the server after a minute
        // without fetches, so stopped processes leave nothing behind.
        let consumer = self
            .stream
            .create_consumer(consumer::pull::Config {
                filter_subject: self.config.filter(aggregate_type),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: self.config.ack_wait,
                deliver_policy: consumer::DeliverPolicy::New,
                inactive_threshold: Duration::from_secs(60),
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        Ok(Box::new(JetStreamSubscription { consumer }))
    }
}

struct JetStreamSubscription {
    consumer: consumer::Consumer<consumer::pull::Config>,
}

#[async_trait::async_trait]
impl Subscription for JetStreamSubscription {
    async fn fetch(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>> {
        let mut batch = self
            .consumer
            .fetch()
            .max_messages(max)
            .expires(wait)
            .messages()
            .await
            .map_err(unavailable)?;
        let mut out = Vec::new();
        while let Some(msg) = batch.next().await {
            let msg = msg.map_err(unavailable)?;
            let hint = msg
                .headers
                .as_ref()
                .and_then(|h| h.get(POSITION_HEADER))
                .and_then(|v| v.as_str().parse().ok())
                .unwrap_or(0);
            let event = canonical::decode_record(&msg.payload, hint)
                .map_err(|e| Error::Malformed(e.to_string()))?
                .event;
            let trace_context = msg
                .headers
                .as_ref()
                .map(|h| {
                    [TRACEPARENT, TRACESTATE]
                        .into_iter()
                        .filter_map(|k| Some((k.to_owned(), h.get(k)?.as_str().to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            out.push(Delivery {
                event,
                trace_context,
                acker: Acker::JetStream(Box::new(msg)),
            });
        }
        Ok(out)
    }
}
