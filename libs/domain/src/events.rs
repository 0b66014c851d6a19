//! Every event enum of the domain, with the aggregate type its streams carry and the service
//! that writes them: the contract other services and outside subscribers read. The AsyncAPI
//! document (`/asyncapi.json`, docs/events.md) is generated from this list.

/// An event enum as a contract.
pub trait DomainEvent: serde::Serialize + serde::de::DeserializeOwned + utoipa::ToSchema {
    /// The aggregate type of the streams holding these events (`crate::streams`).
    const AGGREGATE: &'static str;
    /// The one service that writes them.
    const WRITER: &'static str;
    /// The event's type name (the `type` field of its JSON, the subject's last token).
    fn event_type(&self) -> &'static str;
}

macro_rules! domain_event {
    ($ty:ty, $aggregate:expr, $writer:literal) => {
        impl DomainEvent for $ty {
            const AGGREGATE: &'static str = $aggregate;
            const WRITER: &'static str = $writer;
            fn event_type(&self) -> &'static str {
                <$ty>::event_type(self)
            }
        }
    };
}

use crate::streams;
domain_event!(crate::user::UserEvent, streams::USER, "rbac");
domain_event!(crate::approval::ApprovalEvent, streams::APPROVAL, "rbac");
domain_event!(crate::catalog::CatalogEvent, streams::CATALOG, "registry");
domain_event!(
    crate::org_config::OrgConfigEvent,
    streams::ORG_CONFIG,
    "registry"
);
domain_event!(
    crate::evidence::EvidenceEvent,
    streams::EVIDENCE,
    "evidence"
);
domain_event!(
    crate::promotion::PromotionEvent,
    streams::PROMOTION,
    "orchestrator"
);
domain_event!(
    crate::package::PackageEvent,
    streams::PACKAGE,
    "orchestrator"
);
domain_event!(
    crate::lock::LockEvent,
    streams::PROMOTION_LOCK,
    "orchestrator"
);

domain_event!(
    crate::demotion::ComplianceEvent,
    streams::COMPLIANCE,
    "orchestrator"
);
domain_event!(crate::sla::SloEvent, streams::SLO, "sla");
domain_event!(crate::sla::MeasurementEvent, streams::MEASUREMENT, "sla");
domain_event!(crate::sla::AlertEvent, streams::SLO_ALERT, "sla");
domain_event!(
    crate::sla::incident::IncidentEvent,
    streams::INCIDENT,
    "sla"
);
domain_event!(crate::sla::report::ReportEvent, streams::REPORT, "sla");
domain_event!(crate::runbook::RunbookEvent, streams::RUNBOOK_RUN, "sla");
domain_event!(crate::model::ModelEvent, streams::MODEL, "registry");
domain_event!(crate::usecase::UseCaseEvent, streams::USECASE, "registry");

/// One event enum, described.
#[derive(Debug, Clone)]
pub struct Family {
    pub aggregate: &'static str,
    pub writer: &'static str,
    /// The enum's name (its schema's name).
    pub name: String,
    /// The enum's JSON Schema (OpenAPI 3.1 flavour): one of its variants, each tagged by
    /// `type`; `$ref`s point into `#/components/schemas/`.
    pub schema: serde_json::Value,
    /// The schemas it refers to, by name.
    pub components: Vec<(String, serde_json::Value)>,
}

fn family<E: DomainEvent>() -> Family {
    let mut components = Vec::new();
    E::schemas(&mut components);
    // Schemas are plain data; serialising them cannot fail.
    let json = |s| serde_json::to_value(s).unwrap_or_default();
    Family {
        aggregate: E::AGGREGATE,
        writer: E::WRITER,
        name: E::name().into_owned(),
        schema: json(E::schema()),
        components: components
            .into_iter()
            .map(|(name, s)| (name, json(s)))
            .collect(),
    }
}

/// Every event enum, in the order of `crate::streams`.
pub fn families() -> Vec<Family> {
    vec![
        family::<crate::user::UserEvent>(),
        family::<crate::approval::ApprovalEvent>(),
        family::<crate::catalog::CatalogEvent>(),
        family::<crate::org_config::OrgConfigEvent>(),
        family::<crate::evidence::EvidenceEvent>(),
        family::<crate::promotion::PromotionEvent>(),
        family::<crate::package::PackageEvent>(),
        family::<crate::lock::LockEvent>(),
        family::<crate::demotion::ComplianceEvent>(),
        family::<crate::sla::SloEvent>(),
        family::<crate::sla::MeasurementEvent>(),
        family::<crate::sla::AlertEvent>(),
        family::<crate::sla::incident::IncidentEvent>(),
        family::<crate::sla::report::ReportEvent>(),
        family::<crate::runbook::RunbookEvent>(),
        family::<crate::model::ModelEvent>(),
        family::<crate::usecase::UseCaseEvent>(),
    ]
}
