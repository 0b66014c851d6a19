//! The orchestrator's read models, kept in memory and rebuilt from the ledger at start
//! (ADR 0003): the catalog (registry's events), evidence summaries (evidence's), approval
//! requests (rbac's), and its own promotions, packages, locks and the compliance state of
//! every service version. Each fact keeps the position and digest of the event it came from,
//! so the gates can cite it.

use goose_domain::approval::{ApprovalEvent, ApprovalRequest};
use goose_domain::catalog::{Catalog, CatalogEvent};
use goose_domain::compliance::ComplianceState;
use goose_domain::demotion::ComplianceEvent;
use goose_domain::evidence::{EvidenceEvent, EvidenceRecord};
use goose_domain::gates::FactRef;
use goose_domain::graph::DependencyGraph;
use goose_domain::lock::{LockEvent, ServiceLock};
use goose_domain::org_config::{OrgConfig, OrgConfigEvent};
use goose_domain::package::{Package, PackageEvent};
use goose_domain::promotion::{Promotion, PromotionEvent};
use goose_domain::sla::incident::{IncidentEvent, IncidentReport};
use goose_domain::sla::measure::MinuteSummary;
use goose_domain::sla::openslo::Slo;
use goose_domain::sla::{MeasurementEvent, SloEvent};
use goose_domain::streams;
use goose_ledger::{Keyring, LedgerReader, RecordedEvent};
use goose_platform::view::{View, ViewHandle};
use goose_platform::{decoded, Platform};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};
use tokio::sync::watch;

/// The aggregate types the orchestrator follows.
pub const FOLLOWED: &[&str] = &[
    streams::CATALOG,
    streams::EVIDENCE,
    streams::APPROVAL,
    streams::PROMOTION,
    streams::PACKAGE,
    streams::PROMOTION_LOCK,
    streams::COMPLIANCE,
    streams::ORG_CONFIG,
    streams::SLO,
    streams::MEASUREMENT,
    streams::INCIDENT,
];

/// An incident as the orchestrator needs it: whose, how bad, whether open, what opened it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct IncidentEntry {
    pub report: IncidentReport,
    pub open: bool,
    /// The event that opened it (its note names the incident id).
    pub fact: FactRef,
}

/// A fact naming `ev`.
pub fn fact_of(kind: &str, ev: &RecordedEvent, note: impl Into<String>) -> FactRef {
    FactRef {
        kind: kind.to_owned(),
        id: ev.event_id.to_string(),
        position: Some(ev.position),
        digest: Some(hex::encode(ev.digest)),
        note: note.into(),
    }
}

/// What is needed to check an event's authorship later: where it is in the log, and the
/// writer it names.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Signed {
    position: u64,
    key_id: String,
}

