//! The wiring every service shares: [`Platform`] opens the ledger (PostgreSQL, or SQLite
//! for `goosectl dev`), the bus (JetStream, or in-process), the outbox relay when asked,
//! the token verifier, and the users read model that authorization decisions use.
//! [`serve`] puts a service's API behind the health routes and `/openapi.json`.
//!
//! Architecture invariant: services talk to each other only through events (the ledger and
//! the bus); nothing here reads a table another service owns.

use anyhow::{Context as _, Result};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use goose_bus::follow::Stale;
use goose_bus::jetstream::JetStreamBus;
use goose_bus::memory::MemoryBus;
use goose_bus::relay::OutboxRelay;
use goose_bus::{Bus, BusConfig};
use goose_domain::errors::{Classified, ErrorKind};
use goose_ledger::aggregate::ExecuteError;
use goose_ledger::postgres::PgBackend;
use goose_ledger::sqlite::SqliteBackend;
use goose_ledger::{Backend, Ledger, LedgerConfig, NoteKey, Vkey};
use goose_runtime::auth::{AuthLayer, TokenVerifier};
use goose_runtime::problem::Problem;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use users::Users;
use view::ViewHandle;

pub mod approvals;
pub mod asyncapi;
pub mod chain_watch;
pub mod checkpoints;
pub mod health;
pub mod nats_auth;
pub mod readiness;
pub mod refusals;
pub mod snapshots;
pub mod users;
pub mod view;

/// The issuer name in access tokens.
pub const TOKEN_ISSUER: &str = "goose-rbac";

/// Where the ledger lives.
#[derive(Debug, Clone)]
pub enum Storage {
    Postgres(String),
    Sqlite(PathBuf),
}

/// Which bus to use.
#[derive(Debug, Clone)]
pub enum BusChoice {
    Nats {
        url: String,
        config: BusConfig,
        /// The service's NATS user, when the server requires one.
        credentials: Option<goose_bus::jetstream::Credentials>,
    },
    /// In-process; only meaningful when every service runs in this process.
    Memory(MemoryBus),
}

/// The outbox relay a process runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relay {
    /// None.
    Off,
    /// Every event (`goosectl dev`, where one process is every service).
    All,
    /// The events of the aggregates this service writes (`goose_domain::events::families`),
    /// so its NATS user needs to publish on its own subjects only.
    Service(String),
}

/// How to wire a service.
#[derive(Debug, Clone)]
pub struct PlatformConfig {
    pub storage: Storage,
    pub bus: BusChoice,
    /// The key this process signs its events with.
    pub service_key: Arc<NoteKey>,
    /// Verifier keys of the token issuer (rbac), as C2SP vkeys.
    pub token_keys: Vec<Vkey>,
    /// Which outbox relay this process runs (it leads, or stands by while another process
    /// leads the same relay).
    pub relay: Relay,
    /// The log's origin (= the log key's name): every commit seal names it.
    pub log_origin: String,
    /// The service this process is (its NATS user): refused requests are reported on
    /// `goose.refusals.<service>`. None: one process runs several services (`goosectl dev`),
    /// and the notices stay in the process.
    pub service_name: Option<String>,
    /// Where this process keeps its read models' snapshots (`--snapshot-dir`): a restart
    /// then follows the ledger from the snapshot instead of replaying it. None: replay.
    pub snapshot_dir: Option<PathBuf>,
}

/// A running platform: the shared handles a service's handlers use.
#[derive(Clone)]
pub struct Platform {
    pub ledger: Ledger,
    pub bus: Arc<dyn Bus>,
    pub verifier: TokenVerifier,
    /// Users and their current roles, from rbac's events (the role directory of every
    /// authorization decision); wait on it for read-your-writes.
    pub users: ViewHandle<Users>,
    /// The subject prefix events are published under (for the AsyncAPI document).
    pub subject_prefix: String,
    /// Conditions that make this service not ready (`/readyz`).
    pub readiness: readiness::Readiness,
    /// The ledger, the bus and the peer services this one calls (`/readyz`, health gauges).
    pub dependencies: health::Dependencies,
    /// Hooks that compute gauges from read models when Prometheus scrapes (dropped at
    /// shutdown).
    scrape_hooks: Arc<parking_lot::Mutex<Vec<goose_metrics::ScrapeHook>>>,
    /// Rate limits of the routes [`Platform::protect`] guards.
    pub rate_limits: goose_runtime::auth::RateLimits,
    /// Where refused requests are reported (the sla service counts bursts of them).
    pub refusals: refusals::Refusals,
    /// Where read-model snapshots are kept (`--snapshot-dir`), if anywhere.
    pub snapshots: Option<snapshots::SnapshotDir>,
    stop: watch::Receiver<bool>,
    stop_tx: Arc<watch::Sender<bool>>,
    tasks: Arc<parking_lot::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform").finish_non_exhaustive()
    }
}

