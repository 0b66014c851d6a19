//! The MLflow Model Registry REST API subset that `MlflowClient` uses (`/api/2.0/mlflow/...`),
//! mapped onto this registry with its authorization (the bearer token is
//! `MLFLOW_TRACKING_TOKEN`): registered models (create, get, search, tags), model versions
//! (create, get, search, tags) and aliases. Every change is the same event on the chain as
//! through our own API.
//!
//! Mapped: a registered model is a model (risk medium, no owner); a version's `source` is its
//! artifact URI, `run_id`, `description` and tags carry over, and a version tag `goose.digest`
//! (SHA-256) becomes its digest. Aliases `champion` and `challenger` are refused (they move only
//! with deployments, `/v1/models/{name}/deployments`); stages (`transition-stage`), renames,
//! deletions and webhooks are not served. Errors are MLflow's shape: `{error_code, message}`.

use crate::api::ModelView;
use crate::models::{record, view_of};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use goose_domain::errors::{Classified, ErrorKind};
use goose_domain::model::{ModelName, RegisteredModel, VersionSpec};
use goose_platform::JsonBody;
use goose_runtime::auth::Caller;
use goose_runtime::problem::Problem;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// An MLflow error: the status and `{error_code, message}`.
#[derive(Debug)]
pub(crate) struct MlflowError(StatusCode, &'static str, String);

impl IntoResponse for MlflowError {
    /// MLflow's client reads `error_code` and `message` from any JSON body; the problem+json
    /// members make the same answer a problem document like every other error here.
    fn into_response(self) -> Response {
        let body = json!({
            "type": "about:blank",
            "title": self.1,
            "status": self.0.as_u16(),
            "detail": self.2,
            "retryable": self.0 == StatusCode::SERVICE_UNAVAILABLE,
            "error_code": self.1,
            "message": self.2,
        });
        (
            self.0,
            [(axum::http::header::CONTENT_TYPE, "application/problem+json")],
            body.to_string(),
        )
            .into_response()
    }
}

impl From<Problem> for MlflowError {
    fn from(p: Problem) -> Self {
        let code = match p.status {
            404 => "RESOURCE_DOES_NOT_EXIST",
            409 => "RESOURCE_ALREADY_EXISTS",
            403 => "PERMISSION_DENIED",
            401 => "UNAUTHENTICATED",
            503 => "TEMPORARILY_UNAVAILABLE",
            400 | 422 => "INVALID_PARAMETER_VALUE",
            _ => "INTERNAL_ERROR",
        };
        let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self(status, code, p.detail)
    }
}

fn invalid(message: impl Into<String>) -> MlflowError {
    MlflowError(
        StatusCode::BAD_REQUEST,
        "INVALID_PARAMETER_VALUE",
        message.into(),
    )
}

/// Well-formed but not something this registry can answer (a filter it does not support).
fn unprocessable(message: impl Into<String>) -> MlflowError {
    MlflowError(
        StatusCode::UNPROCESSABLE_ENTITY,
        "INVALID_PARAMETER_VALUE",
        message.into(),
    )
}

/// A name to look up: one that cannot be a model's is a model that does not exist.
fn lookup(s: &str) -> Result<ModelName, MlflowError> {
    ModelName::parse(s).map_err(|_| {
        MlflowError(
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
            format!("no model {s:?}"),
        )
    })
}

fn refused(e: &dyn Classified) -> MlflowError {
    let code = match e.kind() {
        ErrorKind::NotFound => "RESOURCE_DOES_NOT_EXIST",
        ErrorKind::Conflict => "RESOURCE_ALREADY_EXISTS",
        ErrorKind::Forbidden => "PERMISSION_DENIED",
        ErrorKind::Invalid | ErrorKind::Unprocessable => "INVALID_PARAMETER_VALUE",
    };
    MlflowError::from(goose_platform::problem(e)).with_code(code)
}

impl MlflowError {
    fn with_code(mut self, code: &'static str) -> Self {
        self.1 = code;
        self
    }
}

type Answer = Result<Json<Value>, MlflowError>;

fn name(s: &str) -> Result<ModelName, MlflowError> {
    ModelName::parse(s).map_err(|e| refused(&e))
}

fn millis(t: Option<OffsetDateTime>) -> i64 {
    t.map_or(0, |t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

fn tags(t: &BTreeMap<String, String>) -> Vec<Value> {
    t.iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect()
}

/// A version as MLflow's `ModelVersion`.
fn version_json(name: &str, m: &RegisteredModel, v: u32) -> Value {
    let Some(mv) = m.versions.get(&v) else {
        return Value::Null;
    };
    let at = millis(Some(mv.registered_at));
    json!({
        "name": name,
        "version": v.to_string(),
        "creation_timestamp": at,
        "last_updated_timestamp": at,
        "user_id": mv.registered_by,
        "current_stage": "None",
        "description": mv.spec.description,
        "source": mv.spec.artifact_uri,
        "run_id": mv.spec.run_id.clone().unwrap_or_default(),
        "status": "READY",
        "tags": tags(m.version_tags.get(&v).unwrap_or(&BTreeMap::new())),
        "aliases": m.aliases.iter().filter(|(_, x)| **x == v).map(|(a, _)| a.clone()).collect::<Vec<_>>(),
    })
}

/// A model as MLflow's `RegisteredModel`.
fn model_json(view: &ModelView) -> Value {
    let m = &view.model;
    let latest: Vec<Value> = m
        .versions
        .keys()
        .next_back()
        .map(|v| version_json(&view.name, m, *v))
        .into_iter()
        .collect();
    let updated = m
        .versions
        .values()
        .map(|v| v.registered_at)
        .max()
        .or(m.created_at);
    json!({
        "name": view.name,
        "creation_timestamp": millis(m.created_at),
        "last_updated_timestamp": millis(updated),
        "description": m.description,
        "latest_versions": latest,
        "tags": tags(&m.tags),
        "aliases": m.aliases.iter().map(|(a, v)| json!({"alias": a, "version": v.to_string()})).collect::<Vec<_>>(),
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct MlflowTag {
    key: String,
    value: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct MlflowCreateModel {
    name: String,
    #[serde(default)]
    tags: Vec<MlflowTag>,
    #[serde(default)]
    description: Option<String>,
}

pub(crate) async fn create_model(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<MlflowCreateModel>,
) -> Answer {
    let n = name(&req.name)?;
    let tags: BTreeMap<String, String> = req.tags.into_iter().map(|t| (t.key, t.value)).collect();
    let now = OffsetDateTime::now_utc();
    let description = req.description.unwrap_or_default();
    record(&s, &caller, &n, |m| {
        m.create(
            n.clone(),
            description.clone(),
            goose_domain::approval::ImpactLevel::Medium,
            None,
            tags.clone(),
            now,
        )
    })
    .await?;
    Ok(Json(
        json!({"registered_model": model_json(&view_of(&s, &n).await?)}),
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ByName {
    name: String,
}

pub(crate) async fn get_model(
    State(s): State<AppState>,
    q: Result<Query<ByName>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    let Query(q) = q.map_err(|e| invalid(e.body_text()))?;
    let n = lookup(&q.name)?;
    Ok(Json(
        json!({"registered_model": model_json(&view_of(&s, &n).await?)}),
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct Search {
    #[serde(default)]
    filter: Option<String>,
    #[serde(default)]
    max_results: Option<String>,
    /// Accepted and ignored (answers are ordered by name).
    #[serde(default)]
    #[allow(dead_code)]
    order_by: Option<String>,
    /// Accepted and ignored (one page holds every match).
    #[serde(default)]
    #[allow(dead_code)]
    page_token: Option<String>,
}

/// A search filter as MLflow writes them: conditions joined by AND, each `field op 'value'`
/// with op `=`, `!=`, `LIKE` or `ILIKE`; fields are `name`, `run_id`, `source` and tags
/// (`tag.key`, `tags.`key``). MLflow's client adds `tag.`mlflow.prompt.is_prompt` != 'true'`
/// to every search (prompts are registered models there): a missing tag is `!=` anything.
#[derive(Debug)]
struct Filter(Vec<(Field, Op, String)>);

#[derive(Debug, PartialEq, Eq)]
enum Field {
    Name,
    RunId,
    Source,
    Tag(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Like,
    ILike,
}

/// Splits at ` AND ` (any case) outside quotes and backticks.
fn conjuncts(f: &str) -> Vec<String> {
    let (mut out, mut cur, mut quote) = (Vec::new(), String::new(), None::<char>);
    let chars: Vec<char> = f.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match quote {
            Some(q) if c == q => quote = None,
            None if c == '\'' || c == '"' || c == '`' => quote = Some(c),
            None if c.is_whitespace() => {
                // Compared as characters: the filter may hold any Unicode.
                let next: Vec<char> = chars[i + 1..].iter().take(4).copied().collect();
                if next.len() == 4
                    && next[..3]
                        .iter()
                        .zip("and".chars())
                        .all(|(a, b)| a.eq_ignore_ascii_case(&b))
                    && next[3].is_whitespace()
                {
                    out.push(std::mem::take(&mut cur));
                    i += 4;
                    continue;
                }
            }
            _ => {}
        }
        cur.push(c);
        i += 1;
    }
    out.push(cur);
    out.into_iter().map(|c| c.trim().to_owned()).collect()
}

impl Filter {
    fn parse(filter: Option<&str>, fields: &[&str]) -> Result<Self, MlflowError> {
        let Some(f) = filter.map(str::trim).filter(|f| !f.is_empty()) else {
            return Ok(Self(Vec::new()));
        };
        let unsupported = |why: &str| {
            unprocessable(format!(
                "unsupported filter {f:?} ({why}): this registry takes conditions joined by AND, \
                 each {} or tag.<key> with =, !=, LIKE or ILIKE and a quoted value",
                fields.join(", ")
            ))
        };
        let mut out = Vec::new();
        for c in conjuncts(f) {
            // The field: up to whitespace or an operator, outside backticks.
            let mut end = c.len();
            let mut tick = false;
            for (i, ch) in c.char_indices() {
                if ch == '`' {
                    tick = !tick;
                } else if !tick && (ch.is_whitespace() || ch == '=' || ch == '!') {
                    end = i;
                    break;
                }
            }
            let field = c[..end].replace('`', "");
            let field = match field.as_str() {
                f if fields.contains(&f) => match f {
                    "name" => Field::Name,
                    "run_id" => Field::RunId,
                    _ => Field::Source,
                },
                f => match f.strip_prefix("tags.").or_else(|| f.strip_prefix("tag.")) {
                    Some(key) if !key.is_empty() => Field::Tag(key.to_owned()),
                    _ => return Err(unsupported(&format!("unknown field {f:?}"))),
                },
            };
            let rest = c[end..].trim_start();
            let (op, value) = if let Some(v) = rest.strip_prefix("!=") {
                (Op::Ne, v)
            } else if let Some(v) = rest.strip_prefix('=') {
                (Op::Eq, v)
            } else {
                let (word, v) = rest
                    .split_once(char::is_whitespace)
                    .ok_or_else(|| unsupported("no operator"))?;
                match word.to_ascii_uppercase().as_str() {
                    "LIKE" => (Op::Like, v),
                    "ILIKE" => (Op::ILike, v),
                    other => return Err(unsupported(&format!("operator {other:?}"))),
                }
            };
            let value = value.trim();
            let value = value
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .or_else(|| value.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
                .ok_or_else(|| unsupported("the value is not quoted"))?;
            out.push((field, op, value.to_owned()));
        }
        Ok(Self(out))
    }

    /// Whether every condition holds, `get` giving a field's value (None: absent).
    fn matches(&self, get: impl Fn(&Field) -> Option<String>) -> bool {
        self.0.iter().all(|(field, op, value)| {
            let got = get(field);
            match (op, got) {
                (Op::Ne, None) => true,
                (_, None) => false,
                (Op::Eq, Some(g)) => &g == value,
                (Op::Ne, Some(g)) => &g != value,
                (Op::Like, Some(g)) => like(value, &g, false),
                (Op::ILike, Some(g)) => like(value, &g, true),
            }
        })
    }
}

/// SQL LIKE: `%` any run, `_` one character.
fn like(pattern: &str, s: &str, case_insensitive: bool) -> bool {
    fn go(p: &[char], s: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('%', rest)) => (0..=s.len()).any(|i| go(rest, &s[i..])),
            Some(('_', rest)) => !s.is_empty() && go(rest, &s[1..]),
            Some((c, rest)) => s.first() == Some(c) && go(rest, &s[1..]),
        }
    }
    let fold = |x: &str| {
        if case_insensitive {
            x.to_lowercase().chars().collect::<Vec<_>>()
        } else {
            x.chars().collect()
        }
    };
    go(&fold(pattern), &fold(s))
}

fn max_results(q: &Search) -> Result<usize, MlflowError> {
    let Some(m) = &q.max_results else {
        return Ok(1000);
    };
    let whole = |x: &str| {
        x.trim_start_matches('-')
            .bytes()
            .all(|b| b.is_ascii_digit())
    };
    let n: i64 = match m.parse() {
        Ok(n) => n,
        // A whole number past the 64-bit range: well-formed, out of range.
        Err(_) if !m.is_empty() && whole(m) => i64::MAX,
        Err(_) => return Err(invalid(format!("max_results {m:?} is not a whole number"))),
    };
    usize::try_from(n)
        .ok()
        .filter(|n| (1..=100_000).contains(n))
        .ok_or_else(|| {
            MlflowError(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_PARAMETER_VALUE",
                format!("max_results {n} is not 1..=100000"),
            )
        })
}

pub(crate) async fn search_models(
    State(s): State<AppState>,
    q: Result<Query<Search>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    let Query(q) = q.map_err(|e| invalid(e.body_text()))?;
    let filter = Filter::parse(q.filter.as_deref(), &["name"])?;
    let max = max_results(&q)?;
    let names: Vec<String> = s
        .view
        .read()
        .models
        .iter()
        .filter(|(_, m)| m.name.is_some())
        .filter(|(n, m)| {
            filter.matches(|f| match f {
                Field::Tag(k) => m.tags.get(k).cloned(),
                _ => Some((*n).clone()),
            })
        })
        .map(|(n, _)| n.clone())
        .take(max)
        .collect();
    let mut out = Vec::new();
    for n in names {
        out.push(model_json(&view_of(&s, &name(&n)?).await?));
    }
    Ok(Json(json!({"registered_models": out})))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct MlflowSetTag {
    name: String,
    #[serde(default)]
    version: Option<String>,
    key: String,
    value: String,
}

/// A version number; a whole number that cannot be one (0, negative, too large) is a version
/// that does not exist.
fn version_number(v: &str) -> Result<u32, MlflowError> {
    let t = v.trim();
    let n: i64 = match t.parse() {
        Ok(n) => n,
        // A whole number past the 64-bit range: no such version.
        Err(_)
            if !t.is_empty()
                && t.trim_start_matches('-')
                    .bytes()
                    .all(|b| b.is_ascii_digit()) =>
        {
            -1
        }
        Err(_) => return Err(invalid(format!("version {v:?} is not a version number"))),
    };
    u32::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
        MlflowError(
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
            format!("no version {n}"),
        )
    })
}

pub(crate) async fn set_tag(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<MlflowSetTag>,
) -> Answer {
    let n = name(&req.name)?;
    let version = req.version.as_deref().map(version_number).transpose()?;
    record(&s, &caller, &n, |m| {
        m.set_tag(version, &req.key, &req.value)
    })
    .await?;
    Ok(Json(json!({})))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct MlflowAlias {
    name: String,
    alias: String,
    #[serde(default)]
    version: Option<String>,
}

pub(crate) async fn set_alias(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<MlflowAlias>,
) -> Answer {
    let n = name(&req.name)?;
    let v = version_number(req.version.as_deref().unwrap_or(""))?;
    record(&s, &caller, &n, |m| m.set_alias(&req.alias, v)).await?;
    Ok(Json(json!({})))
}

pub(crate) async fn delete_alias(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<MlflowAlias>,
) -> Answer {
    let n = name(&req.name)?;
    record(&s, &caller, &n, |m| m.delete_alias(&req.alias)).await?;
    Ok(Json(json!({})))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ByAlias {
    name: String,
    alias: String,
}

pub(crate) async fn get_by_alias(
    State(s): State<AppState>,
    q: Result<Query<ByAlias>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    let Query(q) = q.map_err(|e| invalid(e.body_text()))?;
    let n = lookup(&q.name)?;
    let view = view_of(&s, &n).await?;
    let v = view.model.aliases.get(&q.alias).copied().ok_or_else(|| {
        MlflowError(
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
            format!("model {n} has no alias {:?}", q.alias),
        )
    })?;
    Ok(Json(
        json!({"model_version": version_json(n.as_str(), &view.model, v)}),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct MlflowCreateVersion {
    name: String,
    source: String,
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    tags: Vec<MlflowTag>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    run_link: Option<String>,
    #[serde(default)]
    model_id: Option<String>,
}

pub(crate) async fn create_version(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<MlflowCreateVersion>,
) -> Answer {
    let n = name(&req.name)?;
    let mut tags: BTreeMap<String, String> =
        req.tags.into_iter().map(|t| (t.key, t.value)).collect();
    let digest = tags.remove("goose.digest");
    if let Some(link) = req.run_link.filter(|l| !l.is_empty()) {
        tags.insert("mlflow.run_link".into(), link);
    }
    if let Some(id) = req.model_id.filter(|l| !l.is_empty()) {
        tags.insert("mlflow.model_id".into(), id);
    }
    let spec = VersionSpec {
        artifact_uri: req.source,
        digest,
        run_id: req.run_id.filter(|r| !r.is_empty()),
        description: req.description.unwrap_or_default(),
        tags,
        ..VersionSpec::default()
    };
    let now = OffsetDateTime::now_utc();
    record(&s, &caller, &n, |m| {
        m.register(spec.clone(), &caller.user, now)
    })
    .await?;
    let view = view_of(&s, &n).await?;
    let v = view.model.versions.keys().next_back().copied().unwrap_or(0);
    Ok(Json(
        json!({"model_version": version_json(n.as_str(), &view.model, v)}),
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ByVersion {
    name: String,
    version: String,
}

pub(crate) async fn get_version(
    State(s): State<AppState>,
    q: Result<Query<ByVersion>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    let Query(q) = q.map_err(|e| invalid(e.body_text()))?;
    let n = lookup(&q.name)?;
    let v = version_number(&q.version)?;
    let view = view_of(&s, &n).await?;
    if !view.model.versions.contains_key(&v) {
        return Err(MlflowError(
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
            format!("model {n} has no version {v}"),
        ));
    }
    Ok(Json(
        json!({"model_version": version_json(n.as_str(), &view.model, v)}),
    ))
}

pub(crate) async fn search_versions(
    State(s): State<AppState>,
    q: Result<Query<Search>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    let Query(q) = q.map_err(|e| invalid(e.body_text()))?;
    let filter = Filter::parse(q.filter.as_deref(), &["name", "run_id", "source"])?;
    let max = max_results(&q)?;
    let v = s.view.read();
    let mut out = Vec::new();
    for (n, model) in v.models.iter().filter(|(_, m)| m.name.is_some()) {
        for (num, mv) in &model.versions {
            let ok = filter.matches(|f| match f {
                Field::Name => Some(n.clone()),
                Field::RunId => mv.spec.run_id.clone(),
                Field::Source => Some(mv.spec.artifact_uri.clone()),
                Field::Tag(k) => model.version_tags.get(num).and_then(|t| t.get(k).cloned()),
            });
            if ok && out.len() < max {
                out.push(version_json(n, model, *num));
            }
        }
    }
    Ok(Json(json!({"model_versions": out})))
}
