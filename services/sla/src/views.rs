//! The sla read model: SLOs (current version of each), every minute summary by service, and
//! the catalog (SLOs and measurements name catalog services).

use goose_domain::catalog::{Catalog, CatalogEvent};
use goose_domain::sla::measure::MinuteSummary;
use goose_domain::sla::openslo::Slo;
use goose_domain::sla::{MeasurementEvent, SloEvent};
use goose_domain::streams;
use goose_ledger::RecordedEvent;
use goose_platform::view::View;
use std::collections::BTreeMap;

/// An SLO as it stands, with its version (the stream version of its latest definition).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SloEntry {
    pub version: u64,
    pub applied_by: String,
    /// Ledger position of the event that applied this version.
    pub position: u64,
    #[serde(flatten)]
    pub slo: Slo,
}

#[derive(Debug, Default)]
pub struct SlaView {
    pub slos: BTreeMap<String, SloEntry>,
    pub summaries: BTreeMap<String, Vec<MinuteSummary>>,
    pub catalog: Catalog,
}

impl View for SlaView {
    const FOLLOWS: &'static [&'static str] =
        &[streams::SLO, streams::MEASUREMENT, streams::CATALOG];

    fn apply(&mut self, ev: &RecordedEvent) {
        match ev.stream.aggregate_type() {
            streams::SLO => {
                if let Some(SloEvent::SloApplied {
                    slo, applied_by, ..
                }) = goose_platform::decoded::<SloEvent>(ev)
                {
                    self.slos.insert(
                        slo.name.clone(),
                        SloEntry {
                            version: ev.version,
                            applied_by,
                            position: ev.position,
                            slo,
                        },
                    );
                }
            }
            streams::MEASUREMENT => {
                if let Some(MeasurementEvent::MinuteSummarized(s)) =
                    goose_platform::decoded::<MeasurementEvent>(ev)
                {
                    self.summaries.entry(s.service.clone()).or_default().push(s);
                }
            }
            _ => {
                if let Some(e) = goose_platform::decoded::<CatalogEvent>(ev) {
                    self.catalog.apply(&e);
                }
            }
        }
    }
}
