//! The promotion engine: starts promotions (locks, approval request, the request event) and
//! drives each one — gather facts, run the pure `Promotion::step`, append what it decided,
//! repeat when something changes — until it ends; then releases its locks and, for a package,
//! signs the manifest.
//!
//! Every replica runs one. A promotion is driven by the replica holding its lease; a replica
//! that dies loses its leases with its database session, and another picks its promotions up
//! from their events within [`SCAN_EVERY`]. Transient failures are retried with backoff.

use crate::lease::Leases;
use crate::manifest;
use crate::metrics as m;
use crate::views::{fact_of, Views};
use goose_domain::approval::ImpactLevel;
use goose_domain::compliance::ComplianceState;
use goose_domain::gates::{FactRef, SignatureFact, TargetFacts};
use goose_domain::lock::{Held, Holder, LockEvent, ServiceLock};
use goose_domain::package::{Package, PackageEvent, PackageRefusal};
use goose_domain::policy::Policy;
use goose_domain::promotion::{Promotion, PromotionEvent, Requested, TargetSpec};
use goose_domain::streams;
use goose_ledger::aggregate::{self, ExecuteError};
use goose_ledger::{Metadata, NewEvent, RecordedEvent, StreamId};
use goose_platform::chain_watch::ChainWatch;
use goose_platform::Platform;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

goose_ledger::ledger_aggregate!(pub LockAgg(ServiceLock), streams::PROMOTION_LOCK, LockEvent);
goose_ledger::ledger_aggregate!(pub PromotionAgg(Promotion), streams::PROMOTION, PromotionEvent);
goose_ledger::ledger_aggregate!(pub PackageAgg(Package), streams::PACKAGE, PackageEvent);

/// How often a replica looks for promotions nobody drives.
pub const SCAN_EVERY: Duration = Duration::from_secs(2);
/// A driver with nothing to do re-checks this often (timeouts need time to pass).
const IDLE_RECHECK: Duration = Duration::from_secs(1);

/// Why a promotion could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{service}: {held}")]
    Locked { service: String, held: Held },
    #[error(transparent)]
    Ledger(#[from] goose_ledger::Error),
}

/// The engine of one replica.
pub struct Engine {
    pub platform: Platform,
    pub views: Views,
    pub chain: ChainWatch,
    pub policy: Arc<Policy>,
    pub policy_digest: String,
    leases: Arc<dyn Leases>,
    driving: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

/// A promotion as its driver holds it: the folded state, the stream version, and the
/// recorded events that made its targets compliant (dependants cite them).
struct Driven {
    id: String,
    stream: StreamId,
    promotion: Promotion,
    version: u64,
    compliant_events: HashMap<String, FactRef>,
}

enum Progress {
    Moved,
    Idle,
    Finished,
}

impl Engine {
    pub fn new(
        platform: Platform,
        views: Views,
        chain: ChainWatch,
        policy: Policy,
        policy_digest: String,
        leases: Arc<dyn Leases>,
    ) -> Arc<Self> {
        Arc::new(Self {
            platform,
            views,
            chain,
            policy: Arc::new(policy),
            policy_digest,
            leases,
            driving: Mutex::default(),
        })
    }

    fn actor(&self) -> String {
        self.platform.ledger.key().name().to_owned()
    }

    /// What the lock holder is doing, from the read models.
    fn holder_status(&self, promotion_id: &str, service: &str) -> Holder {
        match self.views.read().promotions.get(promotion_id) {
            None => Holder::Unknown,
            Some(p) if p.is_finished() => Holder::Ended,
            Some(p) => match p.target(service) {
                Some(t) if t.status.is_terminal() => Holder::Ended,
                _ => Holder::InFlight,
            },
        }
    }