impl Signed {
    fn of(ev: &RecordedEvent) -> Self {
        Self {
            position: ev.position,
            key_id: ev.key_id.clone(),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EvidenceEntry {
    pub record: EvidenceRecord,
    pub fact: FactRef,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ApprovalEntry {
    pub request: ApprovalRequest,
    /// The newest event of the request.
    pub fact: FactRef,
}

/// The read models (kept in snapshots: `goosectl`'s `--snapshot-dir`; ADR 0003).
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Data {
    pub catalog: Catalog,
    /// The catalog's dependency graph, built on first use after a catalog change.
    #[serde(skip)]
    graph: OnceLock<Arc<DependencyGraph>>,
    #[serde(with = "goose_platform::snapshots::pairs")]
    pub evidence: HashMap<(String, String), Vec<EvidenceEntry>>,
    pub approvals: HashMap<String, ApprovalEntry>,
    /// `(service, version)` → its state and the event that set it.
    #[serde(with = "goose_platform::snapshots::pairs")]
    pub compliance: HashMap<(String, String), (ComplianceState, FactRef)>,
    /// The newest version of each service that became compliant, with that event.
    pub compliant: HashMap<String, (String, FactRef)>,
    pub promotions: BTreeMap<String, Promotion>,
    #[serde(with = "packages_whole")]
    pub packages: BTreeMap<String, Package>,
    /// Package id → its promotions, oldest first.
    pub package_promotions: HashMap<String, Vec<String>>,
    pub locks: HashMap<String, ServiceLock>,
    /// The org-config in force (defaults until one is set); its packaging rules are gate
    /// inputs for packages.
    pub org: OrgConfig,
    /// Why the newest org-config event could not be applied, if it could not (the last valid
    /// one stays; the service is not ready).
    pub org_unreadable: Option<String>,
    /// Each service's SLOs (current version) with the event that applied it.
    pub slos: HashMap<String, BTreeMap<String, (Slo, FactRef)>>,
    /// `(service, version)` → the minute summaries recorded for that version (summaries
    /// without a version are not kept here: `performance_baseline_met` reads versions).
    #[serde(with = "goose_platform::snapshots::pairs")]
    pub measurements: HashMap<(String, String), Vec<(MinuteSummary, FactRef)>>,
    /// Incidents by id.
    pub incidents: BTreeMap<String, IncidentEntry>,
    signed: HashMap<String, Signed>,
    /// Memo of authorship checks by event id (not derived from events: amended; not kept in
    /// snapshots, checked again after a restart).
    #[serde(skip)]
    verdicts: HashMap<String, Result<String, String>>,
}

/// `packages` in a snapshot: a package's own serde leaves its signed envelopes out (the API
/// serves them as the bundle), a snapshot keeps them.
mod packages_whole {
    use goose_domain::package::{Envelope, Package};
    use serde::{Deserialize as _, Deserializer, Serialize as _, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(
        m: &BTreeMap<String, Package>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        m.iter()
            .map(|(id, p)| (id, p, &p.envelopes))
            .collect::<Vec<_>>()
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Package>, D::Error> {
        Ok(Vec::<(String, Package, Vec<Envelope>)>::deserialize(d)?
            .into_iter()
            .map(|(id, mut p, envelopes)| {
                p.envelopes = envelopes;
                (id, p)
            })
            .collect())
    }
}

impl Data {
    /// The catalog's dependency graph.
    pub fn graph(&self) -> Arc<DependencyGraph> {
        self.graph
            .get_or_init(|| Arc::new(self.catalog.graph()))
            .clone()
    }
}

impl View for Data {
    const FOLLOWS: &'static [&'static str] = FOLLOWED;

    fn apply(&mut self, ev: &RecordedEvent) {
        match ev.stream.aggregate_type() {
            streams::CATALOG => {
                if let Some(e) = decoded::<CatalogEvent>(ev) {
                    let def = e.definition();
                    if let Some(before) = self.catalog.get(&def.name) {
                        let (from, to) = (
                            before.definition.spec.compliance_mode,
                            def.spec.compliance_mode,
                        );
                        if from != to {
                            goose_metrics::promotion::MODE_TRANSITIONS
                                .counter(&[from.as_str(), to.as_str()])
                                .increment(1);
                        }
                    }
                    self.catalog.apply(&e);
                    self.graph = OnceLock::new();
                }
            }
            streams::EVIDENCE => {
                // A model's evidence is the registry's to read, never a service's.
                if let Some(EvidenceEvent::EvidenceAccepted(r)) =
                    decoded(ev).filter(|e| !is_model_evidence(e))
                {
                    let fact = fact_of(
                        "evidence",
                        ev,
                        format!("{} {} {}", r.kind, r.filename, r.digest),
                    );
                    self.signed.insert(fact.id.clone(), Signed::of(ev));
                    self.evidence
                        .entry((r.service.clone(), r.version.clone()))
                        .or_default()
                        .push(EvidenceEntry { record: r, fact });
                }
            }
            streams::APPROVAL => {
                if let Some(e) = decoded::<ApprovalEvent>(ev) {
                    let fact = fact_of("approval", ev, e.event_type());
                    self.signed.insert(fact.id.clone(), Signed::of(ev));
                    let entry = self
                        .approvals
                        .entry(ev.stream.aggregate_id().to_owned())
                        .or_insert_with(|| ApprovalEntry {
                            request: ApprovalRequest::default(),
                            fact: fact.clone(),
                        });
                    entry.request.apply(&e);
                    entry.fact = fact;
                }
            }
            streams::PROMOTION => {
                if let Some(e) = decoded::<PromotionEvent>(ev) {
                    apply_promotion(self, ev, &e);
                }
            }
            streams::PACKAGE => {
                if let Some(e) = decoded::<PackageEvent>(ev) {
                    self.packages
                        .entry(ev.stream.aggregate_id().to_owned())
                        .or_default()
                        .apply(&e);
                }
            }
            streams::SLO => {
                if let Some(SloEvent::SloApplied { slo, .. }) = decoded::<SloEvent>(ev) {
                    let fact = fact_of("slo", ev, format!("SLO {} of {}", slo.name, slo.service));
                    self.signed.insert(fact.id.clone(), Signed::of(ev));
                    // An SLO moved to another service leaves the first.
                    for slos in self.slos.values_mut() {
                        slos.remove(&slo.name);
                    }
                    self.slos
                        .entry(slo.service.clone())
                        .or_default()
                        .insert(slo.name.clone(), (slo, fact));
                }
            }
            streams::MEASUREMENT => {
                if let Some(MeasurementEvent::MinuteSummarized(m)) = decoded::<MeasurementEvent>(ev)
                {
                    if let Some(version) = m.version.clone() {
                        let fact = fact_of(
                            "measurement",
                            ev,
                            format!(
                                "{}@{version} minute {}: {} requests",
                                m.service, m.minute, m.count
                            ),
                        );
                        self.signed.insert(fact.id.clone(), Signed::of(ev));
                        self.measurements
                            .entry((m.service.clone(), version))
                            .or_default()
                            .push((m, fact));
                    }
                }
            }
            streams::INCIDENT => {
                if let Some(e) = decoded::<IncidentEvent>(ev) {
                    match e {
                        IncidentEvent::IncidentOpened { id, report, .. } => {
                            let fact = fact_of("incident", ev, format!("incident {id}"));
                            self.signed.insert(fact.id.clone(), Signed::of(ev));
                            self.incidents.insert(
                                id,
                                IncidentEntry {
                                    report,
                                    open: true,
                                    fact,
                                },
                            );
                        }
                        IncidentEvent::IncidentResolved { id, .. } => {
                            if let Some(i) = self.incidents.get_mut(&id) {
                                i.open = false;
                            }
                        }
                        IncidentEvent::IncidentReopened { id, .. } => {
                            if let Some(i) = self.incidents.get_mut(&id) {
                                i.open = true;
                            }
                        }
                        _ => {}
                    }
                }
            }
            streams::ORG_CONFIG => match decoded::<OrgConfigEvent>(ev) {
                Some(OrgConfigEvent::OrgConfigSet { config, .. }) => {
                    self.org = config;
                    self.org_unreadable = None;
                }
                None => {
                    self.org_unreadable = Some(format!(
                        "the org-config event at position {} could not be read; the previous rules stay in force",
                        ev.position
                    ));
                }
            },
            streams::COMPLIANCE => {
                if let Some(ComplianceEvent::VersionDemoted {
                    service,
                    version,
                    to,
                    ..
                }) = decoded::<ComplianceEvent>(ev)
                {
                    let fact = fact_of("demotion", ev, format!("{service}@{version} became {to}"));
                    self.signed.insert(fact.id.clone(), Signed::of(ev));
                    if self
                        .compliant
                        .get(&service)
                        .is_some_and(|(v, _)| *v == version)
                    {
                        self.compliant.remove(&service);
                    }
                    self.compliance.insert((service, version), (to, fact));
                }
            }
            streams::PROMOTION_LOCK => {
                if let Some(e) = decoded::<LockEvent>(ev) {
                    self.locks
                        .entry(ev.stream.aggregate_id().to_owned())
                        .or_default()
                        .apply(&e);
                }
            }
            _ => {}
        }
    }
}

/// The read models with what the engine needs around them. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Views {
    handle: ViewHandle<Data>,
    keyring: Option<Arc<Keyring>>,
}

impl Views {
    /// Catches up with the ledger, then follows it.
    pub async fn start(platform: &Platform, keyring: Option<Keyring>) -> anyhow::Result<Self> {
        Ok(Self {
            handle: platform.start_view::<Data>("orchestrator").await?,
            keyring: keyring.map(Arc::new),
        })
    }

    pub fn read(&self) -> parking_lot::RwLockReadGuard<'_, Data> {
        self.handle.read()
    }

    /// The view's handle (read-your-writes waits, catching up).
    pub fn handle(&self) -> &ViewHandle<Data> {
        &self.handle
    }

    /// The catalog's dependency graph (cached until the catalog changes).
    pub fn graph(&self) -> Arc<DependencyGraph> {
        self.read().graph()
    }

    pub fn keyring_configured(&self) -> bool {
        self.keyring.as_ref().is_some_and(|k| !k.is_empty())
    }

    /// Changes after every event applied.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.handle.subscribe()
    }

    /// Checks who wrote a cited event: the seal of its commit must verify with a trusted key
    /// and cover the event (chain format v2). Events below `sealed_upto` were verified by the
    /// chain watch (every seal, with the same keyring), so the writer they name is proven;
    /// later ones are checked here with an authorship proof (O(log n) reads). Once per event;
    /// a failure to read the ledger is not cached.
    pub async fn authorship_verdict(
        &self,
        reader: &LedgerReader,
        origin: &str,
        sealed_upto: u64,
        event_id: &str,
    ) -> Result<String, String> {
        let (memo, signed) = {
            let d = self.read();
            (
                d.verdicts.get(event_id).cloned(),
                d.signed.get(event_id).cloned(),
            )
        };
        if let Some(v) = memo {
            return v;
        }
        let Some(keyring) = &self.keyring else {
            return Err("no keyring configured".into());
        };
        let Some(signed) = signed else {
            return Err("the event is not known to the orchestrator".into());
        };
        if signed.position < sealed_upto && keyring.get(&signed.key_id).is_some() {
            return Ok(signed.key_id);
        }
        let verdict = match reader.authorship(signed.position).await {
            Ok(a) => a
                .verify(keyring, origin)
                .map(|a| a.seal.key_id)
                .map_err(|e| e.to_string()),
            Err(e) if e.is_retryable() => return Err(format!("reading its seal failed: {e}")),
            Err(e) => Err(e.to_string()),
        };
        self.handle.amend(|d| {
            d.verdicts.insert(event_id.to_owned(), verdict.clone());
        });
        verdict
    }

    /// Makes a recorded event's signature checkable before the follower gets to it (a
    /// driver citing its own fresh events). The follower records the same entry later.
    pub fn remember(&self, ev: &RecordedEvent) {
        self.handle.amend(|d| {
            d.signed
                .entry(ev.event_id.to_string())
                .or_insert_with(|| Signed::of(ev));
        });
    }
}

fn apply_promotion(d: &mut Data, ev: &RecordedEvent, e: &PromotionEvent) {
    let id = ev.stream.aggregate_id().to_owned();
    if let PromotionEvent::PromotionRequested(r) = e {
        if let Some(pkg) = &r.package {
            d.package_promotions
                .entry(pkg.clone())
                .or_default()
                .push(id.clone());
        }
    }
    if let PromotionEvent::TargetTransitioned {
        service,
        version,
        to,
        ..
    } = e
    {
        let fact = fact_of("promotion", ev, format!("{service}@{version} became {to}"));
        d.signed.insert(fact.id.clone(), Signed::of(ev));
        if *to == ComplianceState::Compliant {
            d.compliant
                .insert(service.clone(), (version.clone(), fact.clone()));
        } else if d.compliant.get(service).is_some_and(|(v, _)| v == version) {
            d.compliant.remove(service);
        }
        d.compliance
            .insert((service.clone(), version.clone()), (*to, fact));
    }
    d.promotions.entry(id).or_default().apply(e);
}

impl Data {
    /// The open critical `sla_breach` incidents of `service`.
    pub fn critical_breaches(&self, service: &str) -> Vec<&IncidentEntry> {
        use goose_domain::sla::incident::{IncidentSeverity, IncidentType};
        self.incidents
            .values()
            .filter(|i| {
                i.open
                    && i.report.kind == IncidentType::SlaBreach
                    && i.report.severity == IncidentSeverity::Critical
                    && i.report.service.as_deref() == Some(service)
            })
            .collect()
    }
}

fn is_model_evidence(e: &EvidenceEvent) -> bool {
    matches!(e, EvidenceEvent::EvidenceAccepted(r) if !r.subject.is_service())
}
