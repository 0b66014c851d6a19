//! Registered ML models (seed 004): numbered versions with their artifact, evaluation metrics
//! and model card; deployment to staging, then production, through the model policy's gates
//! and an approval; rollback to the previous production version; aliases.
//!
//! One aggregate per model (`model/<name>`), so every rule that spans its versions — one
//! production version at a time, production only from a staged and approved version, aliases
//! pointing at live versions — is checked against the whole model and recorded in one append.
//!
//! Aliases: `champion` is the production version and `challenger` the staged one; both move
//! only with deployments and rollbacks. Other names are free: set on any version that is not
//! deprecated, as MLflow's `set_registered_model_alias` does.

mod events;
pub mod guard;
pub mod policy;
mod spec;

pub use events::{ModelError, ModelEvent};
pub use spec::{check_alias, Approval, Environment, Metric, ModelName, VersionSpec};

use crate::approval::ImpactLevel;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// The alias of the production version.
pub const CHAMPION: &str = "champion";
/// The alias of the staged version.
pub const CHALLENGER: &str = "challenger";

/// A version as folded from the events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelVersion {
    pub version: u32,
    pub spec: VersionSpec,
    #[serde(with = "time::serde::rfc3339")]
    pub registered_at: OffsetDateTime,
    pub registered_by: String,
    /// Ever deployed to staging (a production deployment needs it).
    pub staged: bool,
    /// Where it is deployed now.
    pub deployed: Vec<Environment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deprecated: Option<String>,
}

/// One entry of the deployment history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Deployment {
    pub environment: Environment,
    pub version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<u32>,
    /// `deploy` or `rollback`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub actor: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A registered model as folded from its events.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RegisteredModel {
    /// None until `ModelCreated`.
    #[schema(value_type = Option<String>)]
    pub name: Option<ModelName>,
    pub description: String,
    #[schema(value_type = Option<String>)]
    pub risk: Option<ImpactLevel>,
    pub owner: Option<String>,
    pub tags: BTreeMap<String, String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    pub versions: BTreeMap<u32, ModelVersion>,
    pub version_tags: BTreeMap<u32, BTreeMap<String, String>>,
    pub aliases: BTreeMap<String, u32>,
    pub history: Vec<Deployment>,
}

impl RegisteredModel {
    /// Folds one event.
    pub fn apply(&mut self, e: &ModelEvent) {
        match e {
            ModelEvent::ModelCreated {
                name,
                description,
                risk,
                owner,
                tags,
                at,
            } => {
                self.name = Some(name.clone());
                self.description.clone_from(description);
                self.risk = Some(*risk);
                self.owner.clone_from(owner);
                self.tags.clone_from(tags);
                self.created_at = Some(*at);
            }
            ModelEvent::DescriptionChanged {
                version: None,
                description,
            } => self.description.clone_from(description),
            ModelEvent::DescriptionChanged {
                version: Some(v),
                description,
            } => {
                if let Some(mv) = self.versions.get_mut(v) {
                    mv.spec.description.clone_from(description);
                }
            }
            ModelEvent::VersionRegistered {
                version,
                spec,
                by,
                at,
            } => {
                self.versions.insert(
                    *version,
                    ModelVersion {
                        version: *version,
                        spec: spec.clone(),
                        registered_at: *at,
                        registered_by: by.clone(),
                        staged: false,
                        deployed: Vec::new(),
                        deprecated: None,
                    },
                );
                self.version_tags.insert(*version, spec.tags.clone());
            }
            ModelEvent::VersionDeployed {
                version,
                environment,
                previous,
                by,
                at,
                ..
            } => {
                self.move_to(*environment, *version, *previous);
                self.history.push(Deployment {
                    environment: *environment,
                    version: *version,
                    previous: *previous,
                    kind: "deploy".into(),
                    reason: None,
                    actor: by.clone(),
                    at: *at,
                });
            }
            ModelEvent::RolledBack {
                from,
                to,
                reason,
                by,
                at,
            } => {
                self.move_to(Environment::Production, *to, Some(*from));
                self.history.push(Deployment {
                    environment: Environment::Production,
                    version: *to,
                    previous: Some(*from),
                    kind: "rollback".into(),
                    reason: Some(reason.clone()),
                    actor: by.clone(),
                    at: *at,
                });
            }
            ModelEvent::AliasSet { alias, version } => {
                self.aliases.insert(alias.clone(), *version);
            }
            ModelEvent::AliasDeleted { alias } => {
                self.aliases.remove(alias);
            }
            ModelEvent::TagSet {
                version: None,
                key,
                value,
            } => {
                self.tags.insert(key.clone(), value.clone());
            }
            ModelEvent::TagSet {
                version: Some(v),
                key,
                value,
            } => {
                self.version_tags
                    .entry(*v)
                    .or_default()
                    .insert(key.clone(), value.clone());
            }
            ModelEvent::TagDeleted { version: None, key } => {
                self.tags.remove(key);
            }
            ModelEvent::TagDeleted {
                version: Some(v),
                key,
            } => {
                if let Some(t) = self.version_tags.get_mut(v) {
                    t.remove(key);
                }
            }
            ModelEvent::VersionDeprecated { version, reason } => {
                // A staged version leaves staging (production refuses deprecation).
                if let Some(mv) = self.versions.get_mut(version) {
                    mv.deprecated = Some(reason.clone());
                    mv.deployed.retain(|e| *e != Environment::Staging);
                }
                self.aliases.retain(|_, v| v != version);
            }
        }
    }

