//! The sla API as one list: each route with its access rule, OpenAPI operation and handler.

use crate::api::{AppliedSlo, MeasurementBatch, Recorded};
use crate::handlers::*;
use crate::incidents::{self, IncidentAssignee, IncidentNote};
use crate::remote_write::{self, RemoteWriteResult};
use crate::reports::{self, ReportListing, ReportRequest, SignedReport};
use crate::runbooks::{self, RecordedRun};
use crate::views::SloEntry;
use crate::views::{IncidentView, TimelineEntry};
use crate::AppState;
use goose_domain::package::{Envelope, EnvelopeSignature};
use goose_domain::rbac::Permission;
use goose_domain::runbook::{RunbookRun, StepOutcome, StepResult};
use goose_domain::sla::calendar::{Calendar, CalendarUnit};
use goose_domain::sla::incident::{IncidentReport, IncidentSeverity, IncidentStatus, IncidentType};
use goose_domain::sla::measure::Sample;
use goose_domain::sla::openslo::{BurnCondition, Indicator, Objective, Op, Slo};
use goose_domain::sla::report::{
    ApprovalItem, ApprovalsSection, ChainSection, Cite, DemotionItem, Durations, IncidentItem,
    IncidentsSection, ObjectiveAttainment, PromotionItem, PromotionsSection, RefusedAttempt,
    Report, SlaItem, SummariesCited, ViolationItem,
};
use goose_domain::sla::status::{AlertState, ObjectiveStatus, SloStatus};
use goose_runtime::routes::{Access, QueryParam, RouteSpec, Routes};

const AT: &[QueryParam] = &[QueryParam {
    name: "at",
    required: false,
    kind: "date-time",
    values: &[],
    description: "The moment (RFC 3339; default now): the window is the SLO's, ending there",
}];

const SERVICE: &[QueryParam] = &[QueryParam {
    name: "service",
    required: false,
    kind: "string",
    values: &[],
    description: "Only the runs about this service",
}];

const STATUS: &[QueryParam] = &[QueryParam {
    name: "status",
    required: false,
    kind: "string",
    values: &["open", "acknowledged", "mitigated", "resolved"],
    description: "open, acknowledged, mitigated or resolved",
}];