impl Platform {
    pub async fn start(config: PlatformConfig) -> Result<Self> {
        let backend: Arc<dyn Backend> = match &config.storage {
            Storage::Postgres(url) => Arc::new(
                PgBackend::connect(url)
                    .await
                    .context("connecting to the PostgreSQL ledger")?,
            ),
            Storage::Sqlite(path) => Arc::new(
                SqliteBackend::open(path)
                    .await
                    .with_context(|| format!("opening the ledger at {}", path.display()))?,
            ),
        };
        let ledger_config = LedgerConfig {
            origin: config.log_origin.clone(),
            stamp: Some(goose_runtime::telemetry::stamp),
            ..LedgerConfig::default()
        };
        let ledger = Ledger::open(backend, config.service_key.clone(), ledger_config)
            .await
            .context("opening the ledger")?;
        let bus: Arc<dyn Bus> = match &config.bus {
            BusChoice::Nats {
                url,
                config,
                credentials,
            } => Arc::new(
                JetStreamBus::connect_as(url, credentials.as_ref(), config.clone())
                    .await
                    .with_context(|| match credentials {
                        Some(c) => format!("connecting to NATS at {url} as {}", c.user),
                        None => format!("connecting to NATS at {url}"),
                    })?,
            ),
            BusChoice::Memory(m) => Arc::new(m.clone()),
        };
        let verifier = TokenVerifier::new(
            config.token_keys.iter().map(|k| (k.key_id(), k.key)),
            TOKEN_ISSUER,
        );
        let (stop_tx, stop) = watch::channel(false);
        let snapshots = config
            .snapshot_dir
            .as_deref()
            .map(snapshots::SnapshotDir::open)
            .transpose()
            .context("opening the snapshot directory")?;
        let (users, users_keeper) = ViewHandle::<Users>::start_kept(
            &ledger,
            bus.clone(),
            stop.clone(),
            snapshots.as_ref(),
            "platform-users",
        )
        .await
        .context("starting the users read model")?;
        let refusals = match (&config.bus, &config.service_name) {
            (
                BusChoice::Nats {
                    url, credentials, ..
                },
                Some(service),
            ) => refusals::Refusals::nats(
                service,
                url,
                credentials
                    .as_ref()
                    .map(|c| (c.user.clone(), c.password.clone())),
                stopped(stop.clone()),
            ),
            (_, service) => refusals::Refusals::local(service.as_deref().unwrap_or("dev")),
        };
        let platform = Self {
            refusals,
            ledger,
            bus,
            verifier,
            users,
            readiness: readiness::Readiness::default(),
            dependencies: health::Dependencies::default(),
            scrape_hooks: Arc::default(),
            rate_limits: goose_runtime::auth::RateLimits::default(),
            subject_prefix: match &config.bus {
                BusChoice::Nats { config, .. } => config.subject_prefix.clone(),
                BusChoice::Memory(_) => BusConfig::default().subject_prefix,
            },
            snapshots,
            stop,
            stop_tx: Arc::new(stop_tx),
            tasks: Arc::new(parking_lot::Mutex::new(users_keeper.into_iter().collect())),
        };
        let relay = match &config.relay {
            Relay::Off => None,
            Relay::All => Some(OutboxRelay::new(
                platform.ledger.clone(),
                platform.bus.clone(),
                "relay",
            )),
            Relay::Service(name) => {
                let aggregates: Vec<&str> = goose_domain::events::families()
                    .into_iter()
                    .filter(|f| f.writer == name)
                    .map(|f| f.aggregate)
                    .collect();
                if aggregates.is_empty() {
                    anyhow::bail!("no events are written by a service named {name:?}: it has no outbox relay to run");
                }
                Some(OutboxRelay::scoped(
                    platform.ledger.clone(),
                    platform.bus.clone(),
                    name,
                    aggregates,
                ))
            }
        };
        if let Some(relay) = relay {
            platform.spawn(relay.run(platform.stopped()));
        }
        platform.spawn(health_gauges(platform.clone()));
        Ok(platform)
    }

