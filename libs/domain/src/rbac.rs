//! Roles, permissions and the authorization decision.
//!
//! Five roles (seed 004) map to named permissions. A decision is a bit test on a
//! [`PermissionSet`], so it costs nanoseconds and can run on every request.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Errors of identity values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("unknown role {0:?} (known: operator, analyst, approver, admin, auditor)")]
    UnknownRole(String),
    #[error("unknown permission {0:?}")]
    UnknownPermission(String),
    #[error("invalid user name {0:?}: {1}")]
    InvalidUserName(String, &'static str),
    #[error("invalid team name {0:?}: {1}")]
    InvalidTeamName(String, &'static str),
}

/// The rule user and team names share: 1 to 64 of `a-z 0-9 . _ -`, the first byte as
/// `first` allows (`first_rule` says how).
fn name_rule(
    s: &str,
    first: fn(&u8) -> bool,
    first_rule: &'static str,
) -> Result<(), &'static str> {
    if s.is_empty() || s.len() > 64 {
        return Err("must be 1 to 64 characters");
    }
    if !first(&s.as_bytes()[0]) {
        return Err(first_rule);
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    {
        return Err("may hold only a-z, 0-9, '.', '_' and '-'");
    }
    Ok(())
}

/// A team: owns services, models and use cases; users belong to teams. 1 to 64 of
/// `a-z 0-9 . _ -`, starting with a letter or digit (IdP group names, Backstage group refs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
pub struct TeamName(String);

impl TeamName {
    pub fn parse(s: &str) -> Result<Self, Error> {
        name_rule(
            s,
            u8::is_ascii_alphanumeric,
            "must start with a letter or digit",
        )
        .map_err(|why| Error::InvalidTeamName(s.to_owned(), why))?;
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TeamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The owning teams of a model or use case, whose `owner` is free text: the owner when it
/// reads as a team (a Backstage `group:` ref or a team name), else none.
pub fn owner_teams(owner: Option<&str>) -> Vec<TeamName> {
    owner
        .and_then(|o| TeamName::from_ref(o).ok())
        .into_iter()
        .collect()
}

impl TeamName {
    /// A team from a Backstage owner ref (`group:default/payments`, `group:payments`) or a
    /// plain name (`payments`); a `user:` ref is not a team.
    pub fn from_ref(r: &str) -> Result<Self, Error> {
        let (kind, rest) = r.split_once(':').unwrap_or(("group", r));
        if !kind.eq_ignore_ascii_case("group") {
            return Err(Error::InvalidTeamName(
                r.to_owned(),
                "an owner must be a group (team), not a user or another kind",
            ));
        }
        let name = rest.rsplit('/').next().unwrap_or(rest);
        Self::parse(&name.to_ascii_lowercase())
    }
}

impl<'de> Deserialize<'de> for TeamName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

macro_rules! permissions {
    ($($variant:ident = $name:literal: $doc:literal,)*) => {
        /// A named permission. Endpoints require one; roles grant sets of them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Permission {
            $(#[doc = $doc] $variant,)*
        }

        impl Permission {
            /// Every permission, in declaration order.
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)*];

            /// The permission's name, e.g. `promotion.approve`.
            pub const fn as_str(self) -> &'static str {
                match self { $(Permission::$variant => $name,)* }
            }

            /// What the permission allows, for documentation.
            pub const fn description(self) -> &'static str {
                match self { $(Permission::$variant => $doc,)* }
            }
        }

        impl FromStr for Permission {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                match s {
                    $($name => Ok(Permission::$variant),)*
                    other => Err(Error::UnknownPermission(other.to_owned())),
                }
            }
        }
    };
}

