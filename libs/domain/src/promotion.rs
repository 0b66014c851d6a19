//! Promotions: a set of service versions moved to compliant through the gates, in
//! dependency order, independent ones concurrently (seed 001 §3.2, seed 003 §2.5).
//!
//! A promotion is an aggregate. [`Promotion::step`] is its scheduler and decision in one
//! pure function: given the facts gathered for each version and the time, it returns the
//! events to record — targets started (at most `max_parallel` in flight; dependants only after
//! their dependencies in the set are compliant), gate evaluations (recorded when their
//! outcome or reason changes), compliance transitions, and the end of each target. A failure
//! blocks the failed target's dependants, with the reason, and leaves the others going.
//!
//! The orchestrator calls `step`, appends what it returns, and calls it again when something
//! changed (new events) or time passed. A restart does the same from the recorded events.

use crate::approval::ImpactLevel;
use crate::catalog::ServiceName;
use crate::compliance::{transition, ComplianceState, Requirement};
use crate::gates::{evaluate, requirements_met, Check, Evaluation, Gate, Outcome, TargetFacts};
use crate::graph::DependencyGraph;
use crate::policy::Policy;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;

/// Why a set of services cannot be ordered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("unknown service {0}: onboard it first")]
    Unknown(String),
    #[error("dependency cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    #[error("{0} is listed twice")]
    Duplicate(String),
}

/// The safe promotion order of `services` (dependencies first; ties by name), from the
/// catalog's graph (seed 001 §3.2 `compute_promotion_order`).
pub fn compute_promotion_order(
    graph: &DependencyGraph,
    services: &[ServiceName],
) -> Result<Vec<ServiceName>, OrderError> {
    let mut wanted = BTreeSet::new();
    for s in services {
        if !graph.contains(s) {
            return Err(OrderError::Unknown(s.to_string()));
        }
        if !wanted.insert(s.clone()) {
            return Err(OrderError::Duplicate(s.to_string()));
        }
    }
    let order = graph
        .topological_order()
        .map_err(|c| OrderError::Cycle(c.iter().map(ToString::to_string).collect()))?;
    Ok(order.into_iter().filter(|s| wanted.contains(s)).collect())
}

/// One version in a promotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TargetSpec {
    pub service: String,
    pub version: String,
    /// Every dependency in the catalog when requested (all must be compliant).
    pub dependencies: Vec<String>,
    /// Extra services the requester requires to be compliant (seed §5.2 `required`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required: Vec<String>,
    /// Informational (seed §5.2 `optional`): reported, never blocking.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub optional: Vec<String>,
    /// Evidence the requester cites (ids); when given, only these are considered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence_refs: Vec<String>,
    /// The owning team in the catalog when requested (the fact the ownership rule used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub owner: Option<crate::rbac::TeamName>,
}

impl TargetSpec {
    /// Every service that must be compliant first.
    pub fn must_be_compliant(&self) -> BTreeSet<&str> {
        self.dependencies
            .iter()
            .chain(&self.required)
            .map(String::as_str)
            .collect()
    }
}

/// The request as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Requested {
    /// In promotion order: dependencies first.
    pub targets: Vec<TargetSpec>,
    pub requester: String,
    /// The requester's teams when they asked (the facts the ownership rule used, with each
    /// target's `owner`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<String>)]
    pub requester_teams: Vec<crate::rbac::TeamName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// The rbac approval request the manual gate waits on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    pub impact: ImpactLevel,
    /// The policy in force, whole, so the decisions can be re-checked against it.
    pub policy: Policy,
    /// SHA3-256 of the policy file (hex).
    pub policy_digest: String,
    #[serde(default)]
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub requested_at: OffsetDateTime,
}

/// How a promotion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PromotionOutcome {
    /// Every version is compliant.
    Succeeded,
    /// Some are compliant, some failed or were blocked.
    PartiallySucceeded,
    Failed,
}

/// The events of a promotion stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum PromotionEvent {
    PromotionRequested(Box<Requested>),
    TargetStarted {
        service: String,
        version: String,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// One gate evaluated: its outcome (fail if any check failed, else missing if any data
    /// is missing, else pass) and every check with the facts it read.
    GateEvaluated {
        service: String,
        version: String,
        gate: Gate,
        outcome: Outcome,
        checks: Vec<Evaluation>,
    },
    /// The compliance state machine moved (`crate::compliance::transition` allowed it).
    TargetTransitioned {
        service: String,
        version: String,
        from: ComplianceState,
        to: ComplianceState,
        /// The requirements of `to`, all met.
        met: Vec<Requirement>,
    },
    TargetPromoted {
        service: String,
        version: String,
        /// Compliant before this promotion; nothing was re-decided.
        #[serde(default)]
        already_compliant: bool,
    },
    TargetFailed {
        service: String,
        version: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        check: Option<Check>,
        reason: String,
    },
    /// Not attempted: a dependency in the same promotion did not become compliant.
    TargetBlocked {
        service: String,
        version: String,
        by: String,
        reason: String,
    },
    PromotionCompleted {
        outcome: PromotionOutcome,
        promoted: Vec<String>,
        failed: Vec<String>,
        blocked: Vec<String>,
    },
}

