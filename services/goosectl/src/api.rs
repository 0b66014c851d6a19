//! The verbs that talk to the services' REST APIs.

use crate::cli::{Api, ApprovalCommand, TokenArgs, UserCommand};
use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};
use std::path::Path;
use std::process::ExitCode;

/// Which service a call goes to.
#[derive(Debug, Clone, Copy)]
pub enum Svc {
    Rbac,
    Registry,
    Evidence,
    Orchestrator,
    Sla,
    Analytics,
}

impl Api {
    pub(crate) fn base(&self, svc: Svc) -> &str {
        let specific = match svc {
            Svc::Rbac => &self.rbac_url,
            Svc::Registry => &self.registry_url,
            Svc::Evidence => &self.evidence_url,
            Svc::Orchestrator => &self.orchestrator_url,
            Svc::Sla => &self.sla_url,
            Svc::Analytics => &self.analytics_url,
        };
        specific
            .as_deref()
            .unwrap_or(&self.url)
            .trim_end_matches('/')
    }

    pub(crate) fn request(
        &self,
        svc: Svc,
        method: reqwest::Method,
        path: &str,
    ) -> Result<reqwest::RequestBuilder> {
        let client = reqwest::Client::new();
        let mut rb = client.request(method, format!("{}{path}", self.base(svc)));
        match &self.token {
            Some(t) => rb = rb.bearer_auth(t.trim()),
            None => {
                bail!("no access token: set GOOSE_TOKEN (see `goosectl token`) or pass --token")
            }
        }
        Ok(rb)
    }
}

/// Sends and returns the body, or fails with the problem's detail.
pub(crate) async fn send(rb: reqwest::RequestBuilder) -> Result<bytes_or::Body> {
    let resp = rb
        .send()
        .await
        .context("cannot reach Golden Goose (is `goosectl dev` running? see --url)")?;
    send_response(resp).await
}

/// GETs `path` from `svc` as JSON.
pub(crate) async fn get(api: &Api, svc: Svc, path: &str) -> Result<Value> {
    send(api.request(svc, reqwest::Method::GET, path)?)
        .await?
        .json()
}

/// The body of a response received, or a failure with the problem's detail.
pub(crate) async fn send_response(resp: reqwest::Response) -> Result<bytes_or::Body> {
    let status = resp.status();
    let body = resp.bytes().await?;
    if status.is_success() {
        return Ok(bytes_or::Body(body.to_vec()));
    }
    let detail = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("detail").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    bail!("{status}: {detail}")
}

pub(crate) mod bytes_or {
    /// A response body.
    pub struct Body(pub Vec<u8>);

    impl Body {
        pub fn json(&self) -> anyhow::Result<serde_json::Value> {
            Ok(serde_json::from_slice(&self.0)?)
        }

        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.0).into_owned()
        }
    }
}

/// The strings of a JSON array joined with `sep` (empty for anything else).
pub(crate) fn joined(v: Option<&Value>, sep: &str) -> String {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(sep)
        })
        .unwrap_or_default()
}

pub(crate) fn print_json(v: &Value) -> Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(ExitCode::SUCCESS)
}

pub async fn get_print(api: &Api, svc: Svc, path: &str) -> Result<ExitCode> {
    let body = send(api.request(svc, reqwest::Method::GET, path)?).await?;
    print_json(&body.json()?)
}

pub async fn token(api: &Api, args: &TokenArgs) -> Result<ExitCode> {
    let key = std::fs::read_to_string(&args.api_key_file)
        .with_context(|| format!("reading {}", args.api_key_file.display()))?;
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/auth/token", api.base(Svc::Rbac)))
        .json(&json!({ "user": args.user, "api_key": key.trim() }));
    let body = send(resp).await?.json()?;
    let token = body
        .get("access_token")
        .and_then(Value::as_str)
        .context("no access_token in the answer")?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

/// Reads every document of a file: YAML (one or more) or JSON (an object or an array).
fn documents(path: &Path) -> Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let is_json = path.extension().is_some_and(|e| e == "json");
    let docs: Vec<Value> = if is_json {
        match serde_json::from_str(&text).with_context(|| format!("{}", path.display()))? {
            Value::Array(a) => a,
            v => vec![v],
        }
    } else {
        goose_domain::yaml_documents(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
    };
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// The service definition files `path` names: itself, or a directory's `.yaml`, `.yml` and
/// `.json` files in name order (none is an error).
pub(crate) fn definition_files(path: &Path) -> Result<Vec<std::path::PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files: Vec<_> = std::fs::read_dir(path)
        .with_context(|| format!("reading {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        })
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no .yaml, .yml or .json files in {}", path.display());
    }
    Ok(files)
}

pub async fn service_apply(api: &Api, path: &Path) -> Result<ExitCode> {
    let mut docs = Vec::new();
    for f in definition_files(path)? {
        docs.extend(documents(&f)?);
    }
    // One request: the registry applies the whole set or none of it, in dependency order.
    let body = send(
        api.request(Svc::Registry, reqwest::Method::POST, "/v1/services")?
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&Value::Array(docs))?),
    )
    .await?
    .json()?;
    print_json(&body)
}

