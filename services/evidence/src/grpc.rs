//! The evidence service's gRPC API (proto/goose/v1/evidence.proto), over the same read model
//! as REST and behind the same authorization middleware.

use crate::Views;
use goose_domain::evidence::Subject;
use goose_domain::rbac::Permission;
use goose_platform::view::ViewHandle;
use goose_proto::v1::evidence_server::{Evidence, EvidenceServer};
use goose_proto::v1::{EvidenceRecord, ListEvidenceRequest, ListEvidenceResponse};
use goose_runtime::routes::{Access, RouteSpec};
use tonic::{Request, Response, Status};

/// Access rules of the gRPC methods.
pub const GRPC_ROUTES: &[RouteSpec] = &[RouteSpec::post(
    "/goose.v1.Evidence/ListEvidence",
    Access::Permission(Permission::EvidenceRead),
    "List accepted evidence",
)];

pub(crate) struct EvidenceGrpc {
    pub(crate) views: ViewHandle<Views>,
}

impl EvidenceGrpc {
    pub(crate) fn server(self) -> EvidenceServer<Self> {
        EvidenceServer::new(self)
    }
}

#[tonic::async_trait]
impl Evidence for EvidenceGrpc {
    async fn list_evidence(
        &self,
        req: Request<ListEvidenceRequest>,
    ) -> Result<Response<ListEvidenceResponse>, Status> {
        let q = req.into_inner();
        let views = self.views.read();
        let subject = match q.subject.as_str() {
            "" | "service" => Subject::Service,
            "model" => Subject::Model,
            other => {
                return Err(Status::invalid_argument(format!(
                    "subject is service or model, not {other:?}"
                )))
            }
        };
        let records = views
            .records
            .values()
            .filter(|r| r.subject == subject)
            .filter(|r| q.service.is_empty() || r.service == q.service)
            .filter(|r| q.version.is_empty() || r.version == q.version)
            .map(|r| {
                Ok(EvidenceRecord {
                    id: r.id.clone(),
                    service: r.service.clone(),
                    version: r.version.clone(),
                    kind: r.kind.as_str().to_owned(),
                    digest: r.digest.clone(),
                    size: r.size,
                    summary_json: serde_json::to_string(&r.summary)
                        .map_err(|e| Status::internal(e.to_string()))?,
                    submitted_by: r.submitted_by.clone(),
                    submitted_at: r
                        .submitted_at
                        .format(&time::format_description::well_known::Rfc3339)
                        .map_err(|e| Status::internal(e.to_string()))?,
                    subject: match r.subject {
                        Subject::Service => "service",
                        Subject::Model => "model",
                    }
                    .to_owned(),
                })
            })
            .collect::<Result<_, Status>>()?;
        Ok(Response::new(ListEvidenceResponse { records }))
    }
}