impl PromotionEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::PromotionRequested(_) => "PromotionRequested",
            Self::TargetStarted { .. } => "TargetStarted",
            Self::GateEvaluated { .. } => "GateEvaluated",
            Self::TargetTransitioned { .. } => "TargetTransitioned",
            Self::TargetPromoted { .. } => "TargetPromoted",
            Self::TargetFailed { .. } => "TargetFailed",
            Self::TargetBlocked { .. } => "TargetBlocked",
            Self::PromotionCompleted { .. } => "PromotionCompleted",
        }
    }

    /// The service a target event is about.
    pub fn service(&self) -> Option<&str> {
        match self {
            Self::TargetStarted { service, .. }
            | Self::GateEvaluated { service, .. }
            | Self::TargetTransitioned { service, .. }
            | Self::TargetPromoted { service, .. }
            | Self::TargetFailed { service, .. }
            | Self::TargetBlocked { service, .. } => Some(service),
            Self::PromotionRequested(_) | Self::PromotionCompleted { .. } => None,
        }
    }
}

/// Where one target stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetStatus {
    #[default]
    Pending,
    Running,
    Promoted,
    Failed,
    Blocked,
}

impl TargetStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Promoted | Self::Failed | Self::Blocked)
    }
}

/// A target as folded from the events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TargetState {
    pub spec: TargetSpec,
    pub status: TargetStatus,
    /// The compliance state this promotion moved the version to, if it moved it.
    pub compliance: Option<ComplianceState>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub started_at: Option<OffsetDateTime>,
    /// The newest outcome and reason per check.
    #[schema(value_type = Object)]
    pub checks: BTreeMap<Check, (Outcome, String)>,
    /// Why it failed or was blocked.
    pub reason: Option<String>,
}

/// A promotion as folded from its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Promotion {
    #[schema(value_type = Option<Object>)]
    pub request: Option<Requested>,
    /// In promotion order.
    pub targets: Vec<TargetState>,
    pub outcome: Option<PromotionOutcome>,
}

impl Promotion {
    pub fn apply(&mut self, event: &PromotionEvent) {
        if let PromotionEvent::PromotionRequested(r) = event {
            self.targets = r
                .targets
                .iter()
                .map(|spec| TargetState {
                    spec: spec.clone(),
                    status: TargetStatus::Pending,
                    compliance: None,
                    started_at: None,
                    checks: BTreeMap::new(),
                    reason: None,
                })
                .collect();
            self.request = Some((**r).clone());
            return;
        }
        if let PromotionEvent::PromotionCompleted { outcome, .. } = event {
            self.outcome = Some(*outcome);
            return;
        }
        let Some(t) = event
            .service()
            .and_then(|s| self.targets.iter_mut().find(|t| t.spec.service == s))
        else {
            return;
        };
        match event {
            PromotionEvent::TargetStarted { at, .. } => {
                t.status = TargetStatus::Running;
                t.started_at = Some(*at);
            }
            PromotionEvent::GateEvaluated { checks, .. } => {
                for e in checks {
                    t.checks.insert(e.check, (e.outcome, e.detail.clone()));
                }
            }
            PromotionEvent::TargetTransitioned { to, .. } => t.compliance = Some(*to),
            PromotionEvent::TargetPromoted { .. } => t.status = TargetStatus::Promoted,
            PromotionEvent::TargetFailed { reason, .. } => {
                t.status = TargetStatus::Failed;
                t.reason = Some(reason.clone());
            }
            PromotionEvent::TargetBlocked { reason, .. } => {
                t.status = TargetStatus::Blocked;
                t.reason = Some(reason.clone());
            }
            PromotionEvent::PromotionRequested(_) | PromotionEvent::PromotionCompleted { .. } => {}
        }
    }

    pub fn target(&self, service: &str) -> Option<&TargetState> {
        self.targets.iter().find(|t| t.spec.service == service)
    }

    pub fn is_finished(&self) -> bool {
        self.outcome.is_some()
    }

