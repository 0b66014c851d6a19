//! The registry's gRPC API (proto/goose/v1/registry.proto), over the same read model as REST
//! and behind the same authorization middleware.

use crate::RegistryView;
use goose_domain::rbac::Permission;
use goose_platform::view::ViewHandle;
use goose_proto::v1::registry_server::{Registry, RegistryServer};
use goose_proto::v1::{
    GetGraphRequest, GetGraphResponse, ListServicesRequest, ListServicesResponse, Service, Wave,
};
use goose_runtime::routes::{Access, RouteSpec};
use tonic::{Request, Response, Status};

/// Access rules of the gRPC methods.
pub const GRPC_ROUTES: &[RouteSpec] = &[
    RouteSpec::post(
        "/goose.v1.Registry/ListServices",
        Access::Permission(Permission::ServiceRead),
        "List the catalog",
    ),
    RouteSpec::post(
        "/goose.v1.Registry/GetGraph",
        Access::Permission(Permission::ServiceRead),
        "The dependency graph",
    ),
];

pub(crate) struct RegistryGrpc {
    pub(crate) view: ViewHandle<RegistryView>,
}

impl RegistryGrpc {
    pub(crate) fn server(self) -> RegistryServer<Self> {
        RegistryServer::new(self)
    }

    fn catalog(&self) -> crate::views::MappedCatalog<'_> {
        crate::views::MappedCatalog(self.view.read())
    }
}

fn names<'a>(v: impl IntoIterator<Item = &'a goose_domain::catalog::ServiceName>) -> Vec<String> {
    v.into_iter().map(ToString::to_string).collect()
}

#[tonic::async_trait]
impl Registry for RegistryGrpc {
    async fn list_services(
        &self,
        _: Request<ListServicesRequest>,
    ) -> Result<Response<ListServicesResponse>, Status> {
        let services = self
            .catalog()
            .entries()
            .map(|e| {
                let s = &e.definition.spec;
                Service {
                    name: e.definition.name.to_string(),
                    api_version: s.api_version.clone(),
                    compliance_mode: match s.compliance_mode {
                        goose_domain::catalog::ComplianceMode::Sandbox => "sandbox".into(),
                        goose_domain::catalog::ComplianceMode::Compliant => "compliant".into(),
                    },
                    runtime_dependencies: names(&s.dependencies.runtime),
                    data_dependencies: names(&s.dependencies.data),
                    security_dependencies: names(&s.dependencies.security),
                    revision: e.revision,
                }
            })
            .collect();
        Ok(Response::new(ListServicesResponse { services }))
    }

    async fn get_graph(
        &self,
        req: Request<GetGraphRequest>,
    ) -> Result<Response<GetGraphResponse>, Status> {
        let g = self.catalog().graph();
        let rendered = match req.get_ref().format.as_str() {
            "" | "text" => g.to_text(),
            "dot" => g.to_dot(),
            other => {
                return Err(Status::invalid_argument(format!(
                    "format {other:?} is not text or dot"
                )))
            }
        };
        let waves = g
            .waves()
            .unwrap_or_default()
            .into_iter()
            .map(|w| Wave {
                services: names(&w),
            })
            .collect();
        Ok(Response::new(GetGraphResponse { rendered, waves }))
    }
}
