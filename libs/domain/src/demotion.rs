//! Demotion: a compliant version goes back to sandbox (a violation, a vulnerability found after
//! the fact), recorded with its reason on `compliance/<service>@<version>`, the one transition of
//! the state machine that no promotion makes.

use crate::compliance::{transition, ComplianceState, TransitionError};
use crate::errors::{Classified, ErrorKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Events of a version's compliance record outside promotions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum ComplianceEvent {
    VersionDemoted {
        service: String,
        version: String,
        from: ComplianceState,
        to: ComplianceState,
        reason: String,
        demoted_by: String,
        /// Services depending on this one when it was demoted (reported, not changed).
        dependants: Vec<String>,
    },
}

impl ComplianceEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::VersionDemoted { .. } => "VersionDemoted",
        }
    }
}

/// Why a demotion was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DemotionError {
    #[error("a demotion needs a reason")]
    NoReason,
    #[error("{service}@{version} is {state}, not compliant: only a compliant version is demoted")]
    NotCompliant {
        service: String,
        version: String,
        state: ComplianceState,
    },
    #[error(transparent)]
    Transition(#[from] TransitionError),
}

impl Classified for DemotionError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NoReason => ErrorKind::Invalid,
            // The version's state is what stands in the way: a conflict with the current state.
            Self::NotCompliant { .. } => ErrorKind::Conflict,
            Self::Transition(_) => ErrorKind::Unprocessable,
        }
    }
}

/// The demotion stream's state: demotions recorded so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComplianceRecord {
    pub demotions: u64,
}

/// What a demotion is asked to do.
#[derive(Debug, Clone)]
pub struct Demote<'a> {
    pub service: &'a str,
    pub version: &'a str,
    /// The version's state now (from the promotions' events).
    pub current: ComplianceState,
    pub reason: &'a str,
    pub actor: &'a str,
    pub dependants: Vec<String>,
}

impl ComplianceRecord {
    pub fn apply(&mut self, e: &ComplianceEvent) {
        let ComplianceEvent::VersionDemoted { .. } = e;
        self.demotions += 1;
    }

    /// Demotes a compliant version to sandbox through the state machine.
    pub fn demote(&self, d: &Demote<'_>) -> Result<Vec<ComplianceEvent>, DemotionError> {
        let reason = d.reason.trim();
        if reason.is_empty() {
            return Err(DemotionError::NoReason);
        }
        if d.current != ComplianceState::Compliant {
            return Err(DemotionError::NotCompliant {
                service: d.service.to_owned(),
                version: d.version.to_owned(),
                state: d.current,
            });
        }
        let to = transition(d.current, ComplianceState::Sandbox, &BTreeSet::new())?;
        Ok(vec![ComplianceEvent::VersionDemoted {
            service: d.service.to_owned(),
            version: d.version.to_owned(),
            from: d.current,
            to,
            reason: reason.to_owned(),
            demoted_by: d.actor.to_owned(),
            dependants: d.dependants.clone(),
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(current: ComplianceState, reason: &str) -> Result<Vec<ComplianceEvent>, DemotionError> {
        ComplianceRecord::default().demote(&Demote {
            service: "svc",
            version: "1.0.0",
            current,
            reason,
            actor: "ada",
            dependants: vec!["web".into()],
        })
    }

    #[test]
    fn only_a_compliant_version_with_a_reason_is_demoted_to_sandbox() {
        let events = ask(ComplianceState::Compliant, " CVE-2026-1 in the image ").unwrap();
        let ComplianceEvent::VersionDemoted { to, reason, .. } = &events[0];
        assert_eq!(
            (*to, reason.as_str()),
            (ComplianceState::Sandbox, "CVE-2026-1 in the image")
        );
        assert_eq!(
            ask(ComplianceState::Compliant, "  "),
            Err(DemotionError::NoReason)
        );
        for state in [ComplianceState::Sandbox, ComplianceState::ComplianceReady] {
            assert!(matches!(
                ask(state, "why"),
                Err(DemotionError::NotCompliant { .. })
            ));
        }
    }
}
