//! The registry's gRPC API (proto/goose/v1/registry.proto), over the same read model as REST
//! and behind the same authorization middleware.

use crate::RegistryView;
use goose_domain::rbac::Permission;
use goose_platform::view::ViewHandle;
use goose_proto::v1::registry_server::{Registry, RegistryServer};
use goose_proto::v1::{
    GetGraphRequest, GetGraphResponse, GetProductionVersionRequest, GetProductionVersionResponse,
    ListModelsRequest, ListModelsResponse, ListServicesRequest, ListServicesResponse,
    ListUseCasesRequest, ListUseCasesResponse, Model, ModelVersion, PinnedModel, Service, UseCase,
    Wave,
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
    RouteSpec::post(
        "/goose.v1.Registry/ListModels",
        Access::Permission(Permission::ServiceRead),
        "Every registered model",
    ),
    RouteSpec::post(
        "/goose.v1.Registry/GetProductionVersion",
        Access::Permission(Permission::ServiceRead),
        "A model's production version at a time",
    ),
    RouteSpec::post(
        "/goose.v1.Registry/ListUseCases",
        Access::Permission(Permission::ServiceRead),
        "Every use case",
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

    async fn list_models(
        &self,
        _: Request<ListModelsRequest>,
    ) -> Result<Response<ListModelsResponse>, Status> {
        use goose_domain::model::Environment;
        let v = self.view.read();
        let models = v
            .models
            .iter()
            .filter(|(_, m)| m.name.is_some())
            .map(|(name, m)| Model {
                name: name.clone(),
                risk: m.risk.map(|r| r.to_string()).unwrap_or_default(),
                owner: m.owner.clone().unwrap_or_default(),
                versions: m
                    .versions
                    .values()
                    .map(|mv| ModelVersion {
                        version: mv.version,
                        artifact_uri: mv.spec.artifact_uri.clone(),
                        digest: mv.spec.digest.clone().unwrap_or_default(),
                        framework: mv.spec.framework.clone().unwrap_or_default(),
                        deployed: mv.deployed.iter().map(ToString::to_string).collect(),
                        deprecated: mv.deprecated.clone().unwrap_or_default(),
                    })
                    .collect(),
                aliases: m.aliases.clone().into_iter().collect(),
                production: m.deployed(Environment::Production),
                staging: m.deployed(Environment::Staging),
            })
            .collect();
        Ok(Response::new(ListModelsResponse { models }))
    }

    async fn get_production_version(
        &self,
        req: Request<GetProductionVersionRequest>,
    ) -> Result<Response<GetProductionVersionResponse>, Status> {
        let r = req.get_ref();
        let at = if r.at.is_empty() {
            time::OffsetDateTime::now_utc()
        } else {
            time::OffsetDateTime::parse(&r.at, &time::format_description::well_known::Rfc3339)
                .map_err(|e| {
                    Status::invalid_argument(format!("at {:?} is not an RFC 3339 time: {e}", r.at))
                })?
        };
        let v = self.view.read();
        let m = v
            .models
            .get(&r.model)
            .filter(|m| m.name.is_some())
            .ok_or_else(|| Status::not_found(format!("no model {}", r.model)))?;
        Ok(Response::new(GetProductionVersionResponse {
            version: m.in_production_at(at),
        }))
    }

    async fn list_use_cases(
        &self,
        _: Request<ListUseCasesRequest>,
    ) -> Result<Response<ListUseCasesResponse>, Status> {
        let v = self.view.read();
        let use_cases = v
            .usecases
            .values()
            .filter_map(|u| {
                let (state, spec) = (u.state?, u.spec.as_ref()?);
                Some(UseCase {
                    name: u.name.clone(),
                    title: spec.title.clone(),
                    state: state.to_string(),
                    impact: spec.impact.to_string(),
                    deployed: u
                        .deployed
                        .iter()
                        .map(|p| PinnedModel {
                            model: p.model.to_string(),
                            version: p.version,
                        })
                        .collect(),
                })
            })
            .collect();
        Ok(Response::new(ListUseCasesResponse { use_cases }))
    }
}