    /// `version` is now the one deployed in `env` (replacing `previous` there); the
    /// environment's alias follows.
    fn move_to(&mut self, env: Environment, version: u32, previous: Option<u32>) {
        if let Some(p) = previous.and_then(|p| self.versions.get_mut(&p)) {
            p.deployed.retain(|e| *e != env);
        }
        if let Some(v) = self.versions.get_mut(&version) {
            if !v.deployed.contains(&env) {
                v.deployed.push(env);
            }
            v.staged |= env == Environment::Staging;
        }
        let alias = match env {
            Environment::Staging => CHALLENGER,
            Environment::Production => CHAMPION,
        };
        self.aliases.insert(alias.to_owned(), version);
    }

    fn name(&self) -> Result<&ModelName, ModelError> {
        self.name
            .as_ref()
            .ok_or_else(|| ModelError::NotFound("no such model".into()))
    }

    /// The version, registered and not deprecated.
    fn live(&self, version: u32) -> Result<&ModelVersion, ModelError> {
        let name = self.name()?;
        let v = self.versions.get(&version).ok_or_else(|| {
            ModelError::NotFound(format!("model {name} has no version {version}"))
        })?;
        match &v.deprecated {
            Some(why) => Err(ModelError::Refused(format!(
                "version {version} of {name} is deprecated ({why})"
            ))),
            None => Ok(v),
        }
    }

    /// The version deployed in `env` now.
    pub fn deployed(&self, env: Environment) -> Option<u32> {
        self.versions
            .values()
            .find(|v| v.deployed.contains(&env))
            .map(|v| v.version)
    }

    /// The version in production at `t` (the last production change at or before `t`).
    pub fn in_production_at(&self, t: OffsetDateTime) -> Option<u32> {
        self.history
            .iter()
            .rev()
            .find(|d| d.environment == Environment::Production && d.at <= t)
            .map(|d| d.version)
    }

    /// A version number from `1`, `v1` or an alias (`champion`, `@champion`).
    pub fn resolve(&self, reference: &str) -> Result<u32, ModelError> {
        let name = self.name()?;
        let r = reference.trim_start_matches('@');
        let digits = r.strip_prefix('v').unwrap_or(r);
        if let Ok(n) = digits.parse::<u32>() {
            return self
                .versions
                .contains_key(&n)
                .then_some(n)
                .ok_or_else(|| ModelError::NotFound(format!("model {name} has no version {n}")));
        }
        self.aliases
            .get(r)
            .copied()
            .ok_or_else(|| ModelError::NotFound(format!("model {name} has no alias {r:?}")))
    }

