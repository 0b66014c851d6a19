//! Raising the approval requests that a promotion's manual gate or a model's production
//! deployment waits on. Approvals belong to rbac: a service asks rbac with the *requester's*
//! token, so rbac records the requester as such and refuses them as an approver (segregation
//! of duties). Grants are read back from rbac's events on the ledger.

use goose_domain::approval::{ApprovalKind, ApprovalView, CreateApproval, ImpactLevel};
use goose_domain::rbac::TeamName;
use goose_runtime::problem::Problem;
use serde_json::Value;

/// The caller's bearer token (to raise an approval request as them).
pub fn bearer(headers: &axum::http::HeaderMap) -> Result<String, Problem> {
    goose_runtime::auth::bearer_token(headers)
        .map(str::to_owned)
        .ok_or_else(|| {
            Problem::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "no bearer token",
            )
        })
}

/// The current span's W3C trace context, for a call to another service (rbac's request span
/// then continues this trace).
fn trace_headers() -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    goose_runtime::telemetry::inject_http(&mut headers);
    headers
}

/// Raises approval requests in rbac.
#[async_trait::async_trait]
pub trait ApprovalRequester: Send + Sync + std::fmt::Debug {
    /// Returns the new request's id. `owner_teams`: the teams owning the subject (rbac then
    /// wants an approver from outside them for impact ≥ high).
    async fn request(
        &self,
        bearer: &str,
        kind: ApprovalKind,
        subject: &str,
        impact: ImpactLevel,
        reason: &str,
        owner_teams: &[TeamName],
    ) -> Result<String, Problem>;

    /// Grants (`grant`) or rejects request `id` as the caller whose token this is; rbac
    /// enforces who may (never the requester).
    async fn decide(
        &self,
        bearer: &str,
        id: &str,
        grant: bool,
        comment: &str,
    ) -> Result<(), Problem>;
}

/// rbac's REST API.
#[derive(Debug, Clone)]
pub struct HttpApprovals {
    base: String,
    client: reqwest::Client,
}

impl HttpApprovals {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }
}

#[async_trait::async_trait]
impl ApprovalRequester for HttpApprovals {
    async fn request(
        &self,
        bearer: &str,
        kind: ApprovalKind,
        subject: &str,
        impact: ImpactLevel,
        reason: &str,
        owner_teams: &[TeamName],
    ) -> Result<String, Problem> {
        let url = format!("{}/v1/approvals", self.base);
        let resp = self
            .client
            .post(&url)
            .headers(trace_headers())
            .bearer_auth(bearer)
            .json(&CreateApproval {
                kind,
                subject: subject.to_owned(),
                impact,
                reason: reason.to_owned(),
                owner_teams: owner_teams.to_vec(),
            })
            .send()
            .await
            .map_err(|e| Problem::unavailable(format!("rbac is unreachable at {url}: {e}")))?;
        let status = resp.status();
        let bytes = resp.bytes().await.unwrap_or_default();
        if status.is_success() {
            return serde_json::from_slice::<ApprovalView>(&bytes)
                .map(|v| v.id)
                .map_err(|e| {
                    Problem::unavailable(format!("rbac answered without an approval request: {e}"))
                });
        }
        Err(refused(status, &bytes))
    }

    async fn decide(
        &self,
        bearer: &str,
        id: &str,
        grant: bool,
        comment: &str,
    ) -> Result<(), Problem> {
        let action = if grant { "grant" } else { "reject" };
        let url = format!("{}/v1/approvals/{id}/{action}", self.base);
        let resp = self
            .client
            .post(&url)
            .headers(trace_headers())
            .bearer_auth(bearer)
            .json(&serde_json::json!({ "comment": comment }))
            .send()
            .await
            .map_err(|e| Problem::unavailable(format!("rbac is unreachable at {url}: {e}")))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        Err(refused(status, &resp.bytes().await.unwrap_or_default()))
    }
}

/// rbac's refusal, passed on with its status and detail.
fn refused(status: reqwest::StatusCode, bytes: &[u8]) -> Problem {
    let body: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let detail = body
        .get("detail")
        .and_then(Value::as_str)
        .unwrap_or("no detail");
    let status = axum::http::StatusCode::from_u16(status.as_u16())
        .unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
    Problem::new(
        status,
        "approval request refused",
        format!("rbac refused: {detail}"),
    )
}
