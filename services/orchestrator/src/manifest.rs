//! Package manifests (seed 001 §3.5): what a package promotion decided and every fact it
//! rests on — services and versions, their evidence and SBOMs by digest, each gate's result,
//! the approval — each cited by event id, position and record digest, so an auditor holding
//! inclusion proofs of those events can check the release offline. The manifest is signed by
//! the orchestrator's key as a DSSE envelope and recorded on the chain.

use crate::views::{fact_of, Data};
use goose_domain::evidence::EvidenceKind;
use goose_domain::gates::FactRef;
use goose_domain::package::{Envelope, Package, PackageEvent, MANIFEST_PAYLOAD_TYPE};
use goose_domain::promotion::PromotionEvent;
use goose_ledger::{NoteKey, RecordedEvent};
use serde_json::{json, Value};
use sha3::{Digest as _, Sha3_256};
use std::collections::BTreeMap;

/// The manifest's schema name.
pub const SCHEMA: &str = "golden-goose/package-manifest/v1";

/// Builds the manifest of `promotion_id` (its events in order) for `package_id`.
pub fn build(
    package_id: &str,
    package: &Package,
    promotion_id: &str,
    events: &[RecordedEvent],
    data: &Data,
) -> Value {
    let mut cited: BTreeMap<u64, FactRef> = BTreeMap::new();
    let mut services: BTreeMap<String, Value> = BTreeMap::new();
    let mut request = Value::Null;
    let mut outcome = Value::Null;
    for m in &package.members {
        services.insert(
            m.service.clone(),
            json!({"service": m.service, "version": m.version, "status": "pending",
                   "gates": [], "transitions": [], "evidence": [], "sboms": []}),
        );
    }
    let mut evidence_cited: BTreeMap<String, Vec<FactRef>> = BTreeMap::new();
    for ev in events {
        let fact = fact_of("promotion", ev, ev.event_type.clone());
        cited.insert(ev.position, fact.clone());
        let Ok(e) = ev.payload_as::<PromotionEvent>() else {
            continue;
        };
        match &e {
            PromotionEvent::PromotionRequested(r) => {
                request = json!({
                    "event": fact, "requester": r.requester, "approval_id": r.approval_id,
                    "impact": r.impact, "policy_digest": r.policy_digest,
                    "requested_at": r.requested_at.to_string(),
                });
            }
            PromotionEvent::GateEvaluated {
                service,
                gate,
                outcome: gate_outcome,
                checks,
                ..
            } => {
                for i in checks.iter().flat_map(|c| &c.inputs) {
                    if let Some(p) = i.position {
                        cited.entry(p).or_insert_with(|| i.clone());
                    }
                    if i.kind == "evidence" {
                        evidence_cited
                            .entry(service.clone())
                            .or_default()
                            .push(i.clone());
                    }
                }
                if let Some(s) = services.get_mut(service) {
                    push(
                        s,
                        "gates",
                        json!({"gate": gate, "outcome": gate_outcome,
                        "checks": checks, "event": fact}),
                    );
                }
            }
            PromotionEvent::TargetTransitioned {
                service,
                from,
                to,
                met,
                ..
            } => {
                if let Some(s) = services.get_mut(service) {
                    push(
                        s,
                        "transitions",
                        json!({"from": from, "to": to, "met": met, "event": fact}),
                    );
                    s["compliance"] = json!(to);
                }
            }
            PromotionEvent::TargetPromoted {
                service,
                already_compliant,
                ..
            } => {
                if let Some(s) = services.get_mut(service) {
                    s["status"] = json!("promoted");
                    s["already_compliant"] = json!(already_compliant);
                }
            }
            PromotionEvent::TargetFailed {
                service, reason, ..
            } => {
                if let Some(s) = services.get_mut(service) {
                    s["status"] = json!("failed");
                    s["reason"] = json!(reason);
                }
            }
            PromotionEvent::TargetBlocked {
                service, reason, ..
            } => {
                if let Some(s) = services.get_mut(service) {
                    s["status"] = json!("blocked");
                    s["reason"] = json!(reason);
                }
            }
            PromotionEvent::PromotionCompleted { outcome: o, .. } => {
                outcome = json!({"outcome": o, "event": fact});
            }
            PromotionEvent::TargetStarted { .. } => {}
        }
    }
    for m in &package.members {
        let Some(s) = services.get_mut(&m.service) else {
            continue;
        };
        let entries = data
            .evidence
            .get(&(m.service.clone(), m.version.clone()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut seen = std::collections::BTreeSet::new();
        for f in evidence_cited.get(&m.service).into_iter().flatten() {
            if !seen.insert(f.id.clone()) {
                continue;
            }
            let Some(e) = entries.iter().find(|e| e.fact.id == f.id) else {
                continue;
            };
            let item = json!({"kind": e.record.kind, "filename": e.record.filename,
                "blob_digest": e.record.digest, "size": e.record.size,
                "summary": e.record.summary, "event": f});
            if matches!(e.record.kind, EvidenceKind::Cyclonedx | EvidenceKind::Spdx) {
                push(s, "sboms", item.clone());
            }
            push(s, "evidence", item);
        }
    }
    let approval = request
        .get("approval_id")
        .and_then(Value::as_str)
        .and_then(|id| data.approvals.get(id).map(|a| (id, a)))
        .map(|(id, a)| {
            json!({"id": id, "status": a.request.status, "requester": a.request.requester,
                   "approvers": a.request.approvers, "newest_event": a.fact})
        });
    json!({
        "schema": SCHEMA,
        "package": {"id": package_id, "version": package.version, "created_by": package.created_by},
        "promotion": {"id": promotion_id, "request": request, "completed": outcome},
        "approval": approval,
        "services": package.members.iter().filter_map(|m| services.remove(&m.service)).collect::<Vec<_>>(),
        "cited_events": cited.into_values().collect::<Vec<_>>(),
    })
}

fn push(v: &mut Value, key: &str, item: Value) {
    if let Some(a) = v.get_mut(key).and_then(Value::as_array_mut) {
        a.push(item);
    }
}

/// Signs the manifest into the event that records it.
pub fn sign(
    promotion_id: &str,
    manifest: &Value,
    key: &NoteKey,
) -> Result<PackageEvent, goose_ledger::Error> {
    let payload = serde_json::to_vec(manifest)
        .map_err(|e| goose_ledger::Error::InvalidInput(format!("manifest: {e}")))?;
    let envelope = goose_evidence::dsse::sign(
        MANIFEST_PAYLOAD_TYPE,
        &payload,
        key.key_id(),
        key.signing_key(),
    );
    let envelope: Envelope = serde_json::from_value(envelope)
        .map_err(|e| goose_ledger::Error::InvalidInput(format!("envelope: {e}")))?;
    Ok(PackageEvent::PackageManifestSigned {
        promotion_id: promotion_id.to_owned(),
        manifest_digest: hex::encode(Sha3_256::digest(&payload)),
        envelope,
    })
}
