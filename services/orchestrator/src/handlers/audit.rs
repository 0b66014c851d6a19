//! The audit export API (`audit.read`): a service's or one promotion's audit record, with a
//! signed index naming every file and the chain facts it states (see [`crate::audit`]).

use crate::audit::{Export, Recorded, ServiceRecords};
use crate::handlers::promotions::{catch_up, parse_id, recorded};
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
use goose_domain::catalog::ServiceName;
use goose_runtime::auth::Caller;
use goose_runtime::problem::Problem;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A promotion's events, approval and signed verification summaries.
async fn gather(s: &AppState, id: &str) -> Result<Recorded, Problem> {
    let events = recorded(s, "promotion", id).await?;
    let approval_id = events
        .iter()
        .find(|e| e.event_type == "PromotionRequested")
        .and_then(|e| serde_json::from_slice::<Value>(&e.payload).ok())
        .and_then(|v| v["approval_id"].as_str().map(str::to_owned));
    let approval = approval_id.and_then(|a| s.engine.views.read().approvals.get(&a).cloned());
    let key = s.engine.platform.ledger.key();
    let verifier = format!("https://golden-goose.dev/orchestrator/{}", key.key_id());
    let mut vsa = BTreeMap::new();
    for e in events.iter().filter(|e| e.event_type == "TargetPromoted") {
        let service = serde_json::from_slice::<Value>(&e.payload)
            .ok()
            .and_then(|v| v["service"].as_str().map(str::to_owned));
        if let Some(service) = service {
            if let Ok(st) = crate::vsa::statement(id, &service, &events, &verifier) {
                vsa.insert(service, json!({"envelope": crate::vsa::envelope(&st, key)}));
            }
        }
    }
    Ok(Recorded {
        id: id.to_owned(),
        events,
        approval,
        vsa,
    })
}

/// `GET /v1/audit/promotions/{id}/export`: one promotion, every target, both layouts.
pub(crate) async fn export_promotion(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let id = parse_id("promotion", &id)?;
    catch_up(&s).await?;
    let p = gather(&s, &id).await?;
    let services: Vec<String> = p
        .events
        .iter()
        .find(|e| e.event_type == "PromotionRequested")
        .and_then(|e| serde_json::from_slice::<Value>(&e.payload).ok())
        .map(|v| {
            v["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["service"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut export = Export::default();
    for service in &services {
        export.promotion(service, &p);
    }
    Ok(Json(export.finish(
        json!({"promotion": id, "services": services}),
        &caller.user,
        s.engine.platform.ledger.key(),
    )))
}

/// `GET /v1/audit/services/{service}/export`: the service's §3.1 tree and every promotion of
/// it still inside `retention.audit_log_days`.
pub(crate) async fn export_service(
    State(s): State<AppState>,
    caller: Caller,
    Path(service): Path<String>,
) -> Result<Json<Value>, Problem> {
    let name = ServiceName::parse(&service).map_err(Problem::bad_request)?;
    catch_up(&s).await?;
    let (ids, keep_days, expired) = {
        let data = s.engine.views.read();
        if data.catalog.get(&name).is_none() {
            return Err(Problem::not_found(format!(
                "service {service} is not in the catalog"
            )));
        }
        let keep_days = data.org.retention.audit_log_days;
        let now = time::OffsetDateTime::now_utc();
        let mut ids = Vec::new();
        let mut expired = 0usize;
        for (id, p) in &data.promotions {
            let Some(r) = &p.request else { continue };
            if !r.targets.iter().any(|t| t.service == service) {
                continue;
            }
            if !crate::audit::within_retention(r.requested_at, now, u64::from(keep_days)) {
                expired += 1;
            } else {
                ids.push(id.clone());
            }
        }
        (ids, keep_days, expired)
    };
    let mut promotions = Vec::with_capacity(ids.len());
    for id in &ids {
        promotions.push(gather(&s, id).await?);
    }
    let data = s.engine.views.read();
    let evidence = data
        .evidence
        .iter()
        .filter(|((svc, _), _)| svc == &service)
        .flat_map(|(_, es)| es.iter())
        .collect();
    let compliance = data
        .compliance
        .iter()
        .filter(|((svc, _), _)| svc == &service)
        .map(|((_, v), (st, f))| (v.clone(), st.as_str().to_owned(), f.clone()))
        .collect();
    let records = ServiceRecords {
        service: &service,
        catalog: data.catalog.get(&name),
        evidence,
        compliance,
    };
    let mut export = Export::default();
    export.service(&records, &promotions);
    Ok(Json(export.finish(
        json!({"service": service, "retention_audit_log_days": keep_days, "promotions": ids, "promotions_past_retention": expired}),
        &caller.user,
        s.engine.platform.ledger.key(),
    )))
}