    /// Takes the lock of every target's service for `promotion_id`, concurrently; on any
    /// refusal releases those taken and names the holder.
    pub async fn acquire_locks(
        &self,
        promotion_id: &str,
        services: &[String],
        actor: &str,
    ) -> Result<(), StartError> {
        let meta = Metadata::now(actor.to_owned());
        let now = OffsetDateTime::now_utc();
        let results = futures::future::join_all(services.iter().map(|s| {
            let meta = meta.clone();
            async move {
                let r = aggregate::execute::<LockAgg, Held>(&self.platform.ledger, s, &meta, |l| {
                    l.0.acquire(promotion_id, now, |h| self.holder_status(h, s))
                })
                .await;
                (s.clone(), r)
            }
        }))
        .await;
        let mut failure = None;
        let mut taken = Vec::new();
        for (s, r) in results {
            match r {
                Ok(_) => taken.push(s),
                Err(ExecuteError::Rejected(held)) => {
                    failure.get_or_insert(StartError::Locked { service: s, held });
                }
                Err(ExecuteError::Ledger(e)) => {
                    failure.get_or_insert(StartError::Ledger(e));
                }
            }
        }
        match failure {
            None => Ok(()),
            Some(f) => {
                self.release_locks(promotion_id, &taken, "the promotion could not start")
                    .await;
                Err(f)
            }
        }
    }

    /// Releases `promotion_id`'s locks of `services` (those it does not hold are left).
    pub async fn release_locks(&self, promotion_id: &str, services: &[String], reason: &str) {
        let meta = Metadata::now(self.actor());
        let results = futures::future::join_all(services.iter().map(|s| {
            aggregate::execute::<LockAgg, std::convert::Infallible>(
                &self.platform.ledger,
                s,
                &meta,
                |l| Ok(l.0.release(promotion_id, reason)),
            )
        }))
        .await;
        for (s, r) in services.iter().zip(results) {
            if let Err(e) = r {
                // The next acquire breaks a lock whose holder has ended.
                tracing::warn!(service = %s, promotion = promotion_id, error = %e, "could not release a promotion lock");
            }
        }
    }

    /// Records a new promotion (locks already held) and starts driving it.
    pub async fn record_request(
        self: &Arc<Self>,
        promotion_id: &str,
        request: Requested,
    ) -> Result<Promotion, goose_ledger::Error> {
        let meta = Metadata::now(request.requester.clone());
        let event = PromotionEvent::PromotionRequested(Box::new(request));
        // The lease is taken before the request is recorded, so the replica that records a
        // promotion is the one that drives it (no other replica's scan gets there first).
        let claimed = self.claim(promotion_id).await;
        let done = aggregate::execute::<PromotionAgg, String>(
            &self.platform.ledger,
            promotion_id,
            &meta,
            |p| {
                if p.0.request.is_some() {
                    Err("promotion id already used".to_owned())
                } else {
                    Ok(vec![event.clone()])
                }
            },
        )
        .await
        .map_err(|e| match e {
            ExecuteError::Rejected(m) => goose_ledger::Error::InvalidInput(m),
            ExecuteError::Ledger(l) => l,
        });
        let done = match done {
            Ok(d) => d,
            Err(e) => {
                if claimed {
                    self.unclaim(promotion_id).await;
                }
                return Err(e);
            }
        };
        m::PROMOTIONS_REQUESTED.counter(&[]).increment(1);
        if claimed {
            self.spawn_driver(promotion_id.to_owned());
        }
        Ok(done.state.0)
    }

    /// Starts a driver task for `id` unless one runs here or another replica holds its lease.
    pub async fn ensure_driving(self: &Arc<Self>, id: String) {
        if self.claim(&id).await {
            self.spawn_driver(id);
        }
    }

    /// Takes the lease of `id` for a driver here, unless one runs here or elsewhere.
    async fn claim(&self, id: &str) -> bool {
        if self.driving.lock().contains(id) {
            return false;
        }
        if !self.leases.try_acquire(id).await {
            return false;
        }
        let fresh = self.driving.lock().insert(id.to_owned());
        if !fresh {
            self.leases.release(id).await;
        }
        fresh
    }

    async fn unclaim(&self, id: &str) {
        self.leases.release(id).await;
        self.driving.lock().remove(id);
    }

    /// Runs the driver of a claimed promotion until it ends (or shutdown), then gives the
    /// lease back.
    fn spawn_driver(self: &Arc<Self>, id: String) {
        let me = self.clone();
        let stop = self.platform.stopped();
        // Not `Platform::spawn`, which keeps every handle until shutdown: drivers come and go.
        tokio::spawn(async move {
            let span = tracing::info_span!("promotion", promotion = %id);
            me.continue_request_trace(&span, &id).await;
            tokio::select! {
                () = stop => {},
                () = tracing::Instrument::instrument(me.clone().drive(id.clone()), span) => {},
            }
            me.unclaim(&id).await;
        });
    }

