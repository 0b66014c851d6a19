//! The registry's read model: the catalog, the org-config, the models and use cases from its
//! own events, rbac's approval requests (a production deployment cites a granted one), and
//! the evidence submitted for model versions (the model policy's gates read it), and the
//! sla service's SLA-breach incidents (the model policy's automatic rollback reads them).

use goose_domain::approval::{ApprovalEvent, ApprovalRequest};
use goose_domain::catalog::{Catalog, CatalogEvent};
use goose_domain::evidence::{EvidenceEvent, EvidenceKind, Subject};
use goose_domain::model::guard::Breach;
use goose_domain::model::policy::{EvidenceRef, VersionEvidence};
use goose_domain::model::{ModelEvent, RegisteredModel};
use goose_domain::org_config::{OrgConfig, OrgConfigEvent};
use goose_domain::sla::incident::{IncidentEvent, IncidentType};
use goose_domain::streams;
use goose_domain::usecase::{UseCase, UseCaseEvent};
use goose_ledger::RecordedEvent;
use goose_platform::view::View;
use std::collections::{BTreeMap, HashMap};

/// The registry's read model.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct RegistryView {
    pub catalog: Catalog,
    pub org: Option<OrgConfig>,
    /// By name.
    pub models: BTreeMap<String, RegisteredModel>,
    /// By name.
    pub usecases: BTreeMap<String, UseCase>,
    /// rbac's approval requests by id.
    pub approvals: HashMap<String, ApprovalRequest>,
    /// The newest evidence of each kind for a model version: (model, version).
    #[serde(with = "goose_platform::snapshots::pairs")]
    pub model_evidence: HashMap<(String, u32), VersionEvidence>,
    /// The newest SLA-breach incident (opened or recurred) of each service.
    pub breaches: HashMap<String, Breach>,
    /// The service and title of each SLA-breach incident by its cause (a recurrence names
    /// only the incident).
    breach_causes: HashMap<String, (String, String)>,
}

impl View for RegistryView {
    const FOLLOWS: &'static [&'static str] = &[
        streams::CATALOG,
        streams::ORG_CONFIG,
        streams::MODEL,
        streams::USECASE,
        streams::APPROVAL,
        streams::EVIDENCE,
        streams::INCIDENT,
    ];

    fn apply(&mut self, ev: &RecordedEvent) {
        match ev.stream.aggregate_type() {
            streams::CATALOG => {
                if let Some(e) = goose_platform::decoded::<CatalogEvent>(ev) {
                    self.catalog.apply(&e);
                }
            }
            streams::MODEL => {
                if let Some(e) = goose_platform::decoded::<ModelEvent>(ev) {
                    self.models
                        .entry(ev.stream.aggregate_id().to_owned())
                        .or_default()
                        .apply(&e);
                }
            }
            streams::USECASE => {
                if let Some(e) = goose_platform::decoded::<UseCaseEvent>(ev) {
                    self.usecases
                        .entry(ev.stream.aggregate_id().to_owned())
                        .or_default()
                        .apply(&e);
                }
            }
            streams::APPROVAL => {
                if let Some(e) = goose_platform::decoded::<ApprovalEvent>(ev) {
                    self.approvals
                        .entry(ev.stream.aggregate_id().to_owned())
                        .or_default()
                        .apply(&e);
                }
            }
            streams::EVIDENCE => {
                if ev.event_type != "EvidenceAccepted" {
                    return;
                }
                let Some(EvidenceEvent::EvidenceAccepted(r)) = goose_platform::decoded(ev) else {
                    return;
                };
                let Ok(version) = r.version.parse::<u32>() else {
                    return;
                };
                if r.subject != Subject::Model {
                    return;
                }
                let e = self.model_evidence.entry((r.service, version)).or_default();
                let cited = EvidenceRef {
                    id: r.id,
                    digest: r.digest,
                    at: r.submitted_at,
                };
                match (r.kind, r.summary.model_metrics) {
                    (EvidenceKind::ModelMetrics, Some(m)) => e.metrics = Some((cited, m.metrics)),
                    (EvidenceKind::ModelCard, _) => e.model_card = Some(cited),
                    (EvidenceKind::Cyclonedx | EvidenceKind::Spdx, _) => e.sbom = Some(cited),
                    _ => {}
                }
            }
            streams::INCIDENT => self.incident(ev),
            _ => {
                if let Some(OrgConfigEvent::OrgConfigSet { config, .. }) =
                    goose_platform::decoded(ev)
                {
                    self.org = Some(config);
                }
            }
        }
    }
}

impl RegistryView {
    fn incident(&mut self, ev: &RecordedEvent) {
        let cause = ev.stream.aggregate_id();
        let (incident, service, title) = match goose_platform::decoded::<IncidentEvent>(ev) {
            Some(IncidentEvent::IncidentOpened { id, report, .. })
                if report.kind == IncidentType::SlaBreach =>
            {
                let Some(service) = report.service else {
                    return;
                };
                self.breach_causes
                    .insert(cause.to_owned(), (service.clone(), report.title.clone()));
                (id, service, report.title)
            }
            Some(IncidentEvent::IncidentRecurred { id, .. }) => {
                let Some((service, title)) = self.breach_causes.get(cause).cloned() else {
                    return;
                };
                (id, service, title)
            }
            _ => return,
        };
        self.breaches.insert(
            service,
            Breach {
                incident,
                title,
                at: ev.metadata.recorded_at,
            },
        );
    }
}

/// A read guard on the view that derefs to its catalog.
pub(crate) struct MappedCatalog<'a>(pub(crate) parking_lot::RwLockReadGuard<'a, RegistryView>);

impl std::ops::Deref for MappedCatalog<'_> {
    type Target = Catalog;
    fn deref(&self) -> &Catalog {
        &self.0.catalog
    }
}
