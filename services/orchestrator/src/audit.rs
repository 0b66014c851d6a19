//! Audit exports (seed 001 §3.1 per service, §3.4 per promotion), built from recorded events
//! only. Every file names the chain facts it states (event id, position, digest); the index
//! of the whole export — each file's path, SHA-256 (documents) or SHA3-256 (evidence blobs,
//! their address in the blob store) and facts — is signed by this orchestrator (DSSE). The
//! client fetches each fact's tlog-proof and writes it beside the file; `goosectl audit
//! verify` then checks the export offline against the log's key and the signer's.
//!
//! Pure functions of what the handlers gathered: no I/O here.

use crate::views::{ApprovalEntry, EvidenceEntry};
use goose_domain::catalog::CatalogEntry;
use goose_domain::evidence::EvidenceKind;
use goose_domain::gates::FactRef;
use goose_ledger::{NoteKey, RecordedEvent};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::Digest as _;
use std::collections::BTreeMap;

/// DSSE payload type of an export's index.
pub const INDEX_PAYLOAD_TYPE: &str = "application/vnd.golden-goose.audit-index+json";

/// One promotion as recorded, with what the export needs of it.
#[derive(Debug)]
pub struct Recorded {
    pub id: String,
    pub events: Vec<RecordedEvent>,
    pub approval: Option<ApprovalEntry>,
    /// The signed VSA of each target it promoted, by service.
    pub vsa: BTreeMap<String, Value>,
}

/// A service's exportable state.
#[derive(Debug)]
pub struct ServiceRecords<'a> {
    pub service: &'a str,
    pub catalog: Option<&'a CatalogEntry>,
    pub evidence: Vec<&'a EvidenceEntry>,
    /// `(version, state, the fact that set it)`.
    pub compliance: Vec<(String, String, FactRef)>,
}

/// What a file holds: a rendered document (its bytes travel in the export) or an evidence
/// blob (fetched from the evidence service by its SHA3-256 address).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Content {
    Document { sha256: String },
    Blob { sha3_256: String, size: u64 },
}

/// One file of the export, as the index lists it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IndexEntry {
    pub path: String,
    #[serde(flatten)]
    pub content: Content,
    /// The chain facts the file states; each has a tlog-proof at
    /// `{path}.proofs/{id}.tlog-proof`.
    pub facts: Vec<FactRef>,
}

/// An export under construction.
#[derive(Debug, Default)]
pub struct Export {
    pub entries: Vec<IndexEntry>,
    /// The documents' bytes, by path.
    pub documents: BTreeMap<String, String>,
}

fn event_fact(kind: &str, ev: &RecordedEvent) -> FactRef {
    crate::views::fact_of(kind, ev, ev.event_type.clone())
}

fn payload(ev: &RecordedEvent) -> Value {
    serde_json::from_slice(&ev.payload).unwrap_or(Value::Null)
}

/// An event as the explain view shows it.
fn shown(ev: &RecordedEvent) -> Value {
    json!({
        "event_id": ev.event_id.to_string(),
        "position": ev.position,
        "digest": hex::encode(ev.digest),
        "event_type": ev.event_type,
        "actor": ev.metadata.actor,
        "recorded_at": ev.metadata.recorded_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "event": payload(ev),
    })
}

/// Whether a record made at `at` is still inside `keep_days` of `now`: how long audit records
/// stay visible in exports (org-config `retention.audit_log_days`).
pub fn within_retention(
    at: time::OffsetDateTime,
    now: time::OffsetDateTime,
    keep_days: u64,
) -> bool {
    let keep = time::Duration::days(i64::try_from(keep_days.min(1_000_000)).unwrap_or(1_000_000));
    at >= now - keep
}

/// The `YYYYMMDD` of a time (the seed's day folders).
fn day(t: time::OffsetDateTime) -> String {
    format!("{:04}{:02}{:02}", t.year(), u8::from(t.month()), t.day())
}

impl Export {
    fn document(&mut self, path: String, value: &Value, facts: Vec<FactRef>) {
        let text = serde_json::to_string_pretty(value).unwrap_or_default() + "\n";
        self.text(path, text, facts);
    }

    fn text(&mut self, path: String, text: String, mut facts: Vec<FactRef>) {
        facts.dedup_by(|a, b| a.id == b.id);
        let sha256 = hex::encode(sha2::Sha256::digest(text.as_bytes()));
        self.entries.push(IndexEntry {
            path: path.clone(),
            content: Content::Document { sha256 },
            facts,
        });
        self.documents.insert(path, text);
    }