    /// Creates the model.
    pub fn create(
        &self,
        name: ModelName,
        description: String,
        risk: ImpactLevel,
        owner: Option<String>,
        tags: BTreeMap<String, String>,
        at: OffsetDateTime,
    ) -> Result<Vec<ModelEvent>, ModelError> {
        if let Some(n) = &self.name {
            return Err(ModelError::Exists(n.to_string()));
        }
        spec::check_tags(&tags)?;
        Ok(vec![ModelEvent::ModelCreated {
            name,
            description,
            risk,
            owner,
            tags,
            at,
        }])
    }

    /// Registers the next version (numbered from 1).
    pub fn register(
        &self,
        spec: VersionSpec,
        by: &str,
        at: OffsetDateTime,
    ) -> Result<Vec<ModelEvent>, ModelError> {
        self.name()?;
        spec.validate()?;
        let version = self.versions.keys().next_back().map_or(1, |v| v + 1);
        Ok(vec![ModelEvent::VersionRegistered {
            version,
            spec,
            by: by.to_owned(),
            at,
        }])
    }

    /// Deploys `version` to staging (`gates`: what the service evaluated, all passed).
    pub fn deploy_staging(
        &self,
        version: u32,
        gates: Vec<String>,
        by: &str,
        at: OffsetDateTime,
    ) -> Result<Vec<ModelEvent>, ModelError> {
        self.live(version)?;
        let previous = self.deployed(Environment::Staging);
        if previous == Some(version) {
            return Ok(Vec::new());
        }
        Ok(vec![ModelEvent::VersionDeployed {
            version,
            environment: Environment::Staging,
            previous,
            approval: None,
            gates,
            by: by.to_owned(),
            at,
        }])
    }

    /// Whether `version` may go to production once approved: registered, not deprecated,
    /// staged, with a digest, not there already.
    pub fn ready_for_production(&self, version: u32) -> Result<(), ModelError> {
        let name = self.name()?.clone();
        let v = self.live(version)?;
        if !v.staged {
            return Err(ModelError::Refused(format!(
                "version {version} of {name} was never deployed to staging: production takes only a staged version"
            )));
        }
        if v.spec.digest.is_none() {
            return Err(ModelError::Refused(format!(
                "version {version} of {name} has no artifact digest: production needs the SHA-256 of what is deployed"
            )));
        }
        if self.deployed(Environment::Production) == Some(version) {
            return Err(ModelError::Refused(format!(
                "version {version} of {name} is already in production"
            )));
        }
        Ok(())
    }

    /// Deploys `version` to production: only a staged version with a digest, on a granted
    /// approval with at least `required` distinct approvers.
    pub fn deploy_production(
        &self,
        version: u32,
        approval: Approval,
        required: usize,
        gates: Vec<String>,
        by: &str,
        at: OffsetDateTime,
    ) -> Result<Vec<ModelEvent>, ModelError> {
        self.ready_for_production(version)?;
        let mut distinct = approval.approvers.clone();
        distinct.sort();
        distinct.dedup();
        if distinct.len() < required {
            return Err(ModelError::Refused(format!(
                "approval {} has {} distinct approver(s); {required} needed",
                approval.approval_id,
                distinct.len()
            )));
        }
        let previous = self.deployed(Environment::Production);
        Ok(vec![ModelEvent::VersionDeployed {
            version,
            environment: Environment::Production,
            previous,
            approval: Some(approval),
            gates,
            by: by.to_owned(),
            at,
        }])
    }

