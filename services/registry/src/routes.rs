//! The registry API as one list: each route with its access rule, OpenAPI operation and
//! handler.

use crate::api::{
    ApplyResult, CreateModel, DeployAnswer, DeployModel, ModelView, ProductionAt, Reason,
    ServiceView, SetAlias,
};
use crate::api::{CreateUseCase, Decide, SubmitUseCase};
use crate::handlers::*;
use crate::mlflow::{MlflowAlias, MlflowCreateModel, MlflowCreateVersion, MlflowSetTag, MlflowTag};
use crate::{mlflow, models, usecases, AppState};
use goose_domain::catalog::{CatalogEntry, ServiceDefinition};
use goose_domain::graph::GraphView;
use goose_domain::model::{RegisteredModel, VersionSpec};
use goose_domain::org_config::OrgConfig;
use goose_domain::rbac::Permission;
use goose_domain::usecase::{UseCase, UseCaseSpec};
use goose_runtime::routes::QueryParam;
use goose_runtime::routes::{Access, RouteSpec, Routes};

/// The registry REST API: each route with its handler. This one list builds the router, the
/// access table the middleware enforces, the OpenAPI document and the matrix test's rows.
pub(crate) fn api() -> Routes<AppState> {
    Routes::new()
.route(RouteSpec::post("/v1/services", Access::Permission(Permission::ServiceOnboard), "Onboard or update services: seed template or Backstage entities, YAML (multi-document) or JSON; all or nothing, in dependency order").returns("ApplyResult"), apply)
.route(RouteSpec::get("/v1/services", Access::Permission(Permission::ServiceRead), "List the catalog"), list)
.route(RouteSpec::get("/v1/services/{name}", Access::Permission(Permission::ServiceRead), "One service with its dependencies and dependants").returns("ServiceView"), get_service)
.route(RouteSpec::get("/v1/graph", Access::Permission(Permission::ServiceRead), "The dependency graph (?format=json|text|dot)").returns("GraphView"), graph)
.route(RouteSpec::get("/v1/mesh/authorization-policies", Access::Permission(Permission::ServiceRead), "Istio AuthorizationPolicies from the dependency graph (multi-document YAML): per service, its dependants' identities may call GET/POST /api/*, Prometheus may scrape /metrics").query(MESH).produces(&["application/yaml"]), mesh_policies)
.route(RouteSpec::put("/v1/org-config", Access::Permission(Permission::OrgConfigure), "Replace org-config (YAML); errors name field and line").returns("OrgConfig"), put_org_config)
.route(RouteSpec::get("/v1/org-config", Access::Permission(Permission::ServiceRead), "The current org-config (defaults until one is set)").returns("OrgConfig"), get_org_config)
.route(RouteSpec::post("/v1/models", Access::Permission(Permission::ModelRegister), "Create a registered model (name, description, risk, owner, tags)").body("CreateModel").returns("ModelView").status(201).also(&[409]), models::create)
.route(RouteSpec::get("/v1/models", Access::Permission(Permission::ServiceRead), "Every registered model with its versions, aliases and deployment history").returns_many("ModelView"), models::list)
.route(RouteSpec::get("/v1/models/{name}", Access::Permission(Permission::ServiceRead), "One model: versions (artifact, digest, metrics, card), aliases, where each is deployed, deployment history").returns("ModelView"), models::show)
.route(RouteSpec::post("/v1/models/{name}/versions", Access::Permission(Permission::ModelRegister), "Register the model's next version (artifact URI and SHA-256, framework, training data, evaluation metrics, model card)").body("VersionSpec").returns("ModelView").status(201), models::register)
.route(RouteSpec::post("/v1/models/{name}/deployments", Access::Permission(Permission::ModelDeploy), "Deploy a version (number or alias) to staging or production through the model policy's gate; production needs a granted model_deployment approval: left out, one is raised for the caller (202)").body("DeployModel").returns("DeployAnswer").also(&[202, 422]), models::deploy)
.route(RouteSpec::post("/v1/models/{name}/rollback", Access::Permission(Permission::ModelDeploy), "Put the previous production version back, with the reason").body("Reason").returns("ModelView").also(&[422]), models::rollback)
.route(RouteSpec::put("/v1/models/{name}/aliases/{alias}", Access::Permission(Permission::ModelRegister), "Point a free alias at a version (champion and challenger move only with deployments)").body("SetAlias").returns("ModelView").also(&[422]), models::set_alias)
.route(RouteSpec::delete("/v1/models/{name}/aliases/{alias}", Access::Permission(Permission::ModelRegister), "Remove a free alias").returns("ModelView"), models::delete_alias)
.route(RouteSpec::post("/v1/models/{name}/versions/{version}/deprecate", Access::Permission(Permission::ModelRegister), "Deprecate a version (refused while it is in production), with the reason").body("Reason").returns("ModelView").also(&[422]), models::deprecate)
.route(RouteSpec::get("/v1/models/{name}/production", Access::Permission(Permission::ServiceRead), "The version in production at a time (?at=RFC 3339; now when left out), from the deployment events").returns("ProductionAt").query(AT), models::production_at)
.route(RouteSpec::post("/api/2.0/mlflow/registered-models/create", Access::Permission(Permission::ModelRegister), "MLflow: create a registered model (a model here)").body("MlflowCreateModel").also(&[400, 409]), mlflow::create_model)
.route(RouteSpec::get("/api/2.0/mlflow/registered-models/get", Access::Permission(Permission::ServiceRead), "MLflow: a registered model").query(MLFLOW_NAME).also(&[400, 404, 422]), mlflow::get_model)
.route(RouteSpec::get("/api/2.0/mlflow/registered-models/search", Access::Permission(Permission::ServiceRead), "MLflow: search registered models (filter: name = 'x' or name LIKE/ILIKE 'x%')").query(MLFLOW_SEARCH).also(&[400, 422]), mlflow::search_models)
.route(RouteSpec::post("/api/2.0/mlflow/registered-models/set-tag", Access::Permission(Permission::ModelRegister), "MLflow: set a registered model's tag").body("MlflowSetTag").also(&[400, 404]), mlflow::set_tag)
.route(RouteSpec::post("/api/2.0/mlflow/registered-models/alias", Access::Permission(Permission::ModelRegister), "MLflow: point a free alias at a version (champion and challenger move only with deployments)").body("MlflowAlias").also(&[400, 404, 422]), mlflow::set_alias)
.route(RouteSpec::delete("/api/2.0/mlflow/registered-models/alias", Access::Permission(Permission::ModelRegister), "MLflow: remove a free alias").body("MlflowAlias").also(&[400, 404]), mlflow::delete_alias)
.route(RouteSpec::get("/api/2.0/mlflow/registered-models/alias", Access::Permission(Permission::ServiceRead), "MLflow: the version an alias points at").query(MLFLOW_ALIAS).also(&[400, 404, 422]), mlflow::get_by_alias)
.route(RouteSpec::post("/api/2.0/mlflow/model-versions/create", Access::Permission(Permission::ModelRegister), "MLflow: register a version (source = artifact URI; tag goose.digest = its SHA-256)").body("MlflowCreateVersion").also(&[400, 404]), mlflow::create_version)
.route(RouteSpec::get("/api/2.0/mlflow/model-versions/get", Access::Permission(Permission::ServiceRead), "MLflow: a model version").query(MLFLOW_VERSION).also(&[400, 404, 422]), mlflow::get_version)
.route(RouteSpec::get("/api/2.0/mlflow/model-versions/search", Access::Permission(Permission::ServiceRead), "MLflow: search model versions (filter: name, run_id or source = 'x' or LIKE/ILIKE)").query(MLFLOW_SEARCH).also(&[400, 422]), mlflow::search_versions)
.route(RouteSpec::post("/api/2.0/mlflow/model-versions/set-tag", Access::Permission(Permission::ModelRegister), "MLflow: set a model version's tag").body("MlflowSetTag").also(&[400, 404]), mlflow::set_tag)
.route(RouteSpec::post("/v1/usecases", Access::Permission(Permission::UsecaseSubmit), "Create a use case as a draft (title, impact, the models it uses by version or alias)").body("CreateUseCase").returns("UseCase").status(201).also(&[409]), usecases::create)
.route(RouteSpec::get("/v1/usecases", Access::Permission(Permission::ServiceRead), "Every use case with its state, models and history").returns_many("UseCase"), usecases::list)
.route(RouteSpec::get("/v1/usecases/{name}", Access::Permission(Permission::ServiceRead), "One use case: state, models (pinned versions once deployed), approvers, history").returns("UseCase"), usecases::show)
.route(RouteSpec::post("/v1/usecases/{name}/submit", Access::Permission(Permission::UsecaseSubmit), "Submit the draft: its use_case approval request is raised in rbac for the caller (or given)").body("SubmitUseCase").returns("UseCase").also(&[422]), usecases::submit)
.route(RouteSpec::post("/v1/usecases/{name}/approve", Access::Permission(Permission::UsecaseApprove), "Grant the use case's approval in rbac as the caller (never the submitter); approved once enough distinct approvers granted").body("Decide").returns("UseCase").also(&[422]), usecases::approve)
.route(RouteSpec::post("/v1/usecases/{name}/reject", Access::Permission(Permission::UsecaseApprove), "Reject the use case's approval in rbac as the caller, with the reason: back to draft").body("Decide").returns("UseCase").also(&[422]), usecases::reject)
.route(RouteSpec::post("/v1/usecases/{name}/deploy", Access::Permission(Permission::UsecaseSubmit), "Deploy an approved use case: each model it names must resolve to its production version (pinned)").returns("UseCase").also(&[422]), usecases::deploy)
.route(RouteSpec::post("/v1/usecases/{name}/deprecate", Access::Permission(Permission::UsecaseSubmit), "Deprecate a use case, with the reason; its history stays").body("Reason").returns("UseCase").also(&[422]), usecases::deprecate)
}