    /// Runs `hook` whenever Prometheus scrapes `/metrics`, until the platform shuts down
    /// (gauges computed from a read model: they never drift from it).
    pub fn on_scrape(&self, hook: impl Fn() + Send + Sync + 'static) {
        self.scrape_hooks
            .lock()
            .push(goose_metrics::on_scrape(hook));
    }

    /// Why this service is not ready now (`None`: ready): a dependency that does not answer,
    /// or a readiness condition.
    pub async fn not_ready(&self) -> Option<String> {
        let checks = self.dependencies.check(&self.ledger, &self.bus).await;
        let mut why: Vec<String> = health::not_ready(&checks).into_iter().collect();
        why.extend(self.readiness.blocked());
        (!why.is_empty()).then(|| why.join("; "))
    }

    /// Resolves when the platform is shutting down.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        stopped(self.stop.clone())
    }

    /// Starts a read model kept in the snapshot directory when there is one
    /// ([`ViewHandle::start_kept`]); `view` names its file, unique within the process.
    pub async fn start_view<V>(&self, view: &'static str) -> Result<ViewHandle<V>>
    where
        V: view::View + Clone + serde::Serialize + serde::de::DeserializeOwned,
    {
        let (handle, keeper) = ViewHandle::<V>::start_kept(
            &self.ledger,
            self.bus.clone(),
            self.stop.clone(),
            self.snapshots.as_ref(),
            view,
        )
        .await
        .with_context(|| format!("starting the {view} read model"))?;
        if let Some(k) = keeper {
            self.tasks.lock().push(k);
        }
        Ok(handle)
    }

    /// Runs a background task that ends at shutdown; [`Platform::shutdown`] waits for it.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        self.tasks.lock().push(handle);
    }

    /// Stops background work and waits for it.
    pub async fn shutdown(&self) {
        let _ = self.stop_tx.send(true);
        self.scrape_hooks.lock().clear();
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock());
        for t in tasks {
            let _ = t.await;
        }
    }

    /// Puts `router` behind the access rules of `specs` (its REST routes and gRPC methods):
    /// a request is checked against the caller's current roles before any handler runs.
    pub fn protect(&self, router: Router, specs: &[goose_runtime::routes::RouteSpec]) -> Router {
        AuthLayer::new(self.verifier.clone(), Arc::new(self.users.clone()), specs)
            .with_limits(self.rate_limits)
            .with_refusals(refusals::sink(&self.refusals))
            .protect(router)
    }

    /// Waits until the users read model has applied `position` (after an append whose effect
    /// the next request must see).
    pub async fn users_caught_up(&self, position: u64) -> Result<(), Stale> {
        self.users.wait_applied(position + 1).await
    }
}

