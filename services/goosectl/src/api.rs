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
}

impl Api {
    pub(crate) fn base(&self, svc: Svc) -> &str {
        let specific = match svc {
            Svc::Rbac => &self.rbac_url,
            Svc::Registry => &self.registry_url,
            Svc::Evidence => &self.evidence_url,
            Svc::Orchestrator => &self.orchestrator_url,
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

pub async fn service_apply(api: &Api, path: &Path) -> Result<ExitCode> {
    let mut docs = Vec::new();
    if path.is_dir() {
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
        for f in files {
            docs.extend(documents(&f)?);
        }
    } else {
        docs = documents(path)?;
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

pub async fn evidence_add(
    api: &Api,
    service: &str,
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
        .text("service", service.to_owned())
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

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// The seed's layout (001 §3.1): `audit/services/{service}/specs/{version}/`,
/// `evidence/{YYYYMMDD}/{sast,tests,metrics,sbom,attestations}/`, `promotions/{id}/`.
pub async fn evidence_export(api: &Api, service: &str, out: &Path) -> Result<ExitCode> {
    let root = out.join("audit").join("services").join(service);
    let svc = get(api, Svc::Registry, &format!("/v1/services/{service}")).await?;
    let records = get(
        api,
        Svc::Evidence,
        &format!("/v1/evidence?service={service}"),
    )
    .await?;
    let definition = svc.get("definition").cloned().unwrap_or(Value::Null);
    let spec = definition.get("spec").cloned().unwrap_or(Value::Null);
    let mut versions: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    let mut written = 0usize;
    for r in records.as_array().into_iter().flatten() {
        let version = r["version"].as_str().unwrap_or("unknown").to_owned();
        versions.insert(version.clone());
        let day = yyyymmdd(&r["submitted_at"]);
        let kind: goose_domain::evidence::EvidenceKind = r["kind"]
            .as_str()
            .unwrap_or("")
            .parse()
            .map_err(anyhow::Error::msg)?;
        let digest = r["digest"].as_str().context("record without digest")?;
        let blob = send(api.request(
            Svc::Evidence,
            reqwest::Method::GET,
            &format!("/v1/blobs/{digest}"),
        )?)
        .await?;
        let folder = root.join("evidence").join(&day).join(kind.layout_folder());
        let file = r["filename"]
            .as_str()
            .filter(|f| !f.is_empty())
            .unwrap_or("evidence");
        write(&folder.join(format!("{version}-{file}")), &blob.0)?;
        write(
            &folder.join(format!("{version}-{file}.summary.json")),
            serde_json::to_string_pretty(r)?.as_bytes(),
        )?;
        written += 1;
    }
    if versions.is_empty() {
        versions.insert(format!(
            "revision-{}",
            svc["revision"].as_u64().unwrap_or(1)
        ));
    }
    for v in &versions {
        let dir = root.join("specs").join(v);
        write(
            &dir.join("api.yaml"),
            format!(
                "api_version: {}\n",
                spec["api_version"].as_str().unwrap_or("v1")
            )
            .as_bytes(),
        )?;
        let deps =
            serde_saphyr::to_string(&spec["dependencies"]).map_err(|e| anyhow::anyhow!("{e}"))?;
        write(&dir.join("dependencies.yaml"), deps.as_bytes())?;
    }
    // org-config retention.audit_log_days: how long audit records stay visible in exports.
    let org = get(api, Svc::Registry, "/v1/org-config").await?;
    let keep_days = org["retention"]["audit_log_days"]
        .as_u64()
        .unwrap_or(u64::MAX);
    let now = time::OffsetDateTime::now_utc();
    let (promotions, expired): (Vec<Exported>, Vec<Exported>) = promotions_of(api, service)
        .await?
        .into_iter()
        .partition(|p| {
            within_retention(
                p.promotion["request"]["requested_at"].as_str(),
                now,
                keep_days,
            )
        });
    if !expired.is_empty() {
        println!(
            "{} promotions of {service} are older than retention.audit_log_days ({keep_days}) and not exported",
            expired.len()
        );
    }
    let compliance = get(
        api,
        Svc::Orchestrator,
        &format!("/v1/compliance?service={service}"),
    )
    .await?;
    for p in &promotions {
        write_promotion(out, &root, service, p)?;
    }
    for v in &versions {
        // The state the orchestrator holds now, and every transition the exported promotions
        // recorded for this version (oldest first), each with its event.
        let state = compliance
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["version"] == v.as_str());
        let history: Vec<&Value> = promotions
            .iter()
            .flat_map(|p| p.steps.iter())
            .filter(|e| {
                e["event_type"] == "TargetTransitioned" && e["event"]["version"] == v.as_str()
            })
            .collect();
        write(
            &root.join("specs").join(v).join("compliance.json"),
            serde_json::to_string_pretty(&json!({
                "service": service,
                "version": v,
                "state": state.map_or(json!("sandbox"), |c| c["state"].clone()),
                "since": state.map(|c| c["since"].clone()),
                "history": history,
                "compliance_mode": spec["compliance_mode"],
            }))?
            .as_bytes(),
        )?;
    }
    println!(
        "wrote {written} evidence files and {} promotions of {service} under {}",
        promotions.len(),
        out.join("audit").display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The `YYYYMMDD` folder of an RFC 3339 time (the seed's audit layout).
fn yyyymmdd(t: &Value) -> String {
    t.as_str()
        .unwrap_or("")
        .chars()
        .filter(char::is_ascii_digit)
        .take(8)
        .collect()
}

/// Whether a record made at `at` (RFC 3339) is still inside `keep_days` of `now`. A time that
/// does not parse is kept: retention never hides what it cannot date.
fn within_retention(at: Option<&str>, now: time::OffsetDateTime, keep_days: u64) -> bool {
    let Some(at) = at.and_then(|t| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
    }) else {
        return true;
    };
    let keep = time::Duration::days(i64::try_from(keep_days.min(1_000_000)).unwrap_or(1_000_000));
    at >= now - keep
}

/// A promotion that included the service, with what the export needs of it.
struct Exported {
    id: String,
    /// The promotion as served (`GET /v1/promotions/{id}`).
    promotion: Value,
    /// Its recorded steps with the facts they cite (`explain`, audit.read).
    steps: Vec<Value>,
    /// Its approval request, if it has one.
    approval: Option<Value>,
    /// The signed SLSA verification summaries of the targets it made compliant, by service.
    vsa: std::collections::BTreeMap<String, Value>,
}

/// Every promotion whose targets include `service`, as the orchestrator recorded it.
async fn promotions_of(api: &Api, service: &str) -> Result<Vec<Exported>> {
    let all = get(api, Svc::Orchestrator, "/v1/promotions").await?;
    let mut out = Vec::new();
    for p in all.as_array().into_iter().flatten() {
        let has = targets(p).any(|t| t == service);
        if has {
            out.push(exported(api, p).await?);
        }
    }
    Ok(out)
}

/// The services a promotion (as served) targets.
fn targets(p: &Value) -> impl Iterator<Item = &str> {
    p["request"]["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["service"].as_str())
}

/// One promotion with its steps, its approval and the verification summary of every target
/// it promoted.
async fn exported(api: &Api, p: &Value) -> Result<Exported> {
    let id = p["id"]
        .as_str()
        .context("a promotion without an id")?
        .to_owned();
    let explained = get(
        api,
        Svc::Orchestrator,
        &format!("/v1/promotions/{id}/explain"),
    )
    .await?;
    let approval = match p["request"]["approval_id"].as_str() {
        Some(a) => Some(get(api, Svc::Rbac, &format!("/v1/approvals/{a}")).await?),
        None => None,
    };
    let steps = explained["events"].as_array().cloned().unwrap_or_default();
    let mut vsa = std::collections::BTreeMap::new();
    for e in steps.iter().filter(|e| e["event_type"] == "TargetPromoted") {
        if let Some(service) = e["event"]["service"].as_str() {
            let v = get(
                api,
                Svc::Orchestrator,
                &format!("/v1/promotions/{id}/targets/{service}/vsa"),
            )
            .await?;
            vsa.insert(service.to_owned(), v);
        }
    }
    Ok(Exported {
        id,
        promotion: p.clone(),
        steps,
        approval,
        vsa,
    })
}

/// `goosectl promotion export ID --out DIR`: one promotion's audit record, every target.
pub async fn promotion_export(api: &Api, id: &str, out: &Path) -> Result<ExitCode> {
    let p = get(api, Svc::Orchestrator, &format!("/v1/promotions/{id}")).await?;
    let e = exported(api, &p).await?;
    let services: Vec<String> = targets(&p).map(str::to_owned).collect();
    for service in &services {
        let root = out.join("audit").join("services").join(service);
        write_promotion(out, &root, service, &e)?;
    }
    println!(
        "wrote promotion {id} ({} targets, {} verification summaries) under {}",
        services.len(),
        e.vsa.len(),
        out.join("audit").display()
    );
    Ok(ExitCode::SUCCESS)
}

/// One promotion in both seed layouts: §3.1 `audit/services/{service}/promotions/{id}/` and
/// §3.4 `audit/promotions/{service}/{YYYYMMDD}/{id}/{request,validation,evidence,approval}/`.
fn write_promotion(out: &Path, service_root: &Path, service: &str, p: &Exported) -> Result<()> {
    let req = &p.promotion["request"];
    let target = req["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["service"] == service)
        .cloned()
        .unwrap_or(Value::Null);
    let mine = |e: &&Value| e["event"]["service"] == service;
    let request = json!({
        "promotion": p.id,
        "target": target,
        "requester": req["requester"],
        "reason": req["reason"],
        "impact": req["impact"],
        "package": req["package"],
        "requested_at": req["requested_at"],
        "policy_digest": req["policy_digest"],
        "event": p.steps.iter().find(|e| e["event_type"] == "PromotionRequested").map(|e| json!({"event_id": e["event_id"], "position": e["position"], "digest": e["digest"]})),
    });
    // Every gate evaluation of this target, with its checks and the facts each cites.
    let validation: Vec<Value> = p
        .steps
        .iter()
        .filter(|e| e["event_type"] == "GateEvaluated")
        .filter(mine)
        .map(|e| json!({"event_id": e["event_id"], "position": e["position"], "digest": e["digest"], "recorded_at": e["recorded_at"], "gate": e["event"]["gate"], "outcome": e["event"]["outcome"], "checks": e["event"]["checks"]}))
        .collect();
    let outcome: Vec<&Value> = p
        .steps
        .iter()
        .filter(|e| {
            matches!(
                e["event_type"].as_str(),
                Some("TargetTransitioned" | "TargetPromoted" | "TargetFailed" | "TargetBlocked")
            )
        })
        .filter(mine)
        .collect();
    // The evidence the gates cited, by event id.
    let mut cited: std::collections::BTreeMap<String, Value> = std::collections::BTreeMap::new();
    for v in &validation {
        for c in v["checks"].as_array().into_iter().flatten() {
            for f in c["inputs"].as_array().into_iter().flatten() {
                if f["kind"] == "evidence" {
                    if let Some(id) = f["id"].as_str() {
                        cited.insert(id.to_owned(), f.clone());
                    }
                }
            }
        }
    }
    let approval = p.approval.clone().unwrap_or(Value::Null);
    let day = yyyymmdd(&req["requested_at"]);
    let pretty = |v: &Value| serde_json::to_string_pretty(v).map(String::into_bytes);
    let per_service = service_root.join("promotions").join(&p.id);
    write(&per_service.join("request.json"), &pretty(&request)?)?;
    write(
        &per_service.join("validation.json"),
        &pretty(&json!(validation))?,
    )?;
    write(&per_service.join("outcome.json"), &pretty(&json!(outcome))?)?;
    write(&per_service.join("approval.json"), &pretty(&approval)?)?;
    if let Some(vsa) = p.vsa.get(service) {
        write(
            &per_service.join("vsa.dsse.json"),
            &pretty(&vsa["envelope"])?,
        )?;
    }
    let per_promotion = out
        .join("audit")
        .join("promotions")
        .join(service)
        .join(&day)
        .join(&p.id);
    write(
        &per_promotion.join("request/request.json"),
        &pretty(&request)?,
    )?;
    write(
        &per_promotion.join("validation/validation.json"),
        &pretty(&json!(validation))?,
    )?;
    write(
        &per_promotion.join("validation/outcome.json"),
        &pretty(&json!(outcome))?,
    )?;
    for (id, fact) in &cited {
        write(
            &per_promotion.join(format!("evidence/{id}.json")),
            &pretty(fact)?,
        )?;
    }
    write(
        &per_promotion.join("approval/approval.json"),
        &pretty(&approval)?,
    )?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::within_retention;
    use time::macros::datetime;

    #[test]
    fn audit_records_stay_visible_for_audit_log_days() {
        let now = datetime!(2026-12-03 12:00 UTC);
        assert!(within_retention(Some("2026-12-01T12:00:00Z"), now, 7));
        assert!(within_retention(Some("2026-11-26T12:00:00Z"), now, 7));
        assert!(!within_retention(Some("2026-11-26T11:59:59Z"), now, 7));
        assert!(!within_retention(Some("2019-01-01T00:00:00Z"), now, 2555));
        assert!(
            within_retention(Some("not a time"), now, 1),
            "undated: kept"
        );
        assert!(within_retention(None, now, 1));
        assert!(within_retention(
            Some("1970-01-01T00:00:00Z"),
            now,
            u64::MAX
        ));
    }
}