    /// Makes the driver's span continue the trace of the request that recorded the promotion
    /// (its first event's `traceparent`), in whichever replica drives it, after a restart too.
    async fn continue_request_trace(&self, span: &tracing::Span, id: &str) {
        if !goose_runtime::telemetry::exporting() {
            return;
        }
        let Ok(stream) = StreamId::new(streams::PROMOTION, id.to_owned()) else {
            return;
        };
        match self.platform.ledger.read_stream(&stream, 1, 1).await {
            Ok(first) => {
                if let Some(ev) = first.first() {
                    goose_runtime::telemetry::set_parent(span, |k| {
                        ev.metadata.attributes.get(k).cloned()
                    });
                }
            }
            Err(e) => {
                tracing::warn!(promotion = %id, error = %e, "could not read the promotion's request to continue its trace");
            }
        }
    }

    /// Finds promotions that are recorded, unfinished and driven by nobody, and drives them
    /// (after a restart: resume from the events).
    pub async fn scan(self: &Arc<Self>) {
        let open: Vec<String> = {
            let data = self.views.read();
            data.promotions
                .iter()
                .filter(|(id, p)| {
                    let Some(r) = &p.request else { return false };
                    // Ended, but its package manifest was never signed (a crash in between).
                    let unsigned = r.package.as_ref().is_some_and(|pkg| {
                        data.packages
                            .get(pkg)
                            .is_some_and(|k| !k.manifests.iter().any(|(m, _)| m == *id))
                    });
                    !p.is_finished() || unsigned
                })
                .map(|(id, _)| id.clone())
                .collect()
        };
        for id in open {
            self.ensure_driving(id).await;
        }
    }

    /// Scans now and every [`SCAN_EVERY`] until shutdown.
    pub fn run_scanner(self: &Arc<Self>) {
        let me = self.clone();
        let stop = self.platform.stopped();
        self.platform.spawn(async move {
            tokio::pin!(stop);
            loop {
                me.scan().await;
                tokio::select! {
                    () = &mut stop => return,
                    () = tokio::time::sleep(SCAN_EVERY) => {}
                }
            }
        });
    }

