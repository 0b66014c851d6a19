//! The orchestrator's gRPC API (proto/goose/v1/orchestrator.proto), over the same read models
//! as REST and behind the same authorization middleware.

use crate::views::Views;
use goose_domain::rbac::Permission;
use goose_proto::v1::orchestrator_server::{Orchestrator, OrchestratorServer};
use goose_proto::v1::{
    CheckOutcome, GetPackageRequest, GetPromotionRequest, Member, PackageStatus, PromotionStatus,
    TargetStatus,
};
use goose_runtime::routes::{Access, RouteSpec};
use tonic::{Request, Response, Status};

/// Access rules of the gRPC methods.
pub const GRPC_ROUTES: &[RouteSpec] = &[
    RouteSpec::post(
        "/goose.v1.Orchestrator/GetPromotion",
        Access::Permission(Permission::ServiceRead),
        "One promotion",
    ),
    RouteSpec::post(
        "/goose.v1.Orchestrator/GetPackage",
        Access::Permission(Permission::ServiceRead),
        "One package",
    ),
];

pub(crate) struct OrchestratorGrpc {
    pub(crate) views: Views,
}

impl OrchestratorGrpc {
    pub(crate) fn server(self) -> OrchestratorServer<Self> {
        OrchestratorServer::new(self)
    }
}

fn snake<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[tonic::async_trait]
impl Orchestrator for OrchestratorGrpc {
    async fn get_promotion(
        &self,
        req: Request<GetPromotionRequest>,
    ) -> Result<Response<PromotionStatus>, Status> {
        let id = req.into_inner().id;
        let data = self.views.read();
        let p = data
            .promotions
            .get(&id)
            .filter(|p| p.request.is_some())
            .ok_or_else(|| Status::not_found(format!("no promotion {id}")))?;
        let r = p.request.as_ref();
        Ok(Response::new(PromotionStatus {
            id: id.clone(),
            requester: r.map(|r| r.requester.clone()).unwrap_or_default(),
            package: r.and_then(|r| r.package.clone()).unwrap_or_default(),
            approval_id: r.and_then(|r| r.approval_id.clone()).unwrap_or_default(),
            outcome: p.outcome.map(|o| snake(&o)).unwrap_or_default(),
            targets: p
                .targets
                .iter()
                .map(|t| TargetStatus {
                    service: t.spec.service.clone(),
                    version: t.spec.version.clone(),
                    status: snake(&t.status),
                    compliance: t.compliance.map(|c| c.to_string()).unwrap_or_default(),
                    reason: t.reason.clone().unwrap_or_default(),
                    checks: t
                        .checks
                        .iter()
                        .map(|(c, (o, d))| CheckOutcome {
                            check: c.to_string(),
                            outcome: snake(o),
                            detail: d.clone(),
                        })
                        .collect(),
                })
                .collect(),
        }))
    }

    async fn get_package(
        &self,
        req: Request<GetPackageRequest>,
    ) -> Result<Response<PackageStatus>, Status> {
        let id = req.into_inner().id;
        let data = self.views.read();
        let p = data
            .packages
            .get(&id)
            .filter(|p| p.exists())
            .ok_or_else(|| Status::not_found(format!("no package {id}")))?;
        Ok(Response::new(PackageStatus {
            id: id.clone(),
            version: p.version.clone(),
            created_by: p.created_by.clone(),
            members: p
                .members
                .iter()
                .map(|m| Member {
                    service: m.service.clone(),
                    version: m.version.clone(),
                })
                .collect(),
            promotions: data
                .package_promotions
                .get(&id)
                .cloned()
                .unwrap_or_default(),
            manifest_digests: p.manifests.iter().map(|(_, d)| d.clone()).collect(),
        }))
    }
}