    fn blob(&mut self, path: String, e: &EvidenceEntry) {
        self.entries.push(IndexEntry {
            path,
            content: Content::Blob {
                sha3_256: e.record.digest.clone(),
                size: e.record.size,
            },
            facts: vec![e.fact.clone()],
        });
    }

    /// One promotion for `service` in both layouts: §3.1
    /// `audit/services/{service}/promotions/{id}/` and §3.4
    /// `audit/promotions/{service}/{YYYYMMDD}/{id}/{request,validation,evidence,approval}/`.
    pub fn promotion(&mut self, service: &str, p: &Recorded) {
        let Some(requested) = p
            .events
            .iter()
            .find(|e| e.event_type == "PromotionRequested")
        else {
            return;
        };
        let req = payload(requested);
        let mine = |e: &&RecordedEvent| payload(e)["service"] == service;
        let target = req["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["service"] == service)
            .cloned()
            .unwrap_or(Value::Null);
        let request = json!({
            "promotion": p.id,
            "target": target,
            "requester": req["requester"],
            "reason": req["reason"],
            "impact": req["impact"],
            "package": req["package"],
            "requested_at": req["requested_at"],
            "policy_digest": req["policy_digest"],
            "policy": req["policy"],
            "event": shown(requested),
        });
        let request_facts = vec![event_fact("promotion", requested)];
        let gates: Vec<&RecordedEvent> = p
            .events
            .iter()
            .filter(|e| e.event_type == "GateEvaluated")
            .filter(mine)
            .collect();
        let validation: Vec<Value> = gates.iter().map(|e| shown(e)).collect();
        let validation_facts: Vec<FactRef> =
            gates.iter().map(|e| event_fact("promotion", e)).collect();
        let ends: Vec<&RecordedEvent> = p
            .events
            .iter()
            .filter(|e| {
                matches!(
                    e.event_type.as_str(),
                    "TargetTransitioned" | "TargetPromoted" | "TargetFailed" | "TargetBlocked"
                )
            })
            .filter(mine)
            .collect();
        let outcome: Vec<Value> = ends.iter().map(|e| shown(e)).collect();
        let outcome_facts: Vec<FactRef> = ends.iter().map(|e| event_fact("promotion", e)).collect();
        // The evidence the gates cited, by event id, each with its own fact.
        let mut cited: BTreeMap<String, Value> = BTreeMap::new();
        for g in &gates {
            for c in payload(g)["checks"].as_array().into_iter().flatten() {
                for f in c["inputs"].as_array().into_iter().flatten() {
                    if f["kind"] == "evidence" && f["position"].is_u64() {
                        if let Some(id) = f["id"].as_str() {
                            cited.insert(id.to_owned(), f.clone());
                        }
                    }
                }
            }
        }
        let (approval, approval_facts) = match &p.approval {
            Some(a) => (
                json!({"id": req["approval_id"], "request": a.request, "event": a.fact}),
                vec![a.fact.clone()],
            ),
            None => (Value::Null, vec![]),
        };
        let when = requested.metadata.recorded_at;
        let per_service = format!("audit/services/{service}/promotions/{}", p.id);
        let per_promotion = format!("audit/promotions/{service}/{}/{}", day(when), p.id);
        for base in [&per_service, &per_promotion] {
            let layout = |sub: &str, file: &str| {
                if base == &per_service {
                    format!("{base}/{file}")
                } else {
                    format!("{base}/{sub}/{file}")
                }
            };
            self.document(
                layout("request", "request.json"),
                &request,
                request_facts.clone(),
            );
            self.document(
                layout("validation", "validation.json"),
                &json!(validation),
                validation_facts.clone(),
            );
            self.document(
                layout("validation", "outcome.json"),
                &json!(outcome),
                outcome_facts.clone(),
            );
            self.document(
                layout("approval", "approval.json"),
                &approval,
                approval_facts.clone(),
            );
        }
        if let Some(vsa) = p.vsa.get(service) {
            let promoted: Vec<FactRef> = ends
                .iter()
                .filter(|e| e.event_type == "TargetPromoted")
                .map(|e| event_fact("promotion", e))
                .collect();
            self.document(
                format!("{per_service}/vsa.dsse.json"),
                &vsa["envelope"],
                promoted.clone(),
            );
            self.document(
                format!("{per_promotion}/validation/vsa.dsse.json"),
                &vsa["envelope"],
                promoted,
            );
        }
        for (id, fact) in &cited {
            let f: FactRef = serde_json::from_value(fact.clone()).unwrap_or_default();
            self.document(format!("{per_promotion}/evidence/{id}.json"), fact, vec![f]);
        }
    }

    /// The service's §3.1 tree: `specs/{version}/{api.yaml,dependencies.yaml,compliance.json}`
    /// and `evidence/{YYYYMMDD}/{folder}/{version}-{file}` (+ `.summary.json`).
    pub fn service(&mut self, s: &ServiceRecords<'_>, promotions: &[Recorded]) {
        let root = format!("audit/services/{}", s.service);
        let mut versions: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        for e in &s.evidence {
            let r = &e.record;
            versions.insert(r.version.clone());
            let file = if r.filename.is_empty() {
                "evidence"
            } else {
                r.filename.as_str()
            };
            let folder = format!(
                "{root}/evidence/{}/{}",
                day(r.submitted_at),
                r.kind.layout_folder()
            );
            self.blob(format!("{folder}/{}-{file}", r.version), e);
            self.document(
                format!("{folder}/{}-{file}.summary.json", r.version),
                &serde_json::to_value(r).unwrap_or(Value::Null),
                vec![e.fact.clone()],
            );
        }
        versions.extend(s.compliance.iter().map(|(v, _, _)| v.clone()));
        for v in &versions {
            let dir = format!("{root}/specs/{v}");
            // api.yaml: the newest OpenAPI document submitted for the version (JSON is YAML).
            if let Some(api) = s
                .evidence
                .iter()
                .filter(|e| e.record.kind == EvidenceKind::Openapi && &e.record.version == v)
                .max_by_key(|e| e.fact.position)
            {
                self.blob(format!("{dir}/api.yaml"), api);
            }
            if let Some(c) = s.catalog {
                let deps =
                    serde_json::to_value(&c.definition.spec.dependencies).unwrap_or(Value::Null);
                self.document(
                    format!("{dir}/dependencies.yaml"),
                    &json!({"service": s.service, "catalog_revision": c.revision, "dependencies": deps}),
                    vec![],
                );
            }
            let state = s.compliance.iter().find(|(ver, _, _)| ver == v);
            let history: Vec<&RecordedEvent> = promotions
                .iter()
                .flat_map(|p| &p.events)
                .filter(|e| {
                    e.event_type == "TargetTransitioned" && {
                        let p = payload(e);
                        p["service"] == s.service && p["version"] == v.as_str()
                    }
                })
                .collect();
            let mut facts: Vec<FactRef> =
                history.iter().map(|e| event_fact("promotion", e)).collect();
            if let Some((_, _, f)) = state {
                facts.push(f.clone());
            }
            self.document(
                format!("{dir}/compliance.json"),
                &json!({
                    "service": s.service,
                    "version": v,
                    "state": state.map_or("sandbox", |(_, st, _)| st.as_str()),
                    "since": state.map(|(_, _, f)| f),
                    "history": history.iter().map(|e| shown(e)).collect::<Vec<_>>(),
                    "compliance_mode": s.catalog.map(|c| c.definition.spec.compliance_mode),
                }),
                facts,
            );
        }
        for p in promotions {
            self.promotion(s.service, p);
        }
    }

    /// The signed index and the documents, as the export API answers.
    pub fn finish(mut self, scope: Value, exported_by: &str, key: &NoteKey) -> Value {
        self.entries.sort_by(|a, b| a.path.cmp(&b.path));
        self.entries.dedup_by(|a, b| a.path == b.path);
        let index = json!({
            "kind": "golden-goose/audit-export/v1",
            "scope": scope,
            "exported_at": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "exported_by": exported_by,
            "files": self.entries,
        });
        let payload = serde_json::to_vec(&index).unwrap_or_default();
        let envelope = goose_evidence::dsse::sign(
            INDEX_PAYLOAD_TYPE,
            &payload,
            key.key_id(),
            key.signing_key(),
        );
        json!({
            "envelope": envelope,
            "signer_vkey": key.vkey(),
            "documents": self.documents,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{day, within_retention};
    use time::macros::datetime;

    #[test]
    fn day_folders_are_yyyymmdd() {
        assert_eq!(day(datetime!(2026-01-05 23:59 UTC)), "20260105");
    }

    #[test]
    fn audit_records_stay_visible_for_audit_log_days() {
        let now = datetime!(2026-12-03 12:00 UTC);
        assert!(within_retention(datetime!(2026-12-01 12:00 UTC), now, 7));
        assert!(within_retention(datetime!(2026-11-26 12:00 UTC), now, 7));
        assert!(!within_retention(
            datetime!(2026-11-26 11:59:59 UTC),
            now,
            7
        ));
        assert!(!within_retention(datetime!(2019-01-01 0:00 UTC), now, 2555));
        assert!(within_retention(
            datetime!(1970-01-01 0:00 UTC),
            now,
            u64::MAX
        ));
    }
}
