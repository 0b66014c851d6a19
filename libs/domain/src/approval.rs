//! Approval requests: N distinct approvers, never the requester (segregation of duties).
//!
//! A request is an aggregate: [`ApprovalRequest::apply`] folds its events, and the deciding
//! functions return the events to record or a [`Refusal`]. A refusal is recorded too (as
//! [`ApprovalEvent::Refused`] with the actor), so attempts to self-approve stay on the chain.

use crate::rbac::{Permission, PermissionSet, TeamName};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// What is being approved; each kind has its own request and approve permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalKind {
    Promotion,
    ModelDeployment,
    UseCase,
}

impl ApprovalKind {
    /// Needed to raise a request of this kind.
    pub const fn request_permission(self) -> Permission {
        match self {
            Self::Promotion => Permission::PromotionRequest,
            Self::ModelDeployment => Permission::ModelDeploy,
            Self::UseCase => Permission::UsecaseSubmit,
        }
    }

    /// Needed to grant or reject a request of this kind.
    pub const fn approve_permission(self) -> Permission {
        match self {
            Self::Promotion => Permission::PromotionApprove,
            Self::ModelDeployment => Permission::ModelApprove,
            Self::UseCase => Permission::UsecaseApprove,
        }
    }
}

/// How much harm a wrong decision could do; decides how many approvers are needed.
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
pub enum ImpactLevel {
    Low,
    Medium,
    High,
    Critical,
}

impl ImpactLevel {
    pub const ALL: [ImpactLevel; 4] = [Self::Low, Self::Medium, Self::High, Self::Critical];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for ImpactLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ImpactLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| format!("unknown impact level {s:?} (low, medium, high, critical)"))
    }
}

/// Distinct approvers required per impact level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalPolicy {
    pub low: u8,
    pub medium: u8,
    pub high: u8,
    pub critical: u8,
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        Self {
            low: 1,
            medium: 1,
            high: 2,
            critical: 3,
        }
    }
}

impl ApprovalPolicy {
    pub fn required(&self, level: ImpactLevel) -> u8 {
        match level {
            ImpactLevel::Low => self.low,
            ImpactLevel::Medium => self.medium,
            ImpactLevel::High => self.high,
            ImpactLevel::Critical => self.critical,
        }
    }

    /// Parses `low=1,medium=1,high=2,critical=3` (levels left out keep their default).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut policy = Self::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (level, n) = part
                .split_once('=')
                .ok_or_else(|| format!("expected LEVEL=N, got {part:?}"))?;
            let level: ImpactLevel = level.trim().parse()?;
            let n: u8 = n
                .trim()
                .parse()
                .map_err(|_| format!("approver count for {level} must be 1..=9, got {n:?}"))?;
            if !(1..=9).contains(&n) {
                return Err(format!("approver count for {level} must be 1..=9, got {n}"));
            }
            match level {
                ImpactLevel::Low => policy.low = n,
                ImpactLevel::Medium => policy.medium = n,
                ImpactLevel::High => policy.high = n,
                ImpactLevel::Critical => policy.critical = n,
            }
        }
        Ok(policy)
    }
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Not yet requested (an empty stream).
    #[default]
    New,
    Pending,
    Approved,
    Rejected,
}

/// What happened to a request. Every variant names its actor. The `type` of the JSON is the
/// event type (`ApprovalRequested`, ...), as on the bus; the short names are read too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum ApprovalEvent {
    #[serde(rename = "ApprovalRequested", alias = "Requested")]
    Requested {
        kind: ApprovalKind,
        subject: String,
        impact: ImpactLevel,
        requester: String,
        required_approvers: u8,
        reason: String,
        /// The teams owning the subject, as the raising service found them: for impact ≥
        /// high one approver at least must belong to none of them.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        owner_teams: Vec<TeamName>,
    },
    #[serde(rename = "ApprovalGranted", alias = "Granted")]
    Granted {
        approver: String,
        comment: String,
        /// The approver's teams when they granted (the fact the cross-team rule used).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        approver_teams: Vec<TeamName>,
    },
    /// Recorded with the grant that reached the required number of approvers.
    #[serde(rename = "ApprovalApproved", alias = "Approved")]
    Approved { approvers: Vec<String> },
    #[serde(rename = "ApprovalRejected", alias = "Rejected")]
    Rejected { approver: String, reason: String },
    /// An attempt that the rules refused (self-approval, missing permission, ...).
    #[serde(rename = "ApprovalRefused", alias = "Refused")]
    Refused {
        actor: String,
        action: String,
        reason: String,
    },
}

