//! The aggregate types of the ledger's streams, defined once. They name streams
//! (`<aggregate>/<id>`) and bus subjects (`goose.evt.<aggregate>.<event type>`), and say which
//! event enum a stream holds.

/// `user/<name>`: [`crate::user::UserEvent`] (rbac).
pub const USER: &str = "user";
/// `approval/<uuid>`: [`crate::approval::ApprovalEvent`] (rbac).
pub const APPROVAL: &str = "approval";
/// `catalog/default`: [`crate::catalog::CatalogEvent`] (registry).
pub const CATALOG: &str = "catalog";
/// `org_config/default`: [`crate::org_config::OrgConfigEvent`] (registry).
pub const ORG_CONFIG: &str = "org_config";
/// `evidence/<service>@<version>`: [`crate::evidence::EvidenceEvent`] (evidence).
pub const EVIDENCE: &str = "evidence";
/// `promotion/<uuid>`: [`crate::promotion::PromotionEvent`] (orchestrator).
pub const PROMOTION: &str = "promotion";
/// `package/<uuid>`: [`crate::package::PackageEvent`] (orchestrator).
pub const PACKAGE: &str = "package";
/// `promotion_lock/<service>`: [`crate::lock::LockEvent`] (orchestrator).
pub const PROMOTION_LOCK: &str = "promotion_lock";
/// `compliance/<service>@<version>`: [`crate::demotion::ComplianceEvent`] (orchestrator).
pub const COMPLIANCE: &str = "compliance";
/// `slo/<name>`: [`crate::sla::SloEvent`] (sla).
pub const SLO: &str = "slo";
/// `measurement/<service>:<batch id>`: [`crate::sla::MeasurementEvent`] (sla).
pub const MEASUREMENT: &str = "measurement";
/// `slo_alert/<slo>`: [`crate::sla::AlertEvent`] (sla).
pub const SLO_ALERT: &str = "slo_alert";
/// `incident/<cause>`: [`crate::sla::incident::IncidentEvent`] (sla).
pub const INCIDENT: &str = "incident";
/// `report/<uuid>`: [`crate::sla::report::ReportEvent`] (sla).
pub const REPORT: &str = "report";
/// `runbook_run/<uuid>`: [`crate::runbook::RunbookEvent`] (sla).
pub const RUNBOOK_RUN: &str = "runbook_run";
/// `model/<name>`: [`crate::model::ModelEvent`] (registry).
pub const MODEL: &str = "model";
/// `usecase/<name>`: [`crate::usecase::UseCaseEvent`] (registry).
pub const USECASE: &str = "usecase";
