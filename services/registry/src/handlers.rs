//! The registry's REST handlers.

use crate::api::{ApplyResult, ServiceView};
use crate::{AppState, CatalogAgg, OrgConfigAgg, DEFAULT_ID};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use goose_domain::catalog::{parse_definitions, CatalogEntry, CatalogEvent, Rejected, ServiceName};
use goose_domain::org_config::OrgConfig;
use goose_ledger::aggregate;
use goose_ledger::Metadata;
use goose_platform::{execute_problem, problem};
use goose_runtime::auth::Caller;
use goose_runtime::problem::Problem;
use serde::Deserialize;

/// The body as UTF-8 text. A body axum refused (over the 2 MB limit: 413) or that is not
/// UTF-8 is a problem+json answer, like every other error.
fn body_text(
    body: &Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<&str, Problem> {
    let body = body
        .as_ref()
        .map_err(|e| Problem::new(e.status(), "invalid request body", e.body_text()))?;
    std::str::from_utf8(body).map_err(|e| Problem::bad_request(format!("body is not UTF-8: {e}")))
}

pub(crate) async fn apply(
    State(s): State<AppState>,
    caller: Caller,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<ApplyResult>, Problem> {
    let defs = parse_definitions(body_text(&body)?).map_err(|e| problem(&e))?;
    let submitted: Vec<String> = defs.iter().map(|d| d.name.to_string()).collect();
    let meta = Metadata::now(caller.user.clone());
    let done =
        aggregate::execute::<CatalogAgg, Rejected>(&s.platform.ledger, DEFAULT_ID, &meta, |c| {
            c.0.submit(defs.clone())
        })
        .await
        .map_err(execute_problem)?;
    s.view.after_write(done.receipt, "registry").await;
    let mut result = ApplyResult {
        onboarded: Vec::new(),
        updated: Vec::new(),
        unchanged: Vec::new(),
    };
    for e in &done.events {
        let name = e.definition().name.to_string();
        match e {
            CatalogEvent::ServiceOnboarded { .. } => result.onboarded.push(name),
            CatalogEvent::ServiceUpdated { .. } => result.updated.push(name),
        }
    }
    result.unchanged = submitted
        .into_iter()
        .filter(|n| !result.onboarded.contains(n) && !result.updated.contains(n))
        .collect();
    tracing::info!(user = %caller.user, onboarded = ?result.onboarded, updated = ?result.updated, "catalog applied");
    Ok(Json(result))
}

pub(crate) async fn list(State(s): State<AppState>) -> Json<Vec<CatalogEntry>> {
    Json(s.catalog().entries().cloned().collect())
}

pub(crate) async fn get_service(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ServiceView>, Problem> {
    let name = ServiceName::parse(&name).map_err(Problem::bad_request)?;
    if s.catalog().get(&name).is_none() {
        // Onboarded a moment ago through another replica, perhaps.
        s.view.catch_up(&s.platform).await?;
    }
    let view = s.view.read();
    let entry = view
        .catalog
        .get(&name)
        .cloned()
        .ok_or_else(|| Problem::not_found(format!("no service {name} in the catalog")))?;
    let dependants = view
        .catalog
        .graph()
        .dependants(&name)
        .into_iter()
        .map(ToString::to_string)
        .collect();
    let resources = view
        .org
        .clone()
        .unwrap_or_default()
        .modes
        .limits(entry.definition.spec.compliance_mode)
        .clone();
    Ok(Json(ServiceView {
        entry,
        dependants,
        resources,
    }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct GraphQuery {
    #[serde(default)]
    format: Option<String>,
}

pub(crate) async fn graph(
    State(s): State<AppState>,
    q: Result<Query<GraphQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Query(q) = q.map_err(|e| Problem::bad_request(e.body_text()))?;
    let g = s.catalog().graph();
    Ok(match q.format.as_deref().unwrap_or("json") {
        "json" => Json(g.view()).into_response(),
        "dot" => ([(header::CONTENT_TYPE, "text/vnd.graphviz")], g.to_dot()).into_response(),
        "text" => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            g.to_text(),
        )
            .into_response(),
        other => {
            return Err(Problem::bad_request(format!(
                "format {other:?} is not json, text or dot"
            )))
        }
    })
}

pub(crate) async fn get_org_config(State(s): State<AppState>) -> Json<OrgConfig> {
    Json(s.view.read().org.clone().unwrap_or_default())
}

pub(crate) async fn put_org_config(
    State(s): State<AppState>,
    caller: Caller,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<OrgConfig>, Problem> {
    let text = body_text(&body)?;
    let config = OrgConfig::parse(text).map_err(|e| problem(&e))?;
    let meta = Metadata::now(caller.user.clone());
    let done = aggregate::execute::<OrgConfigAgg, std::convert::Infallible>(
        &s.platform.ledger,
        DEFAULT_ID,
        &meta,
        |cur| Ok(cur.0.set(&config, text)),
    )
    .await
    .map_err(execute_problem)?;
    s.view.after_write(done.receipt, "registry").await;
    Ok(Json(config))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MeshQuery {
    namespace: Option<String>,
    prometheus_namespace: Option<String>,
    prometheus_account: Option<String>,
}

/// The Istio AuthorizationPolicies of the catalog's dependency graph (multi-document YAML):
/// what `goosectl mesh render` writes, for a GitOps controller to pull.
pub(crate) async fn mesh_policies(
    State(s): State<AppState>,
    q: Result<Query<MeshQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Query(q) = q.map_err(|e| Problem::bad_request(e.body_text()))?;
    let label = |name: &str, v: Option<String>, default: &str| {
        let v = v.unwrap_or_else(|| default.to_owned());
        if goose_runtime::routes::is_dns_label(&v) {
            Ok(v)
        } else {
            Err(Problem::bad_request(format!(
                "{name} {v:?} is not a Kubernetes name (lowercase letters, digits and '-', at most 63)"
            )))
        }
    };
    let defaults = goose_domain::mesh::MeshOptions::default();
    let opts = goose_domain::mesh::MeshOptions {
        namespace: label("namespace", q.namespace, &defaults.namespace)?,
        prometheus: Some(goose_domain::mesh::principal(
            &label("prometheus_namespace", q.prometheus_namespace, "monitoring")?,
            &label("prometheus_account", q.prometheus_account, "prometheus")?,
        )),
        ..defaults
    };
    let catalog = s.catalog();
    let policies =
        goose_domain::mesh::authorization_policies(catalog.entries().map(|e| &e.definition), &opts);
    let yaml = goose_domain::mesh::to_yaml(&policies).map_err(Problem::internal)?;
    Ok(([(header::CONTENT_TYPE, "application/yaml")], yaml).into_response())
}