impl ApprovalEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::Requested { .. } => "ApprovalRequested",
            Self::Granted { .. } => "ApprovalGranted",
            Self::Approved { .. } => "ApprovalApproved",
            Self::Rejected { .. } => "ApprovalRejected",
            Self::Refused { .. } => "ApprovalRefused",
        }
    }
}

/// Why an action on a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("segregation of duties: {0} requested this and cannot approve or reject it")]
    SelfApproval(String),
    #[error("{actor} lacks permission {permission} needed to decide a {kind:?} request")]
    MissingPermission {
        actor: String,
        permission: Permission,
        kind: ApprovalKind,
    },
    #[error("{0} has already approved this request; another approver is needed")]
    AlreadyGranted(String),
    #[error("segregation of duties: a {impact} impact request needs at least one approver from outside the owning team ({owners}); {actor} and every approver so far belong to it")]
    NeedsOutsideApprover {
        actor: String,
        impact: ImpactLevel,
        owners: String,
    },
    #[error("the request is already {0:?}")]
    AlreadyDecided(ApprovalStatus),
    #[error("no such approval request")]
    NotFound,
    #[error("approval request already exists")]
    AlreadyExists,
    #[error("{0}")]
    Invalid(String),
}

impl Refusal {
    /// Whether this refusal is an attempt worth recording on the chain (not a typo).
    pub fn is_recorded(&self) -> bool {
        matches!(
            self,
            Self::SelfApproval(_)
                | Self::MissingPermission { .. }
                | Self::AlreadyGranted(_)
                | Self::NeedsOutsideApprover { .. }
                | Self::AlreadyDecided(_)
        )
    }

    pub fn as_event(&self, actor: &str, decision: Decision) -> ApprovalEvent {
        ApprovalEvent::Refused {
            actor: actor.to_owned(),
            action: decision.as_str().to_owned(),
            reason: self.to_string(),
        }
    }
}

/// `POST /v1/approvals` (rbac): the wire contract other services raise requests with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApproval {
    pub kind: ApprovalKind,
    /// What is to be approved, e.g. `service-a@1.4.0` or `promotion:<id>`.
    #[schema(min_length = 1, max_length = 256, pattern = "\\S")]
    pub subject: String,
    pub impact: ImpactLevel,
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub reason: String,
    /// The teams owning the subject (the raising service looks them up): for impact ≥ high
    /// at least one approver must belong to none of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 16)]
    pub owner_teams: Vec<TeamName>,
}

/// An approval request as rbac's API answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApprovalView {
    pub id: String,
    #[serde(flatten)]
    pub request: ApprovalRequest,
}

/// What an approver decides on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Grant,
    Reject,
}

impl Decision {
    /// The name recorded in refusals ("grant", "reject").
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grant => "grant",
            Self::Reject => "reject",
        }
    }
}

/// An approval request as folded from its events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApprovalRequest {
    pub status: ApprovalStatus,
    #[schema(value_type = Option<ApprovalKind>)]
    pub kind: Option<ApprovalKind>,
    pub subject: String,
    #[schema(value_type = Option<ImpactLevel>)]
    pub impact: Option<ImpactLevel>,
    pub requester: String,
    pub reason: String,
    pub required_approvers: u8,
    /// Who granted, in order.
    pub approvers: Vec<String>,
    /// The teams owning the subject (see [`CreateApproval::owner_teams`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owner_teams: Vec<TeamName>,
    /// Each approver's teams when they granted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub approver_teams: BTreeMap<String, Vec<TeamName>>,
    pub rejected_by: Option<String>,
    pub rejection_reason: Option<String>,
    /// Refused attempts so far.
    pub refusals: u32,
}

/// A new request as asked for.
#[derive(Debug, Clone)]
pub struct NewRequest<'a> {
    pub kind: ApprovalKind,
    pub subject: &'a str,
    pub impact: ImpactLevel,
    pub reason: &'a str,
    pub owner_teams: &'a [TeamName],
}