/// The sla REST API: each route with its handler. This one list builds the router, the
/// access table the middleware enforces, the OpenAPI document and the matrix test's rows.
pub(crate) fn api() -> Routes<AppState> {
    Routes::new()
.route(RouteSpec::put("/v1/slos", Access::Permission(Permission::SlaDefine), "Apply OpenSLO v1 documents (YAML, several): each changed SLO gets a new version; errors name document, field and line").returns_many("AppliedSlo").also(&[422]), apply)
.route(RouteSpec::get("/v1/slos", Access::Permission(Permission::SlaRead), "Every SLO, current version").returns_many("SloEntry"), list)
.route(RouteSpec::get("/v1/slos/{name}", Access::Permission(Permission::SlaRead), "One SLO, current version").returns("SloEntry"), get_slo)
.route(RouteSpec::get("/v1/slos/{name}/status", Access::Permission(Permission::SlaRead), "Attainment, error budget left, burn-rate alerts and latency percentiles over the SLO's window").returns("SloStatus").query(AT), slo_status)

.route(RouteSpec::get("/v1/incidents", Access::Permission(Permission::SlaRead), "Incidents (?status=open|acknowledged|mitigated|resolved)").returns_many("IncidentView").query(STATUS), incidents::list)
.route(RouteSpec::get("/v1/incidents/{id}", Access::Permission(Permission::SlaRead), "One incident with its timeline and the ledger positions of its causes").returns("IncidentView"), incidents::get)
.route(RouteSpec::post("/v1/incidents", Access::Permission(Permission::IncidentReport), "Report an incident by hand").body("IncidentReport").returns("IncidentView").status(201), incidents::report)
.route(RouteSpec::post("/v1/incidents/{id}/acknowledge", Access::Permission(Permission::IncidentReport), "Acknowledge an open incident").returns("IncidentView").also(&[409]), incidents::acknowledge)
.route(RouteSpec::post("/v1/incidents/{id}/assign", Access::Permission(Permission::IncidentReport), "Assign an incident ({assignee})").body("IncidentAssignee").returns("IncidentView").also(&[409]), incidents::assign)
.route(RouteSpec::post("/v1/incidents/{id}/notes", Access::Permission(Permission::IncidentReport), "Add a timeline note ({note})").body("IncidentNote").returns("IncidentView"), incidents::add_note)
.route(RouteSpec::post("/v1/incidents/{id}/mitigate", Access::Permission(Permission::IncidentReport), "Mark an incident mitigated ({note})").body("IncidentNote").returns("IncidentView").also(&[409]), incidents::mitigate)
.route(RouteSpec::post("/v1/incidents/{id}/resolve", Access::Permission(Permission::IncidentReport), "Resolve an incident ({note})").body("IncidentNote").returns("IncidentView").also(&[409]), incidents::resolve)
.route(RouteSpec::post("/v1/incidents/{id}/reopen", Access::Permission(Permission::IncidentReport), "Reopen a mitigated or resolved incident ({note}: why)").body("IncidentNote").returns("IncidentView").also(&[409]), incidents::reopen)
.route(RouteSpec::post("/v1/reports", Access::Permission(Permission::ReportIssue), "Issue the compliance report of a period ({from, to}): built from the recorded events, signed by this service's key and recorded on the chain").body("ReportRequest").returns("SignedReport").status(201).also(&[422]), reports::issue)
.route(RouteSpec::get("/v1/reports", Access::Permission(Permission::AuditRead), "Issued compliance reports").returns_many("ReportListing"), reports::list)
.route(RouteSpec::get("/v1/reports/{id}", Access::Permission(Permission::AuditRead), "One compliance report: the report, its DSSE envelope, digest and the event recording it").returns("SignedReport"), reports::get)
.route(RouteSpec::get("/v1/reports/{id}/html", Access::Permission(Permission::AuditRead), "One compliance report as an HTML page (readable and printable)"), reports::html)
.route(RouteSpec::post("/v1/runbook-runs", Access::Permission(Permission::IncidentReport), "Record a runbook run (goosectl runbook run): the runbook, the service, each step's outcome and findings; on the chain as runbook_run/<id>").body("RunbookRun").returns("RecordedRun").status(201).also(&[422]), runbooks::record)
.route(RouteSpec::get("/v1/runbook-runs", Access::Permission(Permission::SlaRead), "Recorded runbook runs, oldest first (?service=NAME)").returns_many("RecordedRun").query(SERVICE), runbooks::list)
.route(RouteSpec::post("/api/v1/write", Access::Permission(Permission::MeasurementSubmit), "Prometheus remote write 1.0 (snappy protobuf): request counters and latency histogram buckets become approximate minute summaries; a retried request is not counted twice").returns("RemoteWriteResult").also(&[415]), remote_write::write)
.route(RouteSpec::post("/v1/measurements", Access::Permission(Permission::MeasurementSubmit), "Record a batch of one service's request samples as minute summaries (all or nothing; a repeated batch_id is not counted twice)").body("MeasurementBatch").returns("Recorded").also(&[422]), measurements)
}

/// The REST routes this service serves, with their access rules.
pub fn routes() -> Vec<RouteSpec> {
    api().specs().to_vec()
}

/// The OpenAPI document of this service.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(components(schemas(
        AppliedSlo,
        RemoteWriteResult,
        MeasurementBatch,
        Recorded,
        Sample,
        SloEntry,
        Slo,
        Calendar,
        CalendarUnit,
        Indicator,
        Op,
        Objective,
        BurnCondition,
        SloStatus,
        ObjectiveStatus,
        AlertState,
        IncidentView,
        TimelineEntry,
        IncidentReport,
        IncidentType,
        IncidentSeverity,
        IncidentStatus,
        IncidentNote,
        IncidentAssignee,
        RunbookRun,
        StepResult,
        StepOutcome,
        RecordedRun,
        ReportRequest,
        SignedReport,
        ReportListing,
        Report,
        Cite,
        Envelope,
        EnvelopeSignature,
        PromotionsSection,
        PromotionItem,
        ApprovalsSection,
        ApprovalItem,
        RefusedAttempt,
        SlaItem,
        ObjectiveAttainment,
        SummariesCited,
        ViolationItem,
        DemotionItem,
        IncidentsSection,
        IncidentItem,
        ChainSection,
        Durations
    )))]
    struct Doc;
    goose_runtime::openapi::document(
        "Golden Goose sla",
        &routes(),
        <Doc as utoipa::OpenApi>::openapi().components,
    )
}