/// Checks the dependencies every [`health::EVERY`] for the health gauges.
async fn health_gauges(platform: Platform) {
    let stop = platform.stopped();
    tokio::pin!(stop);
    loop {
        let checks = platform
            .dependencies
            .check(&platform.ledger, &platform.bus)
            .await;
        let blocked = !platform.readiness.blocked().is_empty();
        health::Dependencies::export(&checks, blocked);
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(health::EVERY) => {}
        }
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Counter: events a read model could not decode (named by aggregate type).
pub use goose_metrics::bus::UNDECODABLE_EVENTS;

/// Events this process's read models could not decode (surfaced in `/readyz`).
static UNDECODABLE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Decodes an event's payload for a read model. One that does not decode is logged with its
/// position and counted in `goose_read_model_undecodable_events_total`, never dropped silently.
pub fn decoded<T: serde::de::DeserializeOwned>(ev: &goose_ledger::RecordedEvent) -> Option<T> {
    match ev.payload_as::<T>() {
        Ok(v) => Some(v),
        Err(e) => {
            UNDECODABLE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            UNDECODABLE_EVENTS
                .counter(&[ev.stream.aggregate_type()])
                .increment(1);
            tracing::error!(position = ev.position, event_type = %ev.event_type, error = %e, "undecodable event skipped by a read model");
            None
        }
    }
}

/// How long a handler waits for its read model to apply its own write, or another process's.
pub const READ_YOUR_WRITES: Duration = Duration::from_secs(5);

/// A read that would be stale: 503 with `Retry-After`, so the client asks again shortly rather
/// than act on an answer that misses a committed write.
pub fn stale_problem(e: &Stale) -> Problem {
    Problem::unavailable(format!("not up to date yet: {e}")).retry_after(1)
}

/// After a write that succeeded, a stale read model is not the client's problem: the write is
/// durable and its answer stands. Logged (and counted by the follower) so it is not silent.
pub fn log_stale_after_write(result: Result<(), Stale>, what: &str) {
    if let Err(e) = result {
        tracing::warn!(error = %e, what, "read model behind after a write; the next read may not see it yet");
    }
}

/// The one mapping from a domain error's kind to problem+json (gRPC: [`grpc_status`]).
pub fn problem(e: &dyn Classified) -> Problem {
    let detail = e.to_string();
    match e.kind() {
        ErrorKind::Invalid => Problem::bad_request(detail),
        ErrorKind::Forbidden => Problem::forbidden(detail),
        ErrorKind::NotFound => Problem::not_found(detail),
        ErrorKind::Conflict => Problem::conflict(detail),
        ErrorKind::Unprocessable => Problem::unprocessable(detail),
    }
}

/// The same mapping to a gRPC status.
pub fn grpc_status(e: &dyn Classified) -> tonic::Status {
    let detail = e.to_string();
    match e.kind() {
        ErrorKind::Invalid => tonic::Status::invalid_argument(detail),
        ErrorKind::Forbidden => tonic::Status::permission_denied(detail),
        ErrorKind::NotFound => tonic::Status::not_found(detail),
        ErrorKind::Conflict => tonic::Status::already_exists(detail),
        ErrorKind::Unprocessable => tonic::Status::failed_precondition(detail),
    }
}

/// The one mapping from ledger errors to problem+json.
pub fn ledger_problem(e: &goose_ledger::Error) -> Problem {
    use goose_ledger::Error as E;
    match e {
        E::InvalidInput(m) => Problem::bad_request(m.clone()),
        E::Conflict { .. } | E::IdempotencyMismatch { .. } => Problem::conflict(e.to_string()),
        E::NotFound(m) => Problem::not_found(format!("{m} not found")),
        E::Unavailable(_) | E::Closed => Problem::unavailable(e.to_string()),
        _ => {
            tracing::error!(error = %e, "ledger failure");
            Problem::internal(e.to_string())
        }
    }
}

/// The same mapping to a gRPC status.
pub fn ledger_status(e: &goose_ledger::Error) -> tonic::Status {
    use goose_ledger::Error as E;
    match e {
        E::InvalidInput(m) => tonic::Status::invalid_argument(m.clone()),
        E::Conflict { .. } | E::IdempotencyMismatch { .. } => tonic::Status::aborted(e.to_string()),
        E::NotFound(m) => tonic::Status::not_found(format!("{m} not found")),
        E::Unavailable(_) | E::Closed => tonic::Status::unavailable(e.to_string()),
        _ => {
            tracing::error!(error = %e, "ledger failure");
            tonic::Status::internal(e.to_string())
        }
    }
}

/// Maps a command's failure: the rule's refusal by its kind, ledger errors as above.
pub fn execute_problem<E: Classified>(e: ExecuteError<E>) -> Problem {
    match e {
        ExecuteError::Rejected(r) => problem(&r),
        ExecuteError::Ledger(l) => ledger_problem(&l),
    }
}

/// A JSON body whose rejection is problem+json (axum's own `Json` answers text/plain).
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = Problem;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Problem> {
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(v)| Self(v))
            .map_err(json_problem)
    }
}

/// An optional JSON body: none when the request has no body; otherwise as [`JsonBody`].
#[derive(Debug, Clone)]
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<S, T> axum::extract::FromRequest<S> for OptionalJsonBody<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = Problem;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Problem> {
        let declared_empty = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .is_some_and(|v| v == "0");
        let has_type = req.headers().contains_key(axum::http::header::CONTENT_TYPE);
        if declared_empty || !has_type {
            let bytes = axum::body::Bytes::from_request(req, state)
                .await
                .map_err(|e| Problem::bad_request(e.body_text()))?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(Self(None));
            }
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid request body",
                "a request body must be sent as Content-Type: application/json",
            ));
        }
        JsonBody::<T>::from_request(req, state)
            .await
            .map(|JsonBody(v)| Self(Some(v)))
    }
}

/// Problem for a JSON body that did not parse (axum's rejection text says what and where).
pub fn json_problem(e: axum::extract::rejection::JsonRejection) -> Problem {
    // Too large and not JSON keep their own status; every other failure is the client's
    // malformed or invalid body: 400.
    let status = match e.status() {
        s @ (StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE) => s,
        _ => StatusCode::BAD_REQUEST,
    };
    Problem::new(status, "invalid request body", e.body_text())
}