    async fn drive(self: Arc<Self>, id: String) {
        let Ok(stream) = StreamId::new(streams::PROMOTION, id.clone()) else {
            return;
        };
        let mut d = Driven {
            id,
            stream,
            promotion: Promotion::default(),
            version: 0,
            compliant_events: HashMap::new(),
        };
        let mut changed = self.views.subscribe();
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.step_once(&mut d).await {
                Ok(Progress::Moved) => backoff = Duration::from_millis(50),
                Ok(Progress::Finished) => return,
                Ok(Progress::Idle) => {
                    changed.borrow_and_update();
                    let _ = tokio::time::timeout(IDLE_RECHECK, changed.changed()).await;
                }
                Err(e) => {
                    m::DRIVER_RETRIES.counter(&[]).increment(1);
                    tracing::warn!(promotion = %d.id, error = %e, retry_in_ms = backoff.as_millis() as u64, "promotion step failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Reads the promotion's events recorded since the driver last looked.
    async fn refresh(&self, d: &mut Driven) -> Result<(), goose_ledger::Error> {
        loop {
            let batch = self
                .platform
                .ledger
                .read_stream(&d.stream, d.version + 1, 1000)
                .await?;
            if batch.is_empty() {
                return Ok(());
            }
            for ev in &batch {
                let e: PromotionEvent = ev.payload_as()?;
                if let PromotionEvent::TargetTransitioned {
                    service,
                    version,
                    to: ComplianceState::Compliant,
                    ..
                } = &e
                {
                    self.views.remember(ev);
                    d.compliant_events.insert(
                        service.clone(),
                        fact_of(
                            "promotion",
                            ev,
                            format!("{service}@{version} became compliant"),
                        ),
                    );
                }
                d.promotion.apply(&e);
                d.version = ev.version;
            }
        }
    }

    async fn step_once(self: &Arc<Self>, d: &mut Driven) -> Result<Progress, goose_ledger::Error> {
        self.refresh(d).await?;
        if d.promotion.request.is_none() {
            // Not recorded (yet, or at all): nothing to drive.
            return Ok(Progress::Finished);
        }
        if d.promotion.is_finished() {
            self.finish(d).await?;
            return Ok(Progress::Finished);
        }
        let facts = self.facts(d).await;
        let states = {
            let data = self.views.read();
            d.promotion
                .targets
                .iter()
                .map(|t| {
                    let s = data
                        .compliance
                        .get(&(t.spec.service.clone(), t.spec.version.clone()))
                        .map_or(ComplianceState::Sandbox, |(s, _)| *s);
                    (t.spec.service.clone(), s)
                })
                .collect::<HashMap<_, _>>()
        };
        let state_before = |spec: &TargetSpec| {
            states
                .get(&spec.service)
                .copied()
                .unwrap_or(ComplianceState::Sandbox)
        };
        let events = d
            .promotion
            .step(&facts, &state_before, OffsetDateTime::now_utc());
        if events.is_empty() {
            return Ok(Progress::Idle);
        }
        let ended: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                PromotionEvent::TargetPromoted { service, .. }
                | PromotionEvent::TargetFailed { service, .. }
                | PromotionEvent::TargetBlocked { service, .. } => Some(service.clone()),
                _ => None,
            })
            .collect();
        for e in &events {
            match e {
                PromotionEvent::GateEvaluated { checks, .. } => {
                    for c in checks {
                        m::GATE_EVALUATIONS
                            .counter(&[
                                c.check.as_str(),
                                &format!("{:?}", c.outcome).to_lowercase(),
                            ])
                            .increment(1);
                    }
                }
                PromotionEvent::TargetPromoted { .. } => {
                    m::TARGETS_ENDED.counter(&["promoted"]).increment(1);
                }
                PromotionEvent::TargetFailed { .. } => {
                    m::TARGETS_ENDED.counter(&["failed"]).increment(1);
                }
                PromotionEvent::TargetBlocked { .. } => {
                    m::TARGETS_ENDED.counter(&["blocked"]).increment(1);
                }
                _ => {}
            }
        }
        let meta = Metadata::now(self.actor());
        let new: Vec<NewEvent> = events
            .iter()
            .map(|e| NewEvent::json(e.event_type(), e, meta.clone()))
            .collect::<Result<_, _>>()?;
        match self.platform.ledger.append(&d.stream, d.version, new).await {
            Ok(_) => {}
            // Another driver recorded first: read what it decided and decide again.
            Err(goose_ledger::Error::Conflict { .. }) => return Ok(Progress::Moved),
            Err(e) => return Err(e),
        }
        if !ended.is_empty() {
            // In the background: the next step need not wait for it, and `finish` releases
            // whatever is still held (after a crash too).
            let me = self.clone();
            let id = d.id.clone();
            tokio::spawn(async move { me.release_locks(&id, &ended, "its target ended").await });
        }
        Ok(Progress::Moved)
    }

    /// The end of a promotion: every lock released, the package manifest signed.
    async fn finish(&self, d: &Driven) -> Result<(), goose_ledger::Error> {
        let services: Vec<String> = d
            .promotion
            .targets
            .iter()
            .map(|t| t.spec.service.clone())
            .collect();
        self.release_locks(&d.id, &services, "the promotion ended")
            .await;
        let Some(request) = &d.promotion.request else {
            return Ok(());
        };
        let events = self
            .platform
            .ledger
            .read_stream(&d.stream, 1, u32::MAX)
            .await?;
        if let Some(package) = &request.package {
            self.sign_manifest(package, &d.id, &events).await?;
        }
        if let (Some(outcome), Some(r)) = (d.promotion.outcome, &d.promotion.request) {
            let secs = (OffsetDateTime::now_utc() - r.requested_at).as_seconds_f64();
            m::PROMOTION_SECONDS
                .histogram(&[&format!("{outcome:?}").to_lowercase()])
                .record(secs);
            let efficiency =
                goose_domain::parallelism::efficiency(&spans(&d.promotion.targets, &events));
            if let Some(e) = efficiency {
                m::PARALLEL_EFFICIENCY.histogram(&[]).record(e);
            }
            tracing::info!(promotion = %d.id, ?outcome, seconds = secs, ?efficiency, "promotion ended");
        }
        Ok(())
    }

    async fn sign_manifest(
        &self,
        package_id: &str,
        promotion_id: &str,
        events: &[RecordedEvent],
    ) -> Result<(), goose_ledger::Error> {
        let loaded = aggregate::load::<PackageAgg>(&self.platform.ledger, package_id).await?;
        if loaded
            .state
            .0
            .manifests
            .iter()
            .any(|(p, _)| p == promotion_id)
        {
            return Ok(());
        }
        let built = {
            let data = self.views.read();
            manifest::build(package_id, &loaded.state.0, promotion_id, events, &data)
        };
        let event = manifest::sign(promotion_id, &built, self.platform.ledger.key())?;
        let meta = Metadata::now(self.actor());
        aggregate::execute::<PackageAgg, PackageRefusal>(
            &self.platform.ledger,
            package_id,
            &meta,
            |p| {
                if p.0.manifests.iter().any(|(p, _)| p == promotion_id) {
                    Ok(vec![])
                } else {
                    Ok(vec![event.clone()])
                }
            },
        )
        .await
        .map_err(|e| match e {
            ExecuteError::Rejected(r) => goose_ledger::Error::InvalidInput(r.to_string()),
            ExecuteError::Ledger(l) => l,
        })?;
        tracing::info!(
            package = package_id,
            promotion = promotion_id,
            "package manifest signed"
        );
        Ok(())
    }

    /// Gathers what the gates read, for every target the step may decide.
    async fn facts(&self, d: &Driven) -> BTreeMap<String, TargetFacts> {
        let mut out = self.facts_from_views(d);
        // Authorship of every cited event (its commit seal), checked outside the read lock.
        let reader: &goose_ledger::LedgerReader = &self.platform.ledger;
        let origin = self.platform.ledger.origin();
        let sealed_upto = self.chain.fact().verified;
        for f in out.values_mut() {
            let mut cited: Vec<FactRef> = f.evidence.iter().map(|e| e.fact.clone()).collect();
            cited.extend(
                f.dependencies
                    .iter()
                    .filter_map(|d| d.compliant.as_ref().map(|(_, f)| f.clone())),
            );
            cited.extend(f.approval.as_ref().map(|a| a.fact.clone()));
            let mut signatures = Vec::with_capacity(cited.len());
            for fact in cited {
                signatures.push(SignatureFact {
                    verdict: self
                        .views
                        .authorship_verdict(reader, origin, sealed_upto, &fact.id)
                        .await,
                    fact,
                });
            }
            f.signatures = signatures;
        }
        out
    }

    fn facts_from_views(&self, d: &Driven) -> BTreeMap<String, TargetFacts> {
        crate::facts::gather(
            &self.views.read(),
            &crate::facts::Subject {
                id: &d.id,
                promotion: &d.promotion,
                compliant_events: &d.compliant_events,
            },
            &self.chain.fact(),
            self.views.keyring_configured(),
            self.policy
                .rules
                .performance_baseline_met
                .as_ref()
                .and_then(|r| r.sla.as_ref())
                .map(|_| time::OffsetDateTime::now_utc().unix_timestamp()),
        )
    }

    /// The impact of a new promotion's approval request.
    pub fn impact(&self, asked: Option<ImpactLevel>) -> ImpactLevel {
        asked.unwrap_or(self.policy.approval_impact)
    }
}

/// The runs of a promotion's targets that started and ended, in promotion order, from its
/// events (start as recorded in `TargetStarted`, end as the ending event was recorded).
fn spans(
    targets: &[goose_domain::promotion::TargetState],
    events: &[RecordedEvent],
) -> Vec<goose_domain::parallelism::Span> {
    let mut ended: HashMap<String, OffsetDateTime> = HashMap::new();
    for ev in events {
        if let Ok(
            PromotionEvent::TargetPromoted { service, .. }
            | PromotionEvent::TargetFailed { service, .. }
            | PromotionEvent::TargetBlocked { service, .. },
        ) = ev.payload_as::<PromotionEvent>()
        {
            ended.insert(service, ev.metadata.recorded_at);
        }
    }
    targets
        .iter()
        .filter_map(|t| {
            Some(goose_domain::parallelism::Span {
                service: t.spec.service.clone(),
                dependencies: t.spec.dependencies.clone(),
                started: t.started_at?,
                ended: *ended.get(&t.spec.service)?,
            })
        })
        .collect()
}
