//! The sla service's gRPC API (proto/goose/v1/sla.proto): the same reads as REST, over the
//! same read model and status computation, behind the same authorization middleware.

use crate::AppState;
use goose_domain::rbac::Permission;
use goose_domain::sla::incident::IncidentStatus;
use goose_proto::v1::sla_server::{Sla, SlaServer};
use goose_proto::v1::{
    GetSloStatusRequest, Incident, ListIncidentsRequest, ListIncidentsResponse, ListSlosRequest,
    ListSlosResponse, Objective, ObjectiveStatus, Slo, SloStatus,
};
use goose_runtime::problem::Problem;
use goose_runtime::routes::{Access, RouteSpec};
use tonic::{Request, Response, Status};

/// Access rules of the gRPC methods.
pub const GRPC_ROUTES: &[RouteSpec] = &[
    RouteSpec::post(
        "/goose.v1.Sla/ListSlos",
        Access::Permission(Permission::SlaRead),
        "Every SLO, current version",
    ),
    RouteSpec::post(
        "/goose.v1.Sla/GetSloStatus",
        Access::Permission(Permission::SlaRead),
        "An SLO's status",
    ),
    RouteSpec::post(
        "/goose.v1.Sla/ListIncidents",
        Access::Permission(Permission::SlaRead),
        "Incidents",
    ),
];

pub(crate) struct SlaGrpc {
    pub(crate) state: AppState,
}

impl SlaGrpc {
    pub(crate) fn server(self) -> SlaServer<Self> {
        SlaServer::new(self)
    }
}

/// A problem as a gRPC status with the same words.
fn status_of(p: Problem) -> Status {
    match p.status {
        400 | 422 => Status::invalid_argument(p.detail),
        404 => Status::not_found(p.detail),
        409 => Status::failed_precondition(p.detail),
        503 => Status::unavailable(p.detail),
        _ => Status::internal(p.detail),
    }
}

/// A serde enum (snake_case) as its wire name.
fn wire<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[tonic::async_trait]
impl Sla for SlaGrpc {
    async fn list_slos(
        &self,
        _: Request<ListSlosRequest>,
    ) -> Result<Response<ListSlosResponse>, Status> {
        let slos = self
            .state
            .view
            .read()
            .slos
            .values()
            .map(|e| Slo {
                name: e.slo.name.clone(),
                service: e.slo.service.clone(),
                window: e.slo.window.clone(),
                version: e.version,
                position: e.position,
                objectives: e
                    .slo
                    .objectives
                    .iter()
                    .map(|o| Objective {
                        name: o.name.clone(),
                        target: o.target,
                    })
                    .collect(),
            })
            .collect();
        Ok(Response::new(ListSlosResponse { slos }))
    }

    async fn get_slo_status(
        &self,
        req: Request<GetSloStatusRequest>,
    ) -> Result<Response<SloStatus>, Status> {
        let r = req.into_inner();
        let at = (r.at != 0).then_some(r.at);
        let st = crate::handlers::status_at(&self.state, &r.name, at)
            .await
            .map_err(status_of)?;
        Ok(Response::new(SloStatus {
            slo: st.slo,
            service: st.service,
            at: st.at,
            window_seconds: st.window_seconds,
            requests: st.requests,
            errors: st.errors,
            p50_ms: st.p50_ms,
            p95_ms: st.p95_ms,
            p99_ms: st.p99_ms,
            approximate_latency: st.approximate_latency,
            objectives: st
                .objectives
                .into_iter()
                .map(|o| ObjectiveStatus {
                    name: o.name,
                    target: o.target,
                    attainment: o.attainment,
                    budget_remaining: o.budget_remaining,
                    good: o.good,
                    total: o.total,
                    firing_alerts: o
                        .alerts
                        .into_iter()
                        .filter(|a| a.firing)
                        .map(|a| a.name)
                        .collect(),
                })
                .collect(),
        }))
    }

    async fn list_incidents(
        &self,
        req: Request<ListIncidentsRequest>,
    ) -> Result<Response<ListIncidentsResponse>, Status> {
        let wanted = req.into_inner().status;
        let status: Option<IncidentStatus> = if wanted.is_empty() {
            None
        } else {
            Some(
                serde_json::from_value(serde_json::Value::String(wanted.clone())).map_err(
                    |_| {
                        Status::invalid_argument(format!(
                            "status {wanted:?}: open, acknowledged, mitigated or resolved"
                        ))
                    },
                )?,
            )
        };
        let incidents = self
            .state
            .view
            .read()
            .incidents
            .values()
            .filter(|i| status.is_none_or(|st| i.status == st))
            .map(|i| Incident {
                id: i.id.clone(),
                cause: i.cause.clone(),
                r#type: wire(&i.report.kind),
                severity: wire(&i.report.severity),
                title: i.report.title.clone(),
                service: i.report.service.clone().unwrap_or_default(),
                status: wire(&i.status),
                assignee: i.assignee.clone().unwrap_or_default(),
                caused_by: i.report.caused_by.clone(),
                opened_by: i.opened_by.clone(),
            })
            .collect();
        Ok(Response::new(ListIncidentsResponse { incidents }))
    }
}
