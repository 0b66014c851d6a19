//! Use cases (seed 004): what the organisation uses models for, governed as
//! Draft → Submitted → Approved → Deployed → Deprecated. The impact level sets how many distinct
//! approvers the approval needs (the approval policy's impact rules); a use case names the
//! models it uses (a version or an alias each), and deploying it needs each of them in
//! production. A deployed use case pins the versions it resolved, so deprecating one of them is
//! refused while the use case stands ([`UseCase::uses`]).
//!
//! One aggregate per use case (`usecase/<name>`).

use crate::approval::ImpactLevel;
use crate::model::{Approval, Environment, ModelName, RegisteredModel};
use serde::{Deserialize, Serialize};
use std::fmt;
use time::OffsetDateTime;

/// Where a use case is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UseCaseState {
    Draft,
    Submitted,
    Approved,
    Deployed,
    Deprecated,
}

impl fmt::Display for UseCaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Draft => "draft",
            Self::Submitted => "submitted",
            Self::Approved => "approved",
            Self::Deployed => "deployed",
            Self::Deprecated => "deprecated",
        })
    }
}

/// A model a use case uses: a version (`3`) or an alias (`champion`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelRef {
    #[schema(value_type = String)]
    pub model: ModelName,
    /// A version number or an alias; `champion` when left out.
    #[serde(default = "champion")]
    pub reference: String,
}

fn champion() -> String {
    crate::model::CHAMPION.to_owned()
}

/// A model version a deployed use case runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Pinned {
    #[schema(value_type = String)]
    pub model: ModelName,
    pub version: u32,
}

/// What creating or editing a draft says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UseCaseSpec {
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub impact: ImpactLevel,
    pub models: Vec<ModelRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// The use case's events (stream `usecase/<name>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum UseCaseEvent {
    UseCaseCreated {
        name: String,
        spec: UseCaseSpec,
        by: String,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// The draft changed.
    UseCaseEdited { spec: UseCaseSpec, by: String },
    UseCaseSubmitted {
        /// The rbac approval request (kind `use_case`) raised for it.
        approval_id: String,
        required_approvers: u8,
        by: String,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    UseCaseApproved {
        approval: Approval,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// The approval was rejected: back to draft.
    UseCaseRejected {
        approval_id: String,
        by: String,
        reason: String,
    },
    UseCaseDeployed {
        models: Vec<Pinned>,
        by: String,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    UseCaseDeprecated {
        reason: String,
        by: String,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
}

impl UseCaseEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::UseCaseCreated { .. } => "UseCaseCreated",
            Self::UseCaseEdited { .. } => "UseCaseEdited",
            Self::UseCaseSubmitted { .. } => "UseCaseSubmitted",
            Self::UseCaseApproved { .. } => "UseCaseApproved",
            Self::UseCaseRejected { .. } => "UseCaseRejected",
            Self::UseCaseDeployed { .. } => "UseCaseDeployed",
            Self::UseCaseDeprecated { .. } => "UseCaseDeprecated",
        }
    }
}

/// Why a use-case command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UseCaseError {
    #[error("{0}")]
    Invalid(String),
    #[error("use case {0} already exists")]
    Exists(String),
    #[error("{0}")]
    NotFound(String),
    /// Its state does not allow it.
    #[error("use case {name} is {state}: {what}")]
    State {
        name: String,
        state: UseCaseState,
        what: String,
    },
    /// Models it names are not in production (each with why).
    #[error("its models are not all in production: {}", .0.join("; "))]
    ModelsNotInProduction(Vec<String>),
}

/// A use case as folded from its events.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UseCase {
    pub name: String,
    #[schema(value_type = Option<UseCaseSpec>)]
    pub spec: Option<UseCaseSpec>,
    #[schema(value_type = Option<UseCaseState>)]
    pub state: Option<UseCaseState>,
    pub approval_id: Option<String>,
    pub required_approvers: u8,
    pub approvers: Vec<String>,
    /// The versions it runs on, while deployed.
    pub deployed: Vec<Pinned>,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// Who deprecated it, and why.
    pub deprecated: Option<(String, String)>,
    /// Every state it went through: (state, who, when).
    pub history: Vec<Transition>,
}

/// One change of state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Transition {
    #[schema(value_type = UseCaseState)]
    pub state: UseCaseState,
    pub by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub at: Option<OffsetDateTime>,
}

/// A use-case name: the same rules as a model name.
pub fn check_name(s: &str) -> Result<(), UseCaseError> {
    ModelName::parse(s)
        .map(|_| ())
        .map_err(|_| UseCaseError::Invalid(format!(
            "invalid use case name {s:?}: use 1 to 128 of A-Z, a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
        )))
}