    /// Rolls production back to the version it replaced last (skipping deprecated ones).
    pub fn rollback(
        &self,
        reason: &str,
        by: &str,
        at: OffsetDateTime,
    ) -> Result<Vec<ModelEvent>, ModelError> {
        let name = self.name()?;
        if reason.trim().is_empty() {
            return Err(ModelError::Invalid("a rollback needs a reason".into()));
        }
        let current = self.deployed(Environment::Production).ok_or_else(|| {
            ModelError::Refused(format!("model {name} has no version in production"))
        })?;
        // The production versions before the current one, newest first.
        let to = self
            .history
            .iter()
            .rev()
            .filter(|d| d.environment == Environment::Production)
            .map(|d| d.version)
            .find(|v| *v != current && self.live(*v).is_ok())
            .ok_or_else(|| {
                ModelError::Refused(format!(
                    "model {name} has no earlier production version to roll back to"
                ))
            })?;
        Ok(vec![ModelEvent::RolledBack {
            from: current,
            to,
            reason: reason.trim().to_owned(),
            by: by.to_owned(),
            at,
        }])
    }

    /// Points a free alias at `version`.
    pub fn set_alias(&self, alias: &str, version: u32) -> Result<Vec<ModelEvent>, ModelError> {
        check_alias(alias)?;
        reserved(alias)?;
        self.live(version)?;
        if self.aliases.get(alias) == Some(&version) {
            return Ok(Vec::new());
        }
        Ok(vec![ModelEvent::AliasSet {
            alias: alias.to_owned(),
            version,
        }])
    }

    /// Sets a tag on the model (`version` None) or on one of its versions.
    pub fn set_tag(
        &self,
        version: Option<u32>,
        key: &str,
        value: &str,
    ) -> Result<Vec<ModelEvent>, ModelError> {
        let name = self.name()?;
        if let Some(v) = version {
            if !self.versions.contains_key(&v) {
                return Err(ModelError::NotFound(format!(
                    "model {name} has no version {v}"
                )));
            }
        }
        let mut one = BTreeMap::new();
        one.insert(key.to_owned(), value.to_owned());
        spec::check_tags(&one)?;
        Ok(vec![ModelEvent::TagSet {
            version,
            key: key.to_owned(),
            value: value.to_owned(),
        }])
    }

    pub fn delete_alias(&self, alias: &str) -> Result<Vec<ModelEvent>, ModelError> {
        let name = self.name()?;
        reserved(alias)?;
        if !self.aliases.contains_key(alias) {
            return Err(ModelError::NotFound(format!(
                "model {name} has no alias {alias:?}"
            )));
        }
        Ok(vec![ModelEvent::AliasDeleted {
            alias: alias.to_owned(),
        }])
    }

    /// Deprecates `version`: refused while it is in production, or while deployed use cases
    /// (`used_by`) use it.
    pub fn deprecate(
        &self,
        version: u32,
        reason: &str,
        used_by: Vec<String>,
    ) -> Result<Vec<ModelEvent>, ModelError> {
        let name = self.name()?;
        let v = self.live(version)?;
        if reason.trim().is_empty() {
            return Err(ModelError::Invalid("a deprecation needs a reason".into()));
        }
        if v.deployed.contains(&Environment::Production) {
            return Err(ModelError::Refused(format!(
                "version {version} of {name} is in production: roll back or deploy another version first"
            )));
        }
        if !used_by.is_empty() {
            return Err(ModelError::InUse {
                version,
                use_cases: used_by,
            });
        }
        Ok(vec![ModelEvent::VersionDeprecated {
            version,
            reason: reason.trim().to_owned(),
        }])
    }
}

fn reserved(alias: &str) -> Result<(), ModelError> {
    if alias == CHAMPION || alias == CHALLENGER {
        return Err(ModelError::Refused(format!(
            "alias {alias:?} moves only with deployments: deploy to {} (or roll back) instead",
            if alias == CHAMPION {
                "production"
            } else {
                "staging"
            }
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