/// The routes every process serves besides its API: health, readiness (the ledger, the bus
/// and the peer services answer; no readiness condition holds), metrics and
/// `/openapi.json`; every request counted and timed (`http_requests_total`,
/// `http_request_duration_seconds`).
pub fn service_router(
    platform: &Platform,
    api: Router,
    openapi: utoipa::openapi::OpenApi,
) -> Router {
    let p = platform.clone();
    let doc = Arc::new(openapi);
    let events = Arc::new(asyncapi::document(&platform.subject_prefix));
    goose_runtime::health_routes(Arc::new(move || {
        let p = p.clone();
        Box::pin(async move {
            if let Some(why) = p.not_ready().await {
                return Err(why);
            }
            let skipped = UNDECODABLE.load(std::sync::atomic::Ordering::Relaxed);
            Ok(if skipped == 0 {
                Vec::new()
            } else {
                vec![format!(
                    "degraded: {skipped} event(s) could not be decoded and were skipped by read models (logged with their positions; {})",
                    UNDECODABLE_EVENTS.name
                )]
            })
        })
    }))
    .route(
        "/openapi.json",
        get(move || {
            let d = doc.clone();
            async move { Json((*d).clone()).into_response() }
        }),
    )
    .route(
        "/asyncapi.json",
        get(move || {
            let d = events.clone();
            async move { Json((*d).clone()).into_response() }
        }),
    )
    .merge(api)
    .fallback(|| async { Problem::not_found("no such route") })
    .layer(axum::middleware::from_fn(goose_runtime::track_requests))
}

/// Refuses a request whose declared `Content-Length` is over `max` bytes with a problem+json
/// 413 before reading any of its body (axum's own limit answers only after reading `max`
/// bytes, and a client still sending then may never see the answer).
pub fn refuse_declared_lengths_over(router: Router, max: u64) -> Router {
    router.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| async move {
            let declared = req
                .headers()
                .get(axum::http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            match declared {
                Some(len) if len > max => Problem::new(
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    "too large",
                    format!("a body of {len} bytes is over this route's limit of {max} bytes"),
                )
                .into_response(),
                _ => next.run(req).await,
            }
        },
    ))
}

/// The body limit of JSON and YAML routes (axum's default): 2 MiB.
pub const BODY_LIMIT: u64 = 2 << 20;

/// Serves `router` on `listener` until `shutdown`, then stops the platform's background work.
pub async fn serve(
    platform: &Platform,
    router: Router,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    // The peer's address travels with each request (rate limits per address).
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("HTTP server failed")?;
    platform.shutdown().await;
    Ok(())
}

/// Command-line and environment settings every service binary takes.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceArgs {
    /// PostgreSQL URL of the ledger.
    #[arg(long, env = "GOOSE_DATABASE_URL")]
    pub database_url: String,
    /// NATS server with JetStream.
    #[arg(long, env = "GOOSE_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// JetStream stream name.
    #[arg(long, env = "GOOSE_NATS_STREAM", default_value = "GOOSE_EVENTS")]
    pub nats_stream: String,
    /// Subject prefix of published events.
    #[arg(long, env = "GOOSE_NATS_SUBJECT_PREFIX", default_value = "goose.evt")]
    pub nats_subject_prefix: String,
    /// NATS user of this service (see `goosectl nats-config`); none: connect without one.
    #[arg(long, env = "GOOSE_NATS_USER", requires = "nats_password_file")]
    pub nats_user: Option<String>,
    /// File holding the NATS user's password.
    #[arg(long, env = "GOOSE_NATS_PASSWORD_FILE", requires = "nats_user")]
    pub nats_password_file: Option<PathBuf>,
    /// Address to serve HTTP on.
    #[arg(long, env = "GOOSE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// This service's event signing key (created, mode 0600, if missing).
    #[arg(long, env = "GOOSE_SERVICE_KEY_FILE")]
    pub service_key_file: PathBuf,
    /// Verifier key(s) of rbac's token signing key: a C2SP vkey, or @FILE with one per line.
    #[arg(long = "token-vkey", env = "GOOSE_TOKEN_VKEY", value_delimiter = ',')]
    pub token_vkeys: Vec<String>,
    /// Run this service's outbox relay (publishing its committed events to NATS). Every
    /// replica may: one leads (a PostgreSQL advisory lock), the others stand by.
    /// `--relay=false` turns it off.
    #[arg(long, env = "GOOSE_RUN_RELAY", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub relay: bool,
    /// The log's origin: the name of the key that signs its checkpoints. Every service of a
    /// deployment seals its commits for it, so it must be the same everywhere.
    #[arg(long, env = "GOOSE_LOG_ORIGIN", default_value = goose_ledger::DEFAULT_ORIGIN)]
    pub log_origin: String,
    /// Public writes (the token exchange) allowed per client address and minute (0: no limit).
    #[arg(long, env = "GOOSE_RATE_LIMIT_PUBLIC_PER_MINUTE", default_value_t = 60)]
    pub rate_limit_public_per_minute: u32,
    /// Writes allowed per user and second, bursts of twice that (0: no limit).
    #[arg(
        long,
        env = "GOOSE_RATE_LIMIT_WRITES_PER_SECOND",
        default_value_t = 200
    )]
    pub rate_limit_writes_per_second: u32,
    /// Keep read-model snapshots here (one directory per replica, private to it): a restart
    /// follows the ledger from them instead of replaying it. Unset: replay at every start.
    #[arg(long, env = "GOOSE_SNAPSHOT_DIR")]
    pub snapshot_dir: Option<PathBuf>,
}