fn check_spec(spec: &UseCaseSpec) -> Result<(), UseCaseError> {
    if spec.title.trim().is_empty() || spec.title.len() > 200 {
        return Err(UseCaseError::Invalid(
            "title must be 1 to 200 characters".into(),
        ));
    }
    if spec.models.is_empty() {
        return Err(UseCaseError::Invalid(
            "a use case names at least one model".into(),
        ));
    }
    Ok(())
}

impl UseCase {
    fn enter(
        &mut self,
        state: UseCaseState,
        by: &str,
        reason: Option<&str>,
        at: Option<OffsetDateTime>,
    ) {
        self.state = Some(state);
        self.history.push(Transition {
            state,
            by: by.to_owned(),
            reason: reason.map(str::to_owned),
            at,
        });
    }

    pub fn apply(&mut self, e: &UseCaseEvent) {
        match e {
            UseCaseEvent::UseCaseCreated { name, spec, by, at } => {
                self.name.clone_from(name);
                self.spec = Some(spec.clone());
                self.created_by.clone_from(by);
                self.created_at = Some(*at);
                self.enter(UseCaseState::Draft, by, None, Some(*at));
            }
            UseCaseEvent::UseCaseEdited { spec, .. } => self.spec = Some(spec.clone()),
            UseCaseEvent::UseCaseSubmitted {
                approval_id,
                required_approvers,
                by,
                at,
            } => {
                self.approval_id = Some(approval_id.clone());
                self.required_approvers = *required_approvers;
                self.approvers.clear();
                self.enter(UseCaseState::Submitted, by, None, Some(*at));
            }
            UseCaseEvent::UseCaseApproved { approval, at } => {
                self.approvers.clone_from(&approval.approvers);
                let by = approval.approvers.join(", ");
                self.enter(UseCaseState::Approved, &by, None, Some(*at));
            }
            UseCaseEvent::UseCaseRejected { by, reason, .. } => {
                self.approval_id = None;
                self.enter(UseCaseState::Draft, by, Some(reason), None);
            }
            UseCaseEvent::UseCaseDeployed { models, by, at } => {
                self.deployed.clone_from(models);
                self.enter(UseCaseState::Deployed, by, None, Some(*at));
            }
            UseCaseEvent::UseCaseDeprecated { reason, by, at } => {
                self.deployed.clear();
                self.deprecated = Some((by.clone(), reason.clone()));
                self.enter(UseCaseState::Deprecated, by, Some(reason), Some(*at));
            }
        }
    }

    /// Whether it is deployed on `version` of `model`.
    pub fn uses(&self, model: &ModelName, version: u32) -> bool {
        self.state == Some(UseCaseState::Deployed)
            && self
                .deployed
                .iter()
                .any(|p| &p.model == model && p.version == version)
    }

    fn state(&self) -> Result<UseCaseState, UseCaseError> {
        self.state
            .ok_or_else(|| UseCaseError::NotFound("no such use case".into()))
    }

    fn refuse<T>(&self, what: &str) -> Result<T, UseCaseError> {
        Err(UseCaseError::State {
            name: self.name.clone(),
            state: self.state.unwrap_or(UseCaseState::Draft),
            what: what.to_owned(),
        })
    }

    pub fn create(
        &self,
        name: &str,
        spec: UseCaseSpec,
        by: &str,
        at: OffsetDateTime,
    ) -> Result<Vec<UseCaseEvent>, UseCaseError> {
        if self.state.is_some() {
            return Err(UseCaseError::Exists(self.name.clone()));
        }
        check_name(name)?;
        check_spec(&spec)?;
        Ok(vec![UseCaseEvent::UseCaseCreated {
            name: name.to_owned(),
            spec,
            by: by.to_owned(),
            at,
        }])
    }

    /// Changes the draft (only a draft changes).
    pub fn edit(&self, spec: UseCaseSpec, by: &str) -> Result<Vec<UseCaseEvent>, UseCaseError> {
        if self.state()? != UseCaseState::Draft {
            return self.refuse("only a draft can be edited");
        }
        check_spec(&spec)?;
        Ok(vec![UseCaseEvent::UseCaseEdited {
            spec,
            by: by.to_owned(),
        }])
    }

    /// Submits the draft for approval under `approval_id` (raised by the caller with this
    /// use case's impact), needing `required` distinct approvers.
    pub fn submit(
        &self,
        approval_id: &str,
        required: u8,
        by: &str,
        at: OffsetDateTime,
    ) -> Result<Vec<UseCaseEvent>, UseCaseError> {
        if self.state()? != UseCaseState::Draft {
            return self.refuse("only a draft can be submitted");
        }
        Ok(vec![UseCaseEvent::UseCaseSubmitted {
            approval_id: approval_id.to_owned(),
            required_approvers: required,
            by: by.to_owned(),
            at,
        }])
    }

