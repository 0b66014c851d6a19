//! The compliance state machine of one service version (seed 001 §3.2):
//!
//! ```text
//! sandbox ──(all_tests_passing, sast_clean, dependencies_compliant)──▶ compliance_ready
//! compliance_ready ──(approved_promotion, evidence_collected)──▶ compliant
//! compliant ──()──▶ sandbox
//! ```
//!
//! [`transition`] is the only way to move: it names the requirement that failed or the
//! transition that is not allowed. The gates (`crate::gates`) decide which requirements are
//! met; this module only decides what those facts allow.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// Where a service version stands.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ComplianceState {
    #[default]
    Sandbox,
    ComplianceReady,
    Compliant,
}

impl ComplianceState {
    pub const ALL: [ComplianceState; 3] = [Self::Sandbox, Self::ComplianceReady, Self::Compliant];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sandbox => "sandbox",
            Self::ComplianceReady => "compliance_ready",
            Self::Compliant => "compliant",
        }
    }

    /// The one state this one may move to (the seed's `allowed_transitions`).
    pub const fn allowed_next(self) -> ComplianceState {
        match self {
            Self::Sandbox => Self::ComplianceReady,
            Self::ComplianceReady => Self::Compliant,
            Self::Compliant => Self::Sandbox,
        }
    }

    /// What must hold to enter this state (the seed's `requirements`).
    pub const fn requirements(self) -> &'static [Requirement] {
        match self {
            Self::Sandbox => &[],
            Self::ComplianceReady => &[
                Requirement::AllTestsPassing,
                Requirement::SastClean,
                Requirement::DependenciesCompliant,
            ],
            Self::Compliant => &[
                Requirement::ApprovedPromotion,
                Requirement::EvidenceCollected,
            ],
        }
    }
}

impl fmt::Display for ComplianceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ComplianceState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                format!("unknown compliance state {s:?} (sandbox, compliance_ready, compliant)")
            })
    }
}

/// A requirement of a transition.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Requirement {
    AllTestsPassing,
    SastClean,
    DependenciesCompliant,
    ApprovedPromotion,
    EvidenceCollected,
}

impl Requirement {
    pub const ALL: [Requirement; 5] = [
        Self::AllTestsPassing,
        Self::SastClean,
        Self::DependenciesCompliant,
        Self::ApprovedPromotion,
        Self::EvidenceCollected,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AllTestsPassing => "all_tests_passing",
            Self::SastClean => "sast_clean",
            Self::DependenciesCompliant => "dependencies_compliant",
            Self::ApprovedPromotion => "approved_promotion",
            Self::EvidenceCollected => "evidence_collected",
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a transition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("{from} may only move to {allowed}, not to {to}")]
    NotAllowed {
        from: ComplianceState,
        to: ComplianceState,
        allowed: ComplianceState,
    },
    #[error("{from} -> {to} requires {}: not met", .missing.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "))]
    RequirementsNotMet {
        from: ComplianceState,
        to: ComplianceState,
        /// Every requirement that failed, in the seed's order.
        missing: Vec<Requirement>,
    },
}