impl ServiceArgs {
    /// The platform configuration, loading (or creating) the key named `key_name`.
    pub fn platform_config(&self, key_name: &str) -> Result<PlatformConfig> {
        let service_key = Arc::new(
            NoteKey::load_or_generate(&self.service_key_file, key_name)
                .with_context(|| format!("loading {}", self.service_key_file.display()))?,
        );
        let credentials = match (&self.nats_user, &self.nats_password_file) {
            (Some(user), Some(file)) => Some(goose_bus::jetstream::Credentials {
                user: user.clone(),
                password: std::fs::read_to_string(file)
                    .with_context(|| format!("reading the NATS password from {}", file.display()))?
                    .trim_end_matches(['\r', '\n'])
                    .to_owned(),
            }),
            _ => None,
        };
        Ok(PlatformConfig {
            storage: Storage::Postgres(self.database_url.clone()),
            bus: BusChoice::Nats {
                credentials,
                url: self.nats_url.clone(),
                config: BusConfig {
                    stream: self.nats_stream.clone(),
                    subject_prefix: self.nats_subject_prefix.clone(),
                    ..BusConfig::default()
                },
            },
            service_key,
            token_keys: parse_vkeys(&self.token_vkeys)?,
            relay: if self.relay {
                // The binary goose-rbac is the service rbac.
                Relay::Service(
                    key_name
                        .strip_prefix("goose-")
                        .unwrap_or(key_name)
                        .to_owned(),
                )
            } else {
                Relay::Off
            },
            log_origin: self.log_origin.clone(),
            service_name: Some(
                key_name
                    .strip_prefix("goose-")
                    .unwrap_or(key_name)
                    .to_owned(),
            ),
            snapshot_dir: self.snapshot_dir.clone(),
        })
    }
}

/// Parses vkeys given inline or as `@FILE` (one per line, `#` comments).
pub fn parse_vkeys(args: &[String]) -> Result<Vec<Vkey>> {
    let mut out = Vec::new();
    for a in args {
        let text = match a.strip_prefix('@') {
            Some(f) => std::fs::read_to_string(f).with_context(|| format!("reading {f}"))?,
            None => a.clone(),
        };
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            out.push(Vkey::parse(line).with_context(|| format!("token verifier key {line:?}"))?);
        }
    }
    Ok(out)
}

/// Runs a service binary: platform, API, serve until SIGINT/SIGTERM, drain.
pub async fn run_service<F, Fut>(name: &str, args: &ServiceArgs, build: F) -> Result<()>
where
    F: FnOnce(Platform) -> Fut,
    Fut: Future<Output = Result<(Router, utoipa::openapi::OpenApi)>>,
{
    let _ = goose_runtime::prometheus();
    let config = args.platform_config(name)?;
    let mut platform = Platform::start(config).await?;
    platform.rate_limits = goose_runtime::auth::RateLimits {
        public_per_minute: args.rate_limit_public_per_minute,
        writes_per_second: args.rate_limit_writes_per_second,
    };
    let (api, doc) = build(platform.clone()).await?;
    let router = service_router(&platform, api, doc);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(service = name, addr = %listener.local_addr()?, "serving");
    serve(
        &platform,
        router,
        listener,
        goose_runtime::shutdown_signal(),
    )
    .await
}