impl ApprovalRequest {
    /// Folds one event. Cannot fail: events are facts.
    pub fn apply(&mut self, event: &ApprovalEvent) {
        match event {
            ApprovalEvent::Requested {
                kind,
                subject,
                impact,
                requester,
                required_approvers,
                reason,
                owner_teams,
            } => {
                self.owner_teams.clone_from(owner_teams);
                self.status = ApprovalStatus::Pending;
                self.kind = Some(*kind);
                self.subject.clone_from(subject);
                self.impact = Some(*impact);
                self.requester.clone_from(requester);
                self.required_approvers = *required_approvers;
                self.reason.clone_from(reason);
            }
            ApprovalEvent::Granted {
                approver,
                approver_teams,
                ..
            } => {
                self.approvers.push(approver.clone());
                if !approver_teams.is_empty() {
                    self.approver_teams
                        .insert(approver.clone(), approver_teams.clone());
                }
            }
            ApprovalEvent::Approved { .. } => self.status = ApprovalStatus::Approved,
            ApprovalEvent::Rejected { approver, reason } => {
                self.status = ApprovalStatus::Rejected;
                self.rejected_by = Some(approver.clone());
                self.rejection_reason = Some(reason.clone());
            }
            ApprovalEvent::Refused { .. } => self.refusals += 1,
        }
    }

    /// Raises a request (the stream must be new).
    pub fn request(
        &self,
        requester: &str,
        requester_permissions: PermissionSet,
        new: &NewRequest<'_>,
        policy: &ApprovalPolicy,
    ) -> Result<Vec<ApprovalEvent>, Refusal> {
        if self.status != ApprovalStatus::New {
            return Err(Refusal::AlreadyExists);
        }
        let subject = new.subject.trim();
        if subject.is_empty() || subject.len() > 256 {
            return Err(Refusal::Invalid(
                "subject must be 1 to 256 characters".into(),
            ));
        }
        if new.reason.len() > 4096 {
            return Err(Refusal::Invalid(
                "reason must be at most 4096 characters".into(),
            ));
        }
        if new.owner_teams.len() > 16 {
            return Err(Refusal::Invalid("at most 16 owner_teams".into()));
        }
        let needed = new.kind.request_permission();
        if !requester_permissions.contains(needed) {
            return Err(Refusal::MissingPermission {
                actor: requester.to_owned(),
                permission: needed,
                kind: new.kind,
            });
        }
        Ok(vec![ApprovalEvent::Requested {
            kind: new.kind,
            subject: subject.to_owned(),
            impact: new.impact,
            requester: requester.to_owned(),
            required_approvers: policy.required(new.impact).max(1),
            reason: new.reason.to_owned(),
            owner_teams: {
                let mut t = new.owner_teams.to_vec();
                t.sort();
                t.dedup();
                t
            },
        }])
    }

    /// Who may decide: the kind's approve permission first (so a caller without it hears
    /// that, whatever the state), then never the requester, then only while pending.
    fn check_decider(&self, actor: &str, perms: PermissionSet) -> Result<ApprovalKind, Refusal> {
        let kind = match (self.status, self.kind) {
            (ApprovalStatus::New, _) | (_, None) => return Err(Refusal::NotFound),
            (_, Some(kind)) => kind,
        };
        let needed = kind.approve_permission();
        if !perms.contains(needed) {
            return Err(Refusal::MissingPermission {
                actor: actor.to_owned(),
                permission: needed,
                kind,
            });
        }
        if actor == self.requester {
            return Err(Refusal::SelfApproval(actor.to_owned()));
        }
        if self.status != ApprovalStatus::Pending {
            return Err(Refusal::AlreadyDecided(self.status));
        }
        Ok(kind)
    }