/// Moves `from` to `to` when that transition is allowed and every requirement of `to` is in
/// `met`. Pure; the only way the orchestrator changes a version's state.
pub fn transition(
    from: ComplianceState,
    to: ComplianceState,
    met: &BTreeSet<Requirement>,
) -> Result<ComplianceState, TransitionError> {
    let allowed = from.allowed_next();
    if to != allowed {
        return Err(TransitionError::NotAllowed { from, to, allowed });
    }
    let missing: Vec<Requirement> = to
        .requirements()
        .iter()
        .copied()
        .filter(|r| !met.contains(r))
        .collect();
    if missing.is_empty() {
        Ok(to)
    } else {
        Err(TransitionError::RequirementsNotMet { from, to, missing })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(rs: &[Requirement]) -> BTreeSet<Requirement> {
        rs.iter().copied().collect()
    }

    #[test]
    fn the_seed_cycle_with_its_requirements() {
        use ComplianceState::*;
        use Requirement::*;
        let ready = set(&[AllTestsPassing, SastClean, DependenciesCompliant]);
        assert_eq!(
            transition(Sandbox, ComplianceReady, &ready),
            Ok(ComplianceReady)
        );
        let e = transition(ComplianceReady, Compliant, &ready).unwrap_err();
        assert_eq!(
            e.to_string(),
            "compliance_ready -> compliant requires approved_promotion, evidence_collected: not met"
        );
        assert_eq!(
            transition(
                ComplianceReady,
                Compliant,
                &set(&[ApprovedPromotion, EvidenceCollected])
            ),
            Ok(Compliant)
        );
        assert_eq!(transition(Compliant, Sandbox, &set(&[])), Ok(Sandbox));
    }

    #[test]
    fn skipping_a_state_is_refused_by_name() {
        use ComplianceState::*;
        let all: BTreeSet<Requirement> = Requirement::ALL.into_iter().collect();
        let e = transition(Sandbox, Compliant, &all).unwrap_err();
        assert_eq!(
            e.to_string(),
            "sandbox may only move to compliance_ready, not to compliant"
        );
        assert!(transition(Compliant, ComplianceReady, &all).is_err());
        assert!(transition(Sandbox, Sandbox, &all).is_err());
    }

    #[test]
    fn the_failing_requirement_is_named() {
        use ComplianceState::*;
        use Requirement::*;
        let e = transition(
            Sandbox,
            ComplianceReady,
            &set(&[AllTestsPassing, DependenciesCompliant]),
        )
        .unwrap_err();
        assert_eq!(
            e,
            TransitionError::RequirementsNotMet {
                from: Sandbox,
                to: ComplianceReady,
                missing: vec![SastClean]
            }
        );
    }

    fn requirement() -> impl Strategy<Value = Requirement> {
        prop::sample::select(Requirement::ALL.to_vec())
    }

    fn state() -> impl Strategy<Value = ComplianceState> {
        prop::sample::select(ComplianceState::ALL.to_vec())
    }

    proptest! {
        /// No sequence of commands reaches compliant unless, at the step that entered it,
        /// approved_promotion and evidence_collected were met — and the step before
        /// (entering compliance_ready) had its own three requirements.
        #[test]
        fn compliant_is_never_reached_without_its_requirements(
            commands in prop::collection::vec((state(), prop::collection::btree_set(requirement(), 0..=5)), 0..40)
        ) {
            let mut s = ComplianceState::Sandbox;
            let mut entered_ready_with: Option<BTreeSet<Requirement>> = None;
            for (to, met) in commands {
                match transition(s, to, &met) {
                    Ok(next) => {
                        prop_assert_eq!(next, to);
                        prop_assert_eq!(to, s.allowed_next());
                        for r in to.requirements() {
                            prop_assert!(met.contains(r), "{} entered without {}", to, r);
                        }
                        if next == ComplianceState::ComplianceReady {
                            entered_ready_with = Some(met.clone());
                        }
                        if next == ComplianceState::Compliant {
                            let before = entered_ready_with.as_ref();
                            prop_assert!(before.is_some(), "compliant without passing compliance_ready");
                            for r in ComplianceState::ComplianceReady.requirements() {
                                prop_assert!(before.is_some_and(|b| b.contains(r)));
                            }
                        }
                        s = next;
                    }
                    Err(TransitionError::NotAllowed { from, to: t, allowed }) => {
                        prop_assert_eq!(from, s);
                        prop_assert_eq!(t, to);
                        prop_assert_ne!(to, allowed);
                    }
                    Err(TransitionError::RequirementsNotMet { missing, .. }) => {
                        prop_assert!(!missing.is_empty());
                        for r in &missing {
                            prop_assert!(!met.contains(r));
                            prop_assert!(to.requirements().contains(r));
                        }
                    }
                }
            }
        }
    }
}