pub async fn graph(api: &Api, format: &str) -> Result<ExitCode> {
    let body = send(api.request(
        Svc::Registry,
        reqwest::Method::GET,
        &format!("/v1/graph?format={format}"),
    )?)
    .await?;
    print!("{}", body.text());
    Ok(ExitCode::SUCCESS)
}

/// Submits `file` about `subject`: `("service", name)` or `("model", name)`.
pub async fn evidence_add(
    api: &Api,
    (field, subject): (&'static str, String),
    version: &str,
    kind: &str,
    file: &Path,
) -> Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let form = reqwest::multipart::Form::new()
        .text(field, subject)
        .text("version", version.to_owned())
        .text("kind", kind.to_owned())
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name),
        );
    let body = send(
        api.request(Svc::Evidence, reqwest::Method::POST, "/v1/evidence")?
            .multipart(form),
    )
    .await?;
    print_json(&body.json()?)
}

pub async fn user(api: &Api, command: UserCommand) -> Result<ExitCode> {
    match command {
        UserCommand::Create { name, roles } => {
            send(
                api.request(Svc::Rbac, reqwest::Method::POST, "/v1/users")?
                    .json(&json!({"name": name, "roles": roles})),
            )
            .await?;
            let key = send(api.request(
                Svc::Rbac,
                reqwest::Method::POST,
                &format!("/v1/users/{name}/api-keys"),
            )?)
            .await?
            .json()?;
            print_json(&key)
        }
        UserCommand::Teams { name, teams } => {
            let b = send(
                api.request(
                    Svc::Rbac,
                    reqwest::Method::PUT,
                    &format!("/v1/users/{name}/teams"),
                )?
                .json(&json!({"teams": teams})),
            )
            .await?;
            print_json(&b.json()?)
        }
        UserCommand::Grant { name, role } => {
            let b = send(
                api.request(
                    Svc::Rbac,
                    reqwest::Method::POST,
                    &format!("/v1/users/{name}/roles"),
                )?
                .json(&json!({"role": role})),
            )
            .await?;
            print_json(&b.json()?)
        }
        UserCommand::Deactivate { ref name } | UserCommand::Reactivate { ref name } => {
            let verb = if matches!(command, UserCommand::Deactivate { .. }) {
                "deactivate"
            } else {
                "reactivate"
            };
            let b = send(api.request(
                Svc::Rbac,
                reqwest::Method::POST,
                &format!("/v1/users/{name}/{verb}"),
            )?)
            .await?;
            print_json(&b.json()?)
        }
        UserCommand::Revoke { name, role } => {
            let b = send(api.request(
                Svc::Rbac,
                reqwest::Method::DELETE,
                &format!("/v1/users/{name}/roles/{role}"),
            )?)
            .await?;
            print_json(&b.json()?)
        }
    }
}

pub async fn approval(api: &Api, command: ApprovalCommand) -> Result<ExitCode> {
    let (method, path, body) = match command {
        ApprovalCommand::Request {
            kind,
            subject,
            impact,
            reason,
        } => (
            reqwest::Method::POST,
            "/v1/approvals".to_owned(),
            Some(json!({"kind": kind, "subject": subject, "impact": impact, "reason": reason})),
        ),
        ApprovalCommand::Grant { id, comment } => (
            reqwest::Method::POST,
            format!("/v1/approvals/{id}/grant"),
            Some(json!({"comment": comment})),
        ),
        ApprovalCommand::Reject { id, reason } => (
            reqwest::Method::POST,
            format!("/v1/approvals/{id}/reject"),
            Some(json!({"comment": reason})),
        ),
        ApprovalCommand::Show { id } => (reqwest::Method::GET, format!("/v1/approvals/{id}"), None),
        ApprovalCommand::List => (reqwest::Method::GET, "/v1/approvals".to_owned(), None),
    };
    let mut rb = api.request(Svc::Rbac, method, &path)?;
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    print_json(&send(rb).await?.json()?)
}