    /// Grants: records the approver; with the last one needed, approves.
    /// `teams`: the approver's teams now. The grant that would complete a high-impact
    /// request whose approvers all belong to an owning team is refused.
    pub fn grant(
        &self,
        actor: &str,
        perms: PermissionSet,
        teams: &[TeamName],
        comment: &str,
    ) -> Result<Vec<ApprovalEvent>, Refusal> {
        self.check_decider(actor, perms)?;
        if self.approvers.iter().any(|a| a == actor) {
            return Err(Refusal::AlreadyGranted(actor.to_owned()));
        }
        let completes = self.approvers.len() + 1 >= usize::from(self.required_approvers);
        let impact = self.impact.unwrap_or(ImpactLevel::Low);
        if completes && impact >= ImpactLevel::High && !self.owner_teams.is_empty() {
            let outside = |t: &[TeamName]| !t.iter().any(|t| self.owner_teams.contains(t));
            let earlier_outside = self.approvers.iter().any(|a| {
                outside(
                    self.approver_teams
                        .get(a)
                        .map(Vec::as_slice)
                        .unwrap_or_default(),
                )
            });
            if !earlier_outside && !outside(teams) {
                return Err(Refusal::NeedsOutsideApprover {
                    actor: actor.to_owned(),
                    impact,
                    owners: self
                        .owner_teams
                        .iter()
                        .map(TeamName::as_str)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        let mut events = vec![ApprovalEvent::Granted {
            approver: actor.to_owned(),
            comment: comment.to_owned(),
            approver_teams: teams.to_vec(),
        }];
        if completes {
            let mut approvers = self.approvers.clone();
            approvers.push(actor.to_owned());
            events.push(ApprovalEvent::Approved { approvers });
        }
        Ok(events)
    }

    /// Grants or rejects; `note` is the grant's comment or the rejection's reason.
    pub fn decide(
        &self,
        decision: Decision,
        actor: &str,
        perms: PermissionSet,
        teams: &[TeamName],
        note: &str,
    ) -> Result<Vec<ApprovalEvent>, Refusal> {
        match decision {
            Decision::Grant => self.grant(actor, perms, teams, note),
            Decision::Reject => self.reject(actor, perms, note),
        }
    }

    /// Rejects: one approver's rejection ends the request.
    pub fn reject(
        &self,
        actor: &str,
        perms: PermissionSet,
        reason: &str,
    ) -> Result<Vec<ApprovalEvent>, Refusal> {
        self.check_decider(actor, perms)?;
        if reason.trim().is_empty() {
            return Err(Refusal::Invalid("a rejection needs a reason".into()));
        }
        Ok(vec![ApprovalEvent::Rejected {
            approver: actor.to_owned(),
            reason: reason.to_owned(),
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::Role;
    use proptest::prelude::*;

    fn perms(r: Role) -> PermissionSet {
        r.permissions()
    }

    fn requested(impact: ImpactLevel) -> ApprovalRequest {
        let mut req = ApprovalRequest::default();
        let new = NewRequest {
            kind: ApprovalKind::Promotion,
            subject: "service-a@1.0.0",
            impact,
            reason: "release",
            owner_teams: &[],
        };
        for e in req
            .request(
                "olga",
                perms(Role::Operator),
                &new,
                &ApprovalPolicy::default(),
            )
            .unwrap()
        {
            req.apply(&e);
        }
        req
    }

    fn run(
        req: &mut ApprovalRequest,
        f: impl FnOnce(&ApprovalRequest) -> Result<Vec<ApprovalEvent>, Refusal>,
    ) -> Option<Refusal> {
        let r = f(req);
        record(req, r)
    }

    fn record(
        req: &mut ApprovalRequest,
        r: Result<Vec<ApprovalEvent>, Refusal>,
    ) -> Option<Refusal> {
        match r {
            Ok(events) => {
                for e in &events {
                    req.apply(e);
                }
                None
            }
            Err(refusal) => Some(refusal),
        }
    }

    #[test]
    fn given_a_low_impact_request_when_an_approver_grants_then_it_is_approved() {
        let mut req = requested(ImpactLevel::Low);
        assert_eq!(req.required_approvers, 1);
        let events = req.grant("ada", perms(Role::Approver), &[], "ok").unwrap();
        assert_eq!(events.len(), 2);
        record(&mut req, Ok(events));
        assert_eq!(req.status, ApprovalStatus::Approved);
    }

    #[test]
    fn the_requester_cannot_approve_even_holding_the_permission() {
        let req = requested(ImpactLevel::Low);
        let both = perms(Role::Operator).union(perms(Role::Approver));
        let refusal = req.grant("olga", both, &[], "mine").unwrap_err();
        assert_eq!(refusal, Refusal::SelfApproval("olga".into()));
        assert!(refusal.is_recorded());
        assert!(matches!(
            req.reject("olga", both, "no").unwrap_err(),
            Refusal::SelfApproval(_)
        ));
    }

    #[test]
    fn high_impact_needs_two_distinct_approvers() {
        let mut req = requested(ImpactLevel::High);
        assert_eq!(req.required_approvers, 2);
        assert!(run(&mut req, |r| r.grant("ada", perms(Role::Approver), &[], "")).is_none());
        assert_eq!(req.status, ApprovalStatus::Pending);
        let again = run(&mut req, |r| r.grant("ada", perms(Role::Approver), &[], ""));
        assert_eq!(again, Some(Refusal::AlreadyGranted("ada".into())));
        assert!(run(&mut req, |r| r.grant("bob", perms(Role::Approver), &[], "")).is_none());
        assert_eq!(req.status, ApprovalStatus::Approved);
        assert_eq!(req.approvers, vec!["ada", "bob"]);
        let late = run(&mut req, |r| r.grant("cy", perms(Role::Approver), &[], ""));
        assert_eq!(
            late,
            Some(Refusal::AlreadyDecided(ApprovalStatus::Approved))
        );
    }

    fn team(t: &str) -> TeamName {
        TeamName::parse(t).unwrap()
    }

    fn owned(impact: ImpactLevel) -> ApprovalRequest {
        let mut req = ApprovalRequest::default();
        let new = NewRequest {
            kind: ApprovalKind::Promotion,
            subject: "promotion:1",
            impact,
            reason: "",
            owner_teams: &[team("payments")],
        };
        let events = req
            .request(
                "olga",
                perms(Role::Operator),
                &new,
                &ApprovalPolicy::default(),
            )
            .unwrap();
        record(&mut req, Ok(events));
        req
    }

    #[test]
    fn high_impact_needs_an_approver_from_outside_the_owning_team() {
        let approver = perms(Role::Approver);
        let mut req = owned(ImpactLevel::High);
        assert_eq!(req.owner_teams, vec![team("payments")]);
        // The first owning-team approver is fine: another may still come from outside.
        assert!(run(&mut req, |r| r.grant(
            "ada",
            approver,
            &[team("payments")],
            ""
        ))
        .is_none());
        assert_eq!(req.approver_teams["ada"], vec![team("payments")]);
        // The second would complete it with only owners: refused, and worth recording.
        let refusal = req
            .grant("bob", approver, &[team("payments"), team("search")], "")
            .unwrap_err();
        assert!(
            matches!(refusal, Refusal::NeedsOutsideApprover { .. }),
            "{refusal}"
        );
        assert!(refusal.is_recorded());
        assert!(refusal
            .to_string()
            .contains("outside the owning team (payments)"));
        // Someone of another team (or of none) completes it.
        assert!(run(&mut req, |r| r.grant("cy", approver, &[team("search")], "")).is_none());
        assert_eq!(req.status, ApprovalStatus::Approved);

        // An outsider first: an owner may then complete it.
        let mut req = owned(ImpactLevel::Critical);
        assert!(run(&mut req, |r| r.grant("cy", approver, &[], "")).is_none());
        assert!(run(&mut req, |r| r.grant(
            "ada",
            approver,
            &[team("payments")],
            ""
        ))
        .is_none());
        assert!(run(&mut req, |r| r.grant(
            "bob",
            approver,
            &[team("payments")],
            ""
        ))
        .is_none());
        assert_eq!(req.status, ApprovalStatus::Approved);

        // Below high, owners may approve alone.
        let mut req = owned(ImpactLevel::Medium);
        assert!(run(&mut req, |r| r.grant(
            "ada",
            approver,
            &[team("payments")],
            ""
        ))
        .is_none());
        assert_eq!(req.status, ApprovalStatus::Approved);
    }

    #[test]
    fn deciding_needs_the_kinds_approve_permission() {
        let req = requested(ImpactLevel::Low);
        let r = req.grant("al", perms(Role::Analyst), &[], "").unwrap_err();
        assert!(matches!(
            r,
            Refusal::MissingPermission {
                permission: Permission::PromotionApprove,
                ..
            }
        ));
    }

    #[test]
    fn requesting_needs_the_kinds_request_permission() {
        let req = ApprovalRequest::default();
        let new = NewRequest {
            kind: ApprovalKind::ModelDeployment,
            subject: "m",
            impact: ImpactLevel::Low,
            reason: "",
            owner_teams: &[],
        };
        let r = req
            .request("al", perms(Role::Analyst), &new, &ApprovalPolicy::default())
            .unwrap_err();
        assert!(matches!(
            r,
            Refusal::MissingPermission {
                permission: Permission::ModelDeploy,
                ..
            }
        ));
    }

    #[test]
    fn a_rejection_ends_it_and_needs_a_reason() {
        let mut req = requested(ImpactLevel::Critical);
        assert!(matches!(
            req.reject("ada", perms(Role::Approver), " "),
            Err(Refusal::Invalid(_))
        ));
        assert!(run(&mut req, |r| r.reject(
            "ada",
            perms(Role::Approver),
            "tests red"
        ))
        .is_none());
        assert_eq!(req.status, ApprovalStatus::Rejected);
        assert_eq!(req.rejected_by.as_deref(), Some("ada"));
    }

    #[test]
    fn policy_parses_and_rejects_nonsense() {
        let p = ApprovalPolicy::parse("high=3, critical=4").unwrap();
        assert_eq!((p.low, p.high, p.critical), (1, 3, 4));
        assert!(ApprovalPolicy::parse("huge=1").is_err());
        assert!(ApprovalPolicy::parse("low=0").is_err());
        assert!(ApprovalPolicy::parse("low").is_err());
    }

    proptest! {
        /// However owning-team and outside approvers come, a high or critical request is
        /// approved only with at least one approver outside the owning team.
        #[test]
        fn high_impact_approval_always_includes_an_outsider(
            critical in any::<bool>(),
            grants in proptest::collection::vec((0usize..6, any::<bool>()), 0..12),
        ) {
            let impact = if critical { ImpactLevel::Critical } else { ImpactLevel::High };
            let mut req = owned(impact);
            let names = ["a0", "a1", "a2", "a3", "a4", "a5"];
            for (who, in_team) in grants {
                let teams = if in_team { vec![team("payments")] } else { vec![team("search")] };
                let r = req.grant(names[who], perms(Role::Approver), &teams, "");
                record(&mut req, r);
            }
            if req.status == ApprovalStatus::Approved {
                let outsider = req.approvers.iter().any(|a| {
                    !req.approver_teams.get(a).is_some_and(|t| t.contains(&team("payments")))
                });
                prop_assert!(outsider, "{:?}", req.approver_teams);
            }
        }
    }

    proptest! {
        /// Whatever sequence of actors tries to grant or reject, a request is approved only
        /// with at least the required number of distinct approvers, none of them the
        /// requester, all holding the approve permission.
        #[test]
        fn approval_needs_distinct_permitted_non_requesters(
            impact in 0usize..4,
            actions in proptest::collection::vec((0usize..5, 0usize..5, any::<bool>()), 0..20),
        ) {
            let names = ["olga", "ada", "bob", "cy", "dan"];
            let roles = [Role::Operator, Role::Approver, Role::Analyst, Role::Admin, Role::Auditor];
            let mut req = requested(ImpactLevel::ALL[impact]);
            for (who, role, reject) in actions {
                let p = roles[role].permissions();
                let r = if reject { req.reject(names[who], p, "no") } else { req.grant(names[who], p, &[], "") };
                let ok = r.is_ok();
                record(&mut req, r);
                if ok {
                    prop_assert_ne!(names[who], "olga");
                    prop_assert!(p.contains(Permission::PromotionApprove));
                }
            }
            if req.status == ApprovalStatus::Approved {
                let mut distinct = req.approvers.clone();
                distinct.sort();
                distinct.dedup();
                prop_assert_eq!(distinct.len(), req.approvers.len());
                prop_assert!(distinct.len() >= usize::from(req.required_approvers));
                prop_assert!(!distinct.contains(&"olga".to_string()));
            }
        }
    }
}

#[cfg(test)]
mod event_names {
    use super::*;

    #[test]
    fn the_json_type_is_the_event_type_and_old_short_names_still_read() {
        let e = ApprovalEvent::Approved {
            approvers: vec!["ada".into()],
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], e.event_type());
        let old: ApprovalEvent =
            serde_json::from_str(r#"{"type":"Approved","approvers":["ada"]}"#).unwrap();
        assert_eq!(old, e);
    }
}
