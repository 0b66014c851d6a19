//! The evidence service's read model.

use goose_domain::catalog::CatalogEvent;
use goose_domain::evidence::{EvidenceEvent, EvidenceRecord};
use goose_domain::model::ModelEvent;
use goose_domain::org_config::{OrgConfig, OrgConfigEvent};
use goose_domain::streams;
use goose_ledger::RecordedEvent;
use goose_platform::view::View;
use std::collections::{BTreeMap, BTreeSet};

/// The evidence service's read model: the services registry onboarded, the org-config's
/// limits, and the evidence accepted.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Views {
    pub(crate) services: BTreeSet<String>,
    pub(crate) org: OrgConfig,
    /// Why the newest org-config event could not be applied, if it could not.
    pub(crate) org_unreadable: Option<String>,
    pub(crate) records: BTreeMap<String, EvidenceRecord>,
    /// The registered versions of each model (evidence can be submitted for those).
    pub(crate) models: BTreeMap<String, BTreeSet<u32>>,
}

impl View for Views {
    const FOLLOWS: &'static [&'static str] = &[
        streams::CATALOG,
        streams::ORG_CONFIG,
        streams::EVIDENCE,
        streams::MODEL,
    ];

    fn apply(&mut self, ev: &RecordedEvent) {
        match ev.stream.aggregate_type() {
            streams::CATALOG => {
                if let Some(e) = goose_platform::decoded::<CatalogEvent>(ev) {
                    self.services.insert(e.definition().name.to_string());
                }
            }
            streams::ORG_CONFIG => {
                // Undecodable: the previous limits stay in force (upload limit and retention are
                // security settings), it is logged and counted, and the service is not ready
                // until a readable org-config arrives.
                match goose_platform::decoded(ev) {
                    Some(OrgConfigEvent::OrgConfigSet { config, .. }) => {
                        self.org = config;
                        self.org_unreadable = None;
                    }
                    None => {
                        self.org_unreadable = Some(format!(
                            "the org-config event at position {} could not be read; the previous limits stay in force until a readable one is set",
                            ev.position
                        ));
                    }
                }
            }
            streams::MODEL => {
                if ev.event_type == "VersionRegistered" {
                    if let Some(ModelEvent::VersionRegistered { version, .. }) =
                        goose_platform::decoded(ev)
                    {
                        self.models
                            .entry(ev.stream.aggregate_id().to_owned())
                            .or_default()
                            .insert(version);
                    }
                }
            }
            _ => {
                if let Some(EvidenceEvent::EvidenceAccepted(r)) = goose_platform::decoded(ev) {
                    self.records.insert(r.id.clone(), r);
                }
            }
        }
    }
}

/// Gates waiting for a checkpoint: how many `GateEvaluated` events asked for one so far.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct CheckpointDemand {
    pub asked: u64,
}

impl View for CheckpointDemand {
    const FOLLOWS: &'static [&'static str] = &[streams::PROMOTION];

    fn apply(&mut self, ev: &RecordedEvent) {
        if ev.event_type != "GateEvaluated" {
            return;
        }
        if let Some(goose_domain::promotion::PromotionEvent::GateEvaluated { checks, .. }) =
            goose_platform::decoded(ev)
        {
            if checks.iter().any(|c| {
                c.outcome == goose_domain::gates::Outcome::Missing
                    && c.detail
                        .starts_with(goose_domain::gates::AWAITING_CHECKPOINT)
            }) {
                self.asked += 1;
            }
        }
    }
}