    /// Records the approval once it is granted with enough distinct approvers, none of them
    /// the submitter.
    pub fn approve(
        &self,
        approval: Approval,
        at: OffsetDateTime,
    ) -> Result<Vec<UseCaseEvent>, UseCaseError> {
        if self.state()? != UseCaseState::Submitted {
            return self.refuse("only a submitted use case can be approved");
        }
        if self.approval_id.as_deref() != Some(approval.approval_id.as_str()) {
            return Err(UseCaseError::Invalid(format!(
                "approval {} is not this use case's ({})",
                approval.approval_id,
                self.approval_id.as_deref().unwrap_or("none")
            )));
        }
        let submitter = self
            .history
            .iter()
            .rev()
            .find(|t| t.state == UseCaseState::Submitted)
            .map(|t| t.by.as_str());
        if approval
            .approvers
            .iter()
            .any(|a| Some(a.as_str()) == submitter)
        {
            return Err(UseCaseError::Invalid(
                "the submitter cannot approve their own use case".into(),
            ));
        }
        let mut distinct = approval.approvers.clone();
        distinct.sort();
        distinct.dedup();
        if distinct.len() < usize::from(self.required_approvers) {
            return Err(UseCaseError::Invalid(format!(
                "{} distinct approver(s); {} needed",
                distinct.len(),
                self.required_approvers
            )));
        }
        Ok(vec![UseCaseEvent::UseCaseApproved { approval, at }])
    }

    /// Back to draft after the approval was rejected.
    pub fn reject(&self, by: &str, reason: &str) -> Result<Vec<UseCaseEvent>, UseCaseError> {
        if self.state()? != UseCaseState::Submitted {
            return self.refuse("only a submitted use case can be rejected");
        }
        Ok(vec![UseCaseEvent::UseCaseRejected {
            approval_id: self.approval_id.clone().unwrap_or_default(),
            by: by.to_owned(),
            reason: reason.to_owned(),
        }])
    }

    /// Deploys an approved use case (or re-deploys a deployed one onto its models' current
    /// versions): every model it names must resolve to the version in production.
    pub fn deploy<'m>(
        &self,
        models: impl Fn(&ModelName) -> Option<&'m RegisteredModel>,
        by: &str,
        at: OffsetDateTime,
    ) -> Result<Vec<UseCaseEvent>, UseCaseError> {
        let state = self.state()?;
        if !matches!(state, UseCaseState::Approved | UseCaseState::Deployed) {
            return self.refuse("only an approved use case can be deployed");
        }
        let spec = self
            .spec
            .as_ref()
            .ok_or_else(|| UseCaseError::NotFound("no such use case".into()))?;
        let mut pinned = Vec::new();
        let mut missing = Vec::new();
        for r in &spec.models {
            let Some(m) = models(&r.model) else {
                missing.push(format!("model {} is not registered", r.model));
                continue;
            };
            match m.resolve(&r.reference) {
                Err(e) => missing.push(e.to_string()),
                Ok(v) if m.deployed(Environment::Production) == Some(v) => pinned.push(Pinned {
                    model: r.model.clone(),
                    version: v,
                }),
                Ok(v) => missing.push(format!(
                    "{}@{} is version {v}, which is not in production{}",
                    r.model,
                    r.reference,
                    m.deployed(Environment::Production)
                        .map(|p| format!(" (version {p} is)"))
                        .unwrap_or_default()
                )),
            }
        }
        if !missing.is_empty() {
            return Err(UseCaseError::ModelsNotInProduction(missing));
        }
        Ok(vec![UseCaseEvent::UseCaseDeployed {
            models: pinned,
            by: by.to_owned(),
            at,
        }])
    }

    /// Deprecates it (from any state but deprecated), recording who and why; its history stays.
    pub fn deprecate(
        &self,
        reason: &str,
        by: &str,
        at: OffsetDateTime,
    ) -> Result<Vec<UseCaseEvent>, UseCaseError> {
        if self.state()? == UseCaseState::Deprecated {
            return self.refuse("it is already deprecated");
        }
        if reason.trim().is_empty() {
            return Err(UseCaseError::Invalid("a deprecation needs a reason".into()));
        }
        Ok(vec![UseCaseEvent::UseCaseDeprecated {
            reason: reason.trim().to_owned(),
            by: by.to_owned(),
            at,
        }])
    }
}

#[cfg(test)]
#[path = "usecase_tests.rs"]
mod tests;