const AT: &[QueryParam] = &[QueryParam {
    name: "at",
    required: false,
    kind: "date-time",
    values: &[],
    description: "The time (RFC 3339); now when left out",
}];

const MESH: &[QueryParam] = &[
    QueryParam {
        name: "namespace",
        required: false,
        kind: "dns-label",
        values: &[],
        description:
            "The namespace the services and their service accounts run in (default: default)",
    },
    QueryParam {
        name: "prometheus_namespace",
        required: false,
        kind: "dns-label",
        values: &[],
        description: "Prometheus's namespace (default: monitoring)",
    },
    QueryParam {
        name: "prometheus_account",
        required: false,
        kind: "dns-label",
        values: &[],
        description: "Prometheus's service account (default: prometheus)",
    },
];

const fn param(name: &'static str, required: bool, description: &'static str) -> QueryParam {
    QueryParam {
        name,
        required,
        kind: "string",
        values: &[],
        description,
    }
}

const MLFLOW_NAME: &[QueryParam] = &[param("name", true, "The registered model")];
const MLFLOW_ALIAS: &[QueryParam] = &[
    param("name", true, "The registered model"),
    param("alias", true, "The alias"),
];
const MLFLOW_VERSION: &[QueryParam] = &[
    param("name", true, "The registered model"),
    QueryParam {
        kind: "integer",
        ..param("version", true, "The version number")
    },
];
const MLFLOW_SEARCH: &[QueryParam] = &[
    param(
        "filter",
        false,
        "Conditions joined by AND: field = 'x', != 'x', LIKE or ILIKE 'x%'",
    ),
    QueryParam {
        kind: "integer",
        ..param(
            "max_results",
            false,
            "At most this many (1 to 100000; 1000 when left out)",
        )
    },
    param(
        "order_by",
        false,
        "Accepted and ignored: answers are ordered by name",
    ),
    param(
        "page_token",
        false,
        "Accepted and ignored: one page holds every match",
    ),
];

/// The REST routes this service serves, with their access rules (gRPC: [`grpc::GRPC_ROUTES`]).
pub fn routes() -> Vec<RouteSpec> {
    api().specs().to_vec()
}

/// The OpenAPI document of this service.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(components(schemas(
        ApplyResult,
        ServiceView,
        GraphView,
        OrgConfig,
        CatalogEntry,
        ServiceDefinition,
        CreateModel,
        ModelView,
        RegisteredModel,
        VersionSpec,
        DeployModel,
        DeployAnswer,
        Reason,
        SetAlias,
        ProductionAt,
        CreateUseCase,
        SubmitUseCase,
        Decide,
        UseCase,
        UseCaseSpec,
        MlflowCreateModel,
        MlflowTag,
        MlflowSetTag,
        MlflowAlias,
        MlflowCreateVersion
    )))]
    struct Doc;
    goose_runtime::openapi::document(
        "Golden Goose registry",
        &routes(),
        <Doc as utoipa::OpenApi>::openapi().components,
    )
}