    /// Targets whose dependencies in this promotion are all promoted and which have not
    /// ended: the ones [`Promotion::step`] may need facts for.
    pub fn needs_facts(&self) -> Vec<&TargetSpec> {
        self.targets
            .iter()
            .filter(|t| !t.status.is_terminal())
            .filter(|t| {
                self.in_set_dependencies(&t.spec).iter().all(|d| {
                    self.target(d)
                        .is_some_and(|d| d.status == TargetStatus::Promoted)
                })
            })
            .map(|t| &t.spec)
            .collect()
    }

    /// The target's dependencies that are themselves targets of this promotion.
    pub fn in_set_dependencies(&self, spec: &TargetSpec) -> Vec<String> {
        spec.must_be_compliant()
            .into_iter()
            .filter(|d| self.target(d).is_some())
            .map(str::to_owned)
            .collect()
    }

    /// Decides what happens now. `facts` holds what the gates read for (at least) every
    /// target of [`Promotion::needs_facts`]; `now` is the time of the decision.
    pub fn step(
        &self,
        facts: &BTreeMap<String, TargetFacts>,
        state_before: &dyn Fn(&TargetSpec) -> ComplianceState,
        now: OffsetDateTime,
    ) -> Vec<PromotionEvent> {
        let Some(request) = &self.request else {
            return Vec::new();
        };
        if self.is_finished() {
            return Vec::new();
        }
        let policy = &request.policy;
        let mut local = self.clone();
        let mut out = Vec::new();
        let mut emit = |local: &mut Promotion, e: PromotionEvent| {
            local.apply(&e);
            out.push(e);
        };
        let mut running = self
            .targets
            .iter()
            .filter(|t| t.status == TargetStatus::Running)
            .count();
        for i in 0..self.targets.len() {
            let spec = self.targets[i].spec.clone();
            let (service, version) = (spec.service.clone(), spec.version.clone());
            if local.targets[i].status == TargetStatus::Pending {
                let deps = self.in_set_dependencies(&spec);
                let broken = deps.iter().find_map(|d| {
                    local.target(d).and_then(|t| match t.status {
                        TargetStatus::Failed | TargetStatus::Blocked => {
                            Some((d.clone(), t.reason.clone().unwrap_or_default()))
                        }
                        _ => None,
                    })
                });
                if let Some((by, why)) = broken {
                    emit(
                        &mut local,
                        PromotionEvent::TargetBlocked {
                            reason: format!("dependency {by} did not become compliant: {why}"),
                            service,
                            version,
                            by,
                        },
                    );
                    continue;
                }
                // Dependencies must be compliant in what is recorded, not only in this step:
                // the dependant's check cites their committed events.
                let ready = deps.iter().all(|d| {
                    self.target(d)
                        .is_some_and(|t| t.status == TargetStatus::Promoted)
                });
                if !ready || running >= policy.scheduling.max_parallel as usize {
                    continue;
                }
                if !facts.contains_key(&service) {
                    continue;
                }
                running += 1;
                emit(
                    &mut local,
                    PromotionEvent::TargetStarted {
                        service: service.clone(),
                        version: version.clone(),
                        at: now,
                    },
                );
            }
            if local.targets[i].status != TargetStatus::Running {
                continue;
            }
            let Some(f) = facts.get(&service) else {
                continue;
            };
            let t = local.targets[i].clone();
            let state = t.compliance.unwrap_or_else(|| state_before(&spec));
            if t.compliance.is_none() && state == ComplianceState::Compliant {
                emit(
                    &mut local,
                    PromotionEvent::TargetPromoted {
                        service,
                        version,
                        already_compliant: true,
                    },
                );
                running = running.saturating_sub(1);
                continue;
            }
            let started = t.started_at.unwrap_or(now);
            let waited = (now - started).whole_seconds().max(0) as u64;
            // A gate's evaluation is recorded when any of its checks says something new.
            let record =
                |local: &mut Promotion,
                 evals: &[Evaluation],
                 emit: &mut dyn FnMut(&mut Promotion, PromotionEvent)| {
                    let mut gates: Vec<Gate> = evals.iter().map(|e| e.check.gate()).collect();
                    gates.dedup();
                    for gate in gates {
                        let checks: Vec<Evaluation> = evals
                            .iter()
                            .filter(|e| e.check.gate() == gate)
                            .cloned()
                            .collect();
                        let changed = checks.iter().any(|e| {
                            local.targets[i]
                                .checks
                                .get(&e.check)
                                .is_none_or(|(o, d)| *o != e.outcome || *d != e.detail)
                        });
                        if !changed {
                            continue;
                        }
                        let outcome = if checks.iter().any(|e| e.outcome == Outcome::Fail) {
                            Outcome::Fail
                        } else if checks.iter().any(|e| e.outcome == Outcome::Missing) {
                            Outcome::Missing
                        } else {
                            Outcome::Pass
                        };
                        emit(
                            local,
                            PromotionEvent::GateEvaluated {
                                service: spec.service.clone(),
                                version: spec.version.clone(),
                                gate,
                                outcome,
                                checks,
                            },
                        );
                    }
                };
            let mut end: Option<(Option<Check>, String)> = None;
            if state == ComplianceState::Sandbox || state == ComplianceState::ComplianceReady {
                // The blocking gates run until the version is compliance_ready (again when a
                // version already compliance_ready is promoted anew: evidence may have changed).
                let moved_here = t.compliance == Some(ComplianceState::ComplianceReady);
                if !moved_here {
                    let evals: Vec<Evaluation> = Check::BLOCKING
                        .iter()
                        .map(|c| evaluate(*c, policy, f, &request.requester))
                        .collect();
                    record(&mut local, &evals, &mut emit);
                    if let Some(e) = evals.iter().find(|e| e.outcome == Outcome::Fail) {
                        end = Some((Some(e.check), format!("{}: {}", e.check, e.detail)));
                    } else if let Some(e) = evals.iter().find(|e| e.outcome == Outcome::Missing) {
                        if waited >= policy.scheduling.missing_data_timeout_seconds {
                            end = Some((
                                Some(e.check),
                                format!(
                                    "{}: still missing after {waited} s: {}",
                                    e.check, e.detail
                                ),
                            ));
                        } else {
                            continue;
                        }
                    } else if state == ComplianceState::Sandbox {
                        let met = requirements_met(evals.iter().map(|e| e.check));
                        match transition(state, ComplianceState::ComplianceReady, &met) {
                            Ok(to) => emit(
                                &mut local,
                                PromotionEvent::TargetTransitioned {
                                    service: service.clone(),
                                    version: version.clone(),
                                    from: state,
                                    to,
                                    met: to.requirements().to_vec(),
                                },
                            ),
                            Err(e) => end = Some((None, e.to_string())),
                        }
                    }
                }
                if end.is_none() {
                    let e = evaluate(Check::ApprovalGranted, policy, f, &request.requester);
                    record(&mut local, std::slice::from_ref(&e), &mut emit);
                    match e.outcome {
                        Outcome::Pass => {
                            let passed = local.targets[i]
                                .checks
                                .iter()
                                .filter(|(_, (o, _))| *o == Outcome::Pass)
                                .map(|(c, _)| *c);
                            let met = requirements_met(passed);
                            match transition(
                                ComplianceState::ComplianceReady,
                                ComplianceState::Compliant,
                                &met,
                            ) {
                                Ok(to) => {
                                    emit(
                                        &mut local,
                                        PromotionEvent::TargetTransitioned {
                                            service: service.clone(),
                                            version: version.clone(),
                                            from: ComplianceState::ComplianceReady,
                                            to,
                                            met: to.requirements().to_vec(),
                                        },
                                    );
                                    emit(
                                        &mut local,
                                        PromotionEvent::TargetPromoted {
                                            service: service.clone(),
                                            version: version.clone(),
                                            already_compliant: false,
                                        },
                                    );
                                    running = running.saturating_sub(1);
                                }
                                Err(e) => end = Some((None, e.to_string())),
                            }
                        }
                        Outcome::Fail => {
                            end = Some((Some(e.check), format!("{}: {}", e.check, e.detail)));
                        }
                        Outcome::Missing => {
                            if waited >= policy.scheduling.approval_timeout_seconds {
                                end = Some((
                                    Some(e.check),
                                    format!(
                                        "{}: no decision after {waited} s: {}",
                                        e.check, e.detail
                                    ),
                                ));
                            }
                        }
                    }
                }
            }
            if let Some((check, reason)) = end {
                emit(
                    &mut local,
                    PromotionEvent::TargetFailed {
                        service,
                        version,
                        check,
                        reason,
                    },
                );
                running = running.saturating_sub(1);
            }
        }
        if local.targets.iter().all(|t| t.status.is_terminal()) {
            let names = |s: TargetStatus| -> Vec<String> {
                local
                    .targets
                    .iter()
                    .filter(|t| t.status == s)
                    .map(|t| t.spec.service.clone())
                    .collect()
            };
            let (promoted, failed, blocked) = (
                names(TargetStatus::Promoted),
                names(TargetStatus::Failed),
                names(TargetStatus::Blocked),
            );
            let outcome = if failed.is_empty() && blocked.is_empty() {
                PromotionOutcome::Succeeded
            } else if promoted.is_empty() {
                PromotionOutcome::Failed
            } else {
                PromotionOutcome::PartiallySucceeded
            };
            emit(
                &mut local,
                PromotionEvent::PromotionCompleted {
                    outcome,
                    promoted,
                    failed,
                    blocked,
                },
            );
        }
        out
    }
}

#[cfg(test)]
mod tests;
