//! rbac's gRPC API (proto/goose/v1/rbac.proto), behind the same authorization middleware as
//! REST: the caller arrives as the middleware's [`Caller`].

use goose_proto::v1::rbac_server::{Rbac, RbacServer};
use goose_proto::v1::{WhoAmIRequest, WhoAmIResponse};
use goose_runtime::auth::Caller;
use goose_runtime::routes::{Access, RouteSpec};
use tonic::{Request, Response, Status};

/// Access rules of the gRPC methods.
pub const GRPC_ROUTES: &[RouteSpec] = &[RouteSpec::post(
    "/goose.v1.Rbac/WhoAmI",
    Access::Authenticated,
    "The caller, their current roles and permissions",
)];

pub(crate) struct RbacGrpc;

impl RbacGrpc {
    pub(crate) fn server(self) -> RbacServer<Self> {
        RbacServer::new(self)
    }
}

#[tonic::async_trait]
impl Rbac for RbacGrpc {
    async fn who_am_i(
        &self,
        req: Request<WhoAmIRequest>,
    ) -> Result<Response<WhoAmIResponse>, Status> {
        let caller = req
            .extensions()
            .get::<Caller>()
            .ok_or_else(|| Status::unauthenticated("no authenticated caller"))?;
        Ok(Response::new(WhoAmIResponse {
            user: caller.user.clone(),
            roles: caller.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            permissions: caller
                .permissions
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
        }))
    }
}