permissions! {
    ServiceOnboard = "service.onboard": "Onboard or update services in the catalog.",
    ServiceRead = "service.read": "Read the service catalog and dependency graph.",
    OrgConfigure = "org.configure": "Replace the organisation configuration (org-config.yaml).",
    EvidenceSubmit = "evidence.submit": "Submit evidence (test results, scans, SBOMs, attestations).",
    EvidenceRead = "evidence.read": "Read evidence summaries and blobs.",
    PromotionRequest = "promotion.request": "Request a promotion (and its approval).",
    PromotionApprove = "promotion.approve": "Approve or reject promotion requests.",
    PackageCreate = "package.create": "Create Golden Goose packages.",
    PackagePromote = "package.promote": "Promote Golden Goose packages.",
    ModelRegister = "model.register": "Register ML models.",
    ModelApprove = "model.approve": "Approve or reject model deployments.",
    ModelDeploy = "model.deploy": "Deploy models (and request approval for it).",
    UsecaseSubmit = "usecase.submit": "Submit use cases (and request approval for them).",
    UsecaseApprove = "usecase.approve": "Approve or reject use cases.",
    IncidentReport = "incident.report": "Report incidents.",
    SlaDefine = "sla.define": "Define SLA targets (apply SLOs).",
    SlaRead = "sla.read": "Read SLOs, their status and measurements.",
    MeasurementSubmit = "measurement.submit": "Submit measurements (request samples) for SLOs.",
    ApprovalRead = "approval.read": "Read approval requests and their decisions.",
    AuditRead = "audit.read": "Read the audit trail: chain proofs, exports, history.",
    ReportIssue = "report.issue": "Issue signed compliance reports (recorded on the chain).",
    AnalyticsQuery = "analytics.query": "Query the ledger's analytics tables and KPIs (read-only SQL).",
    ChainCheckpoint = "chain.checkpoint": "Sign a chain checkpoint on request.",
    RbacRead = "rbac.read": "Read users and role assignments.",
    RbacAdmin = "rbac.admin": "Create users, issue API keys, assign and revoke roles.",
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A set of permissions as a bit mask: membership is one AND.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PermissionSet(u32);

// One bit per permission; a compile-time check that they fit.
const _: () = assert!(Permission::ALL.len() <= 32);

impl PermissionSet {
    pub const EMPTY: Self = Self(0);

    pub const fn of(perms: &[Permission]) -> Self {
        let mut bits = 0u32;
        let mut i = 0;
        while i < perms.len() {
            bits |= 1 << perms[i] as u8;
            i += 1;
        }
        Self(bits)
    }

    pub const fn contains(self, p: Permission) -> bool {
        self.0 & (1 << p as u8) != 0
    }

    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .iter()
            .copied()
            .filter(move |p| self.contains(*p))
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl FromIterator<Role> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Role>>(iter: I) -> Self {
        iter.into_iter()
            .fold(Self::EMPTY, |acc, r| acc.union(r.permissions()))
    }
}

/// The five roles of seed 004.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Role {
    /// Runs services: onboards them, submits evidence, requests promotions, packages releases.
    Operator,
    /// Reads the catalog and evidence, submits use cases, reports incidents.
    Analyst,
    /// Decides approval requests. Holds no permission to request what they approve.
    Approver,
    /// Manages identities and platform configuration. Least privilege: an Admin cannot
    /// submit evidence or approve; granting themselves a role is possible and on the record.
    Admin,
    /// Reads everything needed to audit and issues compliance reports; changes nothing else.
    Auditor,
}

use Permission as P;

