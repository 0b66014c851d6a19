//! The registry's read model: the catalog and the org-config, from its own events.

use goose_domain::catalog::{Catalog, CatalogEvent};
use goose_domain::org_config::{OrgConfig, OrgConfigEvent};
use goose_domain::streams;
use goose_ledger::RecordedEvent;
use goose_platform::view::View;

/// The registry's read model: the catalog and the org-config, from its own events.
#[derive(Debug, Default)]
pub struct RegistryView {
    pub catalog: Catalog,
    pub org: Option<OrgConfig>,
}

impl View for RegistryView {
    const FOLLOWS: &'static [&'static str] = &[streams::CATALOG, streams::ORG_CONFIG];

    fn apply(&mut self, ev: &RecordedEvent) {
        match ev.stream.aggregate_type() {
            streams::CATALOG => {
                if let Some(e) = goose_platform::decoded::<CatalogEvent>(ev) {
                    self.catalog.apply(&e);
                }
            }
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

/// A read guard on the view that derefs to its catalog.
pub(crate) struct MappedCatalog<'a>(pub(crate) parking_lot::RwLockReadGuard<'a, RegistryView>);

impl std::ops::Deref for MappedCatalog<'_> {
    type Target = Catalog;
    fn deref(&self) -> &Catalog {
        &self.0.catalog
    }
}
