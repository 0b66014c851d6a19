//! Events of other services that mean an incident: a promotion whose SAST or vulnerability
//! check failed (`security_finding`), a promotion that failed (`promotion_failure`), an
//! approval action the rules refused — self-approval, a missing permission
//! (`unauthorized_access`). Each maps to a cause; the sla service's evaluator opens one
//! incident per cause and records later occurrences on it, citing the events by position.

use super::incident::{IncidentSeverity, IncidentType};
use crate::approval::ApprovalEvent;
use crate::gates::{Check, Outcome};
use crate::promotion::{PromotionEvent, PromotionOutcome};

/// An occurrence of an incident's cause.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Signal {
    /// One open incident per cause.
    pub cause: String,
    pub kind: IncidentType,
    pub severity: IncidentSeverity,
    pub title: String,
    pub service: Option<String>,
}

/// What a promotion event (of promotion `id`) means, if anything.
pub fn from_promotion(id: &str, e: &PromotionEvent) -> Option<Signal> {
    match e {
        PromotionEvent::GateEvaluated {
            service,
            version,
            checks,
            ..
        } => {
            let failed: Vec<String> = checks
                .iter()
                .filter(|c| {
                    c.outcome == Outcome::Fail
                        && matches!(
                            c.check,
                            Check::SastResultsClean | Check::NoKnownVulnerabilities
                        )
                })
                .map(|c| format!("{}: {}", c.check.as_str(), c.detail))
                .collect();
            (!failed.is_empty()).then(|| Signal {
                cause: format!("security:{service}@{version}"),
                kind: IncidentType::SecurityFinding,
                severity: IncidentSeverity::Error,
                title: clip(format!("{service}@{version}: {}", failed.join("; "))),
                service: Some(service.clone()),
            })
        }
        PromotionEvent::PromotionCompleted {
            outcome: PromotionOutcome::Failed,
            failed,
            blocked,
            ..
        } => Some(Signal {
            cause: format!("promotion:{id}"),
            kind: IncidentType::PromotionFailure,
            severity: IncidentSeverity::Warning,
            title: clip(format!(
                "promotion {id} failed (failed: {}; blocked: {})",
                list(failed),
                list(blocked)
            )),
            service: (failed.len() == 1).then(|| failed[0].clone()),
        }),
        _ => None,
    }
}

/// What an approval event (of request `id`) means, if anything.
pub fn from_approval(id: &str, e: &ApprovalEvent) -> Option<Signal> {
    match e {
        ApprovalEvent::Refused {
            actor,
            action,
            reason,
        } => Some(Signal {
            cause: format!("approval:{id}"),
            kind: IncidentType::UnauthorizedAccess,
            severity: IncidentSeverity::Warning,
            title: clip(format!(
                "{actor} was refused {action} on approval request {id}: {reason}"
            )),
            service: None,
        }),
        _ => None,
    }
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// Titles are at most 500 characters (an incident's limit): longer ones are cut at a
/// character boundary, marked with an ellipsis.
fn clip(mut title: String) -> String {
    if title.len() > 500 {
        let mut end = 496;
        while !title.is_char_boundary(end) {
            end -= 1;
        }
        title.truncate(end);
        title.push('…');
    }
    title
}