const OPERATOR: PermissionSet = PermissionSet::of(&[
    P::ServiceOnboard,
    P::ServiceRead,
    P::EvidenceSubmit,
    P::EvidenceRead,
    P::PromotionRequest,
    P::PackageCreate,
    P::PackagePromote,
    P::ModelRegister,
    P::ModelDeploy,
    P::UsecaseSubmit,
    P::IncidentReport,
    P::SlaDefine,
    P::SlaRead,
    P::MeasurementSubmit,
    P::ApprovalRead,
]);
const ANALYST: PermissionSet = PermissionSet::of(&[
    P::ServiceRead,
    P::SlaRead,
    P::EvidenceRead,
    P::UsecaseSubmit,
    P::IncidentReport,
    P::ApprovalRead,
    P::AnalyticsQuery,
]);
const APPROVER: PermissionSet = PermissionSet::of(&[
    P::ServiceRead,
    P::SlaRead,
    P::EvidenceRead,
    P::ApprovalRead,
    P::PromotionApprove,
    P::ModelApprove,
    P::UsecaseApprove,
]);
const ADMIN: PermissionSet = PermissionSet::of(&[
    P::RbacAdmin,
    P::SlaRead,
    P::RbacRead,
    P::OrgConfigure,
    P::ServiceRead,
    P::EvidenceRead,
    P::ApprovalRead,
    P::AuditRead,
    P::ChainCheckpoint,
    P::ReportIssue,
    P::AnalyticsQuery,
]);
const AUDITOR: PermissionSet = PermissionSet::of(&[
    P::AuditRead,
    P::ReportIssue,
    P::AnalyticsQuery,
    P::SlaRead,
    P::ServiceRead,
    P::EvidenceRead,
    P::ApprovalRead,
    P::RbacRead,
]);

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Operator,
        Role::Analyst,
        Role::Approver,
        Role::Admin,
        Role::Auditor,
    ];

    pub const fn permissions(self) -> PermissionSet {
        match self {
            Role::Operator => OPERATOR,
            Role::Analyst => ANALYST,
            Role::Approver => APPROVER,
            Role::Admin => ADMIN,
            Role::Auditor => AUDITOR,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Analyst => "analyst",
            Role::Approver => "approver",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::UnknownRole(s.to_owned()))
    }
}

impl Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A user (or service account) name: 1 to 64 of `a-z 0-9 . _ -`, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[schema(value_type = String, pattern = "^[a-z][a-z0-9._-]{0,63}$")]
#[serde(transparent)]
pub struct UserName(String);

impl UserName {
    pub fn parse(s: &str) -> Result<Self, Error> {
        name_rule(
            s,
            u8::is_ascii_lowercase,
            "must start with a lowercase letter",
        )
        .map_err(|why| Error::InvalidUserName(s.to_owned(), why))?;
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for UserName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Why a caller was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{user} lacks permission {permission} (roles: {roles})")]
pub struct Denied {
    pub user: String,
    pub permission: Permission,
    pub roles: String,
}

/// The authorization decision: does a user holding `roles` have `permission`?
pub fn authorize(user: &str, roles: &[Role], permission: Permission) -> Result<(), Denied> {
    let granted: PermissionSet = roles.iter().copied().collect();
    if granted.contains(permission) {
        Ok(())
    } else {
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(Denied {
            user: user.to_owned(),
            permission,
            roles: if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_at_least_fifteen_permissions_with_unique_names() {
        assert!(Permission::ALL.len() >= 15);
        let mut names: Vec<_> = Permission::ALL.iter().map(|p| p.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Permission::ALL.len());
        for p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>().unwrap(), *p);
        }
    }

    #[test]
    fn every_permission_is_held_by_some_role() {
        let all: PermissionSet = Role::ALL.into_iter().collect();
        for p in Permission::ALL {
            assert!(all.contains(*p), "{p} is granted by no role");
        }
    }

    #[test]
    fn segregation_no_role_both_requests_and_approves_promotions() {
        for r in Role::ALL {
            let p = r.permissions();
            assert!(
                !(p.contains(P::PromotionRequest) && p.contains(P::PromotionApprove)),
                "{r} could request and approve"
            );
        }
    }

    #[test]
    fn decisions() {
        assert!(authorize("a", &[Role::Operator], P::EvidenceSubmit).is_ok());
        let d = authorize("a", &[Role::Auditor], P::EvidenceSubmit).unwrap_err();
        assert_eq!(
            d.to_string(),
            "a lacks permission evidence.submit (roles: auditor)"
        );
        let d = authorize("a", &[], P::ServiceRead).unwrap_err();
        assert!(d.to_string().contains("roles: none"));
        assert!(authorize("a", &[Role::Analyst, Role::Approver], P::PromotionApprove).is_ok());
    }

    #[test]
    fn names_parse() {
        assert_eq!("Approver".parse::<Role>().unwrap(), Role::Approver);
        assert!("root".parse::<Role>().is_err());
        assert!(UserName::parse("alice.smith").is_ok());
        assert!(UserName::parse("Alice").is_err());
        assert!(UserName::parse("").is_err());
        assert!(UserName::parse("a b").is_err());
    }
}
