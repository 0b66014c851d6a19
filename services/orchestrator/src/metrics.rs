//! The orchestrator's metrics (defined in the catalog, `goose_metrics`), and the gauges it
//! computes from its read models when Prometheus scrapes.

pub use goose_metrics::promotion::{
    DURATION as PROMOTION_SECONDS, GATE_EVALUATIONS, PARALLEL_EFFICIENCY,
    REQUESTED as PROMOTIONS_REQUESTED, STEP_RETRIES as DRIVER_RETRIES, TARGETS_ENDED,
};
/// Counter: checkpoint rows the chain watch found that the log key did not sign (intrusions).
pub use goose_platform::chain_watch::CHAIN_INTRUSIONS;

use crate::views::Views;
use goose_domain::approval::ApprovalStatus;
use goose_domain::catalog::ComplianceMode;
use goose_domain::compliance::ComplianceState;
use goose_domain::promotion::TargetStatus;
use goose_metrics::promotion as m;
use std::collections::BTreeMap;

const TARGET_STATUSES: [(TargetStatus, &str); 5] = [
    (TargetStatus::Pending, "pending"),
    (TargetStatus::Running, "running"),
    (TargetStatus::Promoted, "promoted"),
    (TargetStatus::Failed, "failed"),
    (TargetStatus::Blocked, "blocked"),
];
const MODES: [ComplianceMode; 2] = [ComplianceMode::Sandbox, ComplianceMode::Compliant];

/// Sets the read-model gauges (compliance states, promotion status, dependency edges, modes,
/// running promotions and pending approvals) from the views, as of now.
pub fn export(views: &Views) {
    let data = views.read();
    for ((service, version), (state, _)) in &data.compliance {
        for s in ComplianceState::ALL {
            m::COMPLIANCE_STATE
                .gauge(&[service, version, s.as_str()])
                .set(if s == *state { 1.0 } else { 0.0 });
        }
    }
    for entry in data.catalog.entries() {
        let def = &entry.definition;
        for (kind, dep) in def.spec.dependencies.all() {
            m::DEPENDENCIES
                .gauge(&[def.name.as_str(), dep.as_str(), kind])
                .set(1.0);
        }
        for mode in MODES {
            m::SERVICE_MODE
                .gauge(&[def.name.as_str(), mode.as_str()])
                .set(if def.spec.compliance_mode == mode {
                    1.0
                } else {
                    0.0
                });
        }
    }
    // Each service's newest target: promotions are keyed by time-ordered ids (UUIDv7).
    let mut newest: BTreeMap<&str, TargetStatus> = BTreeMap::new();
    let now = time::OffsetDateTime::now_utc();
    let (mut running, mut oldest_running) = (0u64, 0f64);
    let (mut waiting, mut oldest_waiting) = (0u64, 0f64);
    for p in data.promotions.values() {
        for t in &p.targets {
            newest.insert(&t.spec.service, t.status);
        }
        let Some(request) = &p.request else { continue };
        if p.outcome.is_some() {
            continue;
        }
        let age = (now - request.requested_at).as_seconds_f64().max(0.0);
        running += 1;
        oldest_running = oldest_running.max(age);
        let pending = request
            .approval_id
            .as_ref()
            .and_then(|id| data.approvals.get(id))
            .is_some_and(|a| a.request.status == ApprovalStatus::Pending);
        if pending {
            waiting += 1;
            oldest_waiting = oldest_waiting.max(age);
        }
    }
    for (service, status) in newest {
        for (s, label) in TARGET_STATUSES {
            m::STATUS
                .gauge(&[service, label])
                .set(if s == status { 1.0 } else { 0.0 });
        }
    }
    m::RUNNING.gauge(&[]).set(running as f64);
    m::OLDEST_RUNNING_AGE.gauge(&[]).set(oldest_running);
    m::APPROVALS_PENDING.gauge(&[]).set(waiting as f64);
    m::OLDEST_APPROVAL_AGE.gauge(&[]).set(oldest_waiting);
}
