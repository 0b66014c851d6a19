//! What the gates decide on: the facts about each target of a promotion, gathered from the
//! read models. A pure function of the view's data, the promotion, the chain's status and the
//! moment (for SLA staging windows) — no I/O (the authorship of cited events is checked afterwards, by the engine).

use crate::views::{Data, EvidenceEntry};
use goose_domain::gates::{
    ApprovalFact, ChainFact, DependencyFact, EvidenceFact, FactRef, SlaFacts, TargetFacts,
};
use goose_domain::promotion::Promotion;
use std::collections::{BTreeMap, HashMap};

/// The promotion the facts are for.
#[derive(Debug)]
pub struct Subject<'a> {
    pub id: &'a str,
    pub promotion: &'a Promotion,
    /// Services this promotion made compliant already, with the event that says so.
    pub compliant_events: &'a HashMap<String, FactRef>,
}

fn evidence_fact(e: &EvidenceEntry) -> EvidenceFact {
    EvidenceFact {
        fact: e.fact.clone(),
        kind: e.record.kind,
        filename: e.record.filename.clone(),
        summary: e.record.summary.clone(),
    }
}

/// The facts of every target that needs them now, by service.
pub fn gather(
    data: &Data,
    subject: &Subject<'_>,
    chain: &ChainFact,
    keyring_configured: bool,
    sla_at: Option<i64>,
) -> BTreeMap<String, TargetFacts> {
    let Some(request) = &subject.promotion.request else {
        return BTreeMap::new();
    };
    let policy = FactRef {
        kind: "policy".into(),
        id: request.policy_digest.clone(),
        position: None,
        digest: Some(request.policy_digest.clone()),
        note: "promotion policy (SHA3-256 of the file)".into(),
    };
    let approval = request
        .approval_id
        .as_ref()
        .and_then(|id| {
            data.approvals.get(id).map(|a| ApprovalFact {
                id: id.clone(),
                fact: a.fact.clone(),
                status: a.request.status,
                subject: a.request.subject.clone(),
                requester: a.request.requester.clone(),
                approvers: a.request.approvers.clone(),
                required: a.request.required_approvers,
                rejected_by: a.request.rejected_by.clone(),
                rejection_reason: a.request.rejection_reason.clone(),
            })
        })
        // An approval for some other subject proves nothing about this promotion.
        .filter(|a| a.subject == format!("promotion:{}", subject.id));
    let mut out = BTreeMap::new();
    for spec in subject.promotion.needs_facts() {
        let dependencies = spec
            .must_be_compliant()
            .into_iter()
            .map(|dep| DependencyFact {
                service: dep.to_owned(),
                critical_incidents: data
                    .critical_breaches(dep)
                    .into_iter()
                    .map(|i| i.fact.clone())
                    .collect(),
                compliant: subject
                    .compliant_events
                    .get(dep)
                    .map(|f| {
                        let v = subject
                            .promotion
                            .target(dep)
                            .map(|t| t.spec.version.clone())
                            .unwrap_or_default();
                        (v, f.clone())
                    })
                    .or_else(|| data.compliant.get(dep).cloned()),
            })
            .collect();
        let entries = data
            .evidence
            .get(&(spec.service.clone(), spec.version.clone()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let evidence: Vec<EvidenceFact> = if spec.evidence_refs.is_empty() {
            // The newest file per kind and name: a re-upload replaces, a second file adds.
            let mut newest: BTreeMap<(String, String), &EvidenceEntry> = BTreeMap::new();
            for e in entries {
                newest.insert((e.record.kind.to_string(), e.record.filename.clone()), e);
            }
            newest.into_values().map(evidence_fact).collect()
        } else {
            entries
                .iter()
                .filter(|e| {
                    spec.evidence_refs
                        .iter()
                        .any(|r| *r == e.record.id || *r == e.record.digest)
                })
                .map(evidence_fact)
                .collect()
        };
        out.insert(
            spec.service.clone(),
            TargetFacts {
                service: spec.service.clone(),
                version: spec.version.clone(),
                dependencies,
                evidence,
                chain: chain.clone(),
                keyring_configured,
                signatures: Vec::new(),
                approval: approval.clone(),
                policy: policy.clone(),
                packaging: request.package.as_ref().map(|_| data.org.packaging.clone()),
                sla: sla_at.map(|at| SlaFacts {
                    at,
                    slos: data
                        .slos
                        .get(&spec.service)
                        .map(|m| m.values().cloned().collect())
                        .unwrap_or_default(),
                    summaries: data
                        .measurements
                        .get(&(spec.service.clone(), spec.version.clone()))
                        .cloned()
                        .unwrap_or_default(),
                }),
            },
        );
    }
    out
}
