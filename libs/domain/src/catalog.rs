//! The service catalog: service definitions in the seed's template (seed 001 §3.1) or as
//! Backstage entities, and the catalog aggregate that accepts them only as a whole.
//!
//! The catalog is one aggregate because its invariants span services: every dependency
//! exists and the graph has no cycle. A batch (a directory of files) is validated against
//! the catalog as it would be after the batch, and recorded in one append — all or nothing.

use crate::graph::DependencyGraph;
use crate::rbac::TeamName;
use crate::yaml::{self, YamlError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A service name: a DNS label (1 to 63 of `a-z 0-9 -`, not starting or ending with `-`),
/// since it becomes a Kubernetes name and a NATS subject token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct ServiceName(String);

impl ServiceName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "invalid service name {s:?}: use 1 to 63 of a-z, 0-9 and '-', not starting or ending with '-'"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ServiceName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The seed's two modes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ComplianceMode {
    #[default]
    Sandbox,
    Compliant,
}

impl ComplianceMode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sandbox => "sandbox",
            Self::Compliant => "compliant",
        }
    }
}

/// Dependencies by kind; every name must be a service in the catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Dependencies {
    #[serde(default)]
    pub runtime: Vec<ServiceName>,
    #[serde(default)]
    pub data: Vec<ServiceName>,
    #[serde(default)]
    pub security: Vec<ServiceName>,
}

impl Dependencies {
    /// Every dependency with its kind.
    pub fn all(&self) -> impl Iterator<Item = (&'static str, &ServiceName)> {
        self.runtime
            .iter()
            .map(|s| ("runtime", s))
            .chain(self.data.iter().map(|s| ("data", s)))
            .chain(self.security.iter().map(|s| ("security", s)))
    }

    /// Distinct dependency names.
    pub fn names(&self) -> BTreeSet<&ServiceName> {
        self.all().map(|(_, s)| s).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub api_version: String,
    pub compliance_mode: ComplianceMode,
    #[serde(default)]
    pub dependencies: Dependencies,
}

/// A service as the seed's template writes it: `service: {name, spec: {...}}` (the
/// `service:` wrapper is the document; this is its content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceDefinition {
    pub name: ServiceName,
    /// The team that owns the service (a Backstage entity's `spec.owner`): only its members
    /// (and admins) may request its promotions, and high-impact ones need an approver from
    /// outside it. Unowned services are open to every operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub owner: Option<TeamName>,
    pub spec: ServiceSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateDocument {
    service: ServiceDefinition,
}

/// A Backstage entity, as much as we read of it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BackstageEntity {
    api_version: String,
    kind: String,
    metadata: BackstageMetadata,
    #[serde(default)]
    spec: BackstageSpec,
}

#[derive(Deserialize)]
struct BackstageMetadata {
    name: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct BackstageSpec {
    #[serde(default)]
    depends_on: Vec<String>,
    #[serde(default)]
    owner: Option<String>,
}

/// The annotation that sets a Backstage entity's compliance mode (default sandbox).
pub const BACKSTAGE_MODE_ANNOTATION: &str = "goldengoose.io/compliance-mode";

/// Input that could not be read as service definitions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("document {document}: {source}")]
    Yaml {
        document: usize,
        #[source]
        source: YamlError,
    },
    #[error("document {document}: {message}")]
    Invalid { document: usize, message: String },
    #[error("no service definitions found")]
    Empty,
}

/// Reads service definitions from YAML (one or more documents) or JSON (an object or an
/// array). Each document is a seed template (`service:`) or a Backstage `Component` or
/// `Resource` entity (other Backstage kinds are skipped). Documents are numbered from 1.
pub fn parse_definitions(text: &str) -> Result<Vec<ServiceDefinition>, ParseError> {
    let docs: Vec<serde_json::Value> = if text.trim_start().starts_with('[') {
        serde_json::from_str(text).map_err(|e| ParseError::Yaml {
            document: 1,
            source: YamlError {
                line: Some(e.line() as u64),
                message: e.to_string(),
            },
        })?
    } else {
        yaml::from_multiple(text).map_err(|source| ParseError::Yaml {
            document: 1,
            source,
        })?
    };
    let mut out = Vec::new();
    for (i, doc) in docs.into_iter().enumerate() {
        let document = i + 1;
        if doc.is_null() {
            continue;
        }
        if doc.get("service").is_some() {
            let t: TemplateDocument =
                serde_json::from_value(doc).map_err(|e| ParseError::Invalid {
                    document,
                    message: format!("service definition: {e}"),
                })?;
            out.push(t.service);
        } else if doc.get("kind").is_some() && doc.get("apiVersion").is_some() {
            if let Some(def) = from_backstage(doc, document)? {
                out.push(def);
            }
        } else {
            return Err(ParseError::Invalid {
                document,
                message:
                    "expected a `service:` definition or a Backstage entity (apiVersion, kind)"
                        .into(),
            });
        }
    }
    if out.is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(out)
}

fn from_backstage(
    doc: serde_json::Value,
    document: usize,
) -> Result<Option<ServiceDefinition>, ParseError> {
    let invalid = |message: String| ParseError::Invalid { document, message };
    let e: BackstageEntity =
        serde_json::from_value(doc).map_err(|e| invalid(format!("Backstage entity: {e}")))?;
    if !e.api_version.starts_with("backstage.io/") {
        return Err(invalid(format!(
            "apiVersion {:?} is not a Backstage catalog version",
            e.api_version
        )));
    }
    if e.kind != "Component" && e.kind != "Resource" {
        return Ok(None);
    }
    let name = ServiceName::parse(&e.metadata.name).map_err(invalid)?;
    let compliance_mode = match e.metadata.annotations.get(BACKSTAGE_MODE_ANNOTATION) {
        None => ComplianceMode::Sandbox,
        Some(m) => serde_json::from_value(serde_json::Value::String(m.clone())).map_err(|_| {
            invalid(format!(
                "annotation {BACKSTAGE_MODE_ANNOTATION}: {m:?} is not sandbox or compliant"
            ))
        })?,
    };
    let mut dependencies = Dependencies::default();
    for r in &e.spec.depends_on {
        // Entity refs: [kind:][namespace/]name
        let (kind, rest) = r.split_once(':').unwrap_or(("component", r));
        let dep_name = rest.rsplit('/').next().unwrap_or(rest);
        let dep =
            ServiceName::parse(dep_name).map_err(|m| invalid(format!("dependsOn {r:?}: {m}")))?;
        match kind.to_ascii_lowercase().as_str() {
            "component" => dependencies.runtime.push(dep),
            "resource" => dependencies.data.push(dep),
            other => {
                return Err(invalid(format!(
                    "dependsOn {r:?}: kind {other:?} is not a Component or Resource"
                )))
            }
        }
    }
    let owner = match &e.spec.owner {
        None => None,
        Some(r) => {
            Some(TeamName::from_ref(r).map_err(|m| invalid(format!("spec.owner {r:?}: {m}")))?)
        }
    };
    Ok(Some(ServiceDefinition {
        name,
        owner,
        spec: ServiceSpec {
            api_version: "v1".into(),
            compliance_mode,
            dependencies,
        },
    }))
}

/// A problem with a batch against the catalog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("service {0} is defined more than once in this request")]
    Duplicate(ServiceName),
    #[error("service {service} has unknown {kind} dependency {dependency}")]
    UnknownDependency {
        service: ServiceName,
        kind: &'static str,
        dependency: ServiceName,
    },
    #[error("service {0} depends on itself")]
    SelfDependency(ServiceName),
    #[error("service {service} lists dependency {dependency} more than once")]
    DuplicateDependency {
        service: ServiceName,
        dependency: ServiceName,
    },
    #[error("dependency cycle: {}", .0.iter().map(ServiceName::as_str).collect::<Vec<_>>().join(" -> "))]
    Cycle(Vec<ServiceName>),
    #[error("service {service}: api_version {version:?} is not supported (use v1)")]
    ApiVersion {
        service: ServiceName,
        version: String,
    },
}

/// The batch was refused; nothing of it is applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rejected, nothing applied: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct Rejected(pub Vec<Problem>);

/// Events of the catalog aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum CatalogEvent {
    ServiceOnboarded {
        definition: ServiceDefinition,
    },
    ServiceUpdated {
        definition: ServiceDefinition,
        revision: u32,
    },
}

impl CatalogEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::ServiceOnboarded { .. } => "ServiceOnboarded",
            Self::ServiceUpdated { .. } => "ServiceUpdated",
        }
    }

    pub fn definition(&self) -> &ServiceDefinition {
        match self {
            Self::ServiceOnboarded { definition } | Self::ServiceUpdated { definition, .. } => {
                definition
            }
        }
    }
}

/// A catalog entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CatalogEntry {
    pub definition: ServiceDefinition,
    /// 1 when onboarded, +1 per change.
    pub revision: u32,
}

/// The catalog as folded from its events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    services: BTreeMap<ServiceName, CatalogEntry>,
}

impl Catalog {
    pub fn apply(&mut self, event: &CatalogEvent) {
        let def = event.definition().clone();
        let revision = match event {
            CatalogEvent::ServiceOnboarded { .. } => 1,
            CatalogEvent::ServiceUpdated { revision, .. } => *revision,
        };
        self.services.insert(
            def.name.clone(),
            CatalogEntry {
                definition: def,
                revision,
            },
        );
    }

    pub fn get(&self, name: &ServiceName) -> Option<&CatalogEntry> {
        self.services.get(name)
    }

    pub fn entries(&self) -> impl Iterator<Item = &CatalogEntry> {
        self.services.values()
    }

    pub fn len(&self) -> usize {
        self.services.len()
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    pub fn graph(&self) -> DependencyGraph {
        DependencyGraph::new(self.services.values().map(|e| &e.definition))
    }

    /// Decides a batch: the events that onboard or update its services, in dependency
    /// order, or every problem found. Definitions equal to what is stored yield no event.
    pub fn submit(&self, batch: Vec<ServiceDefinition>) -> Result<Vec<CatalogEvent>, Rejected> {
        let mut problems = Vec::new();
        let mut incoming: BTreeMap<ServiceName, ServiceDefinition> = BTreeMap::new();
        for def in batch {
            if def.spec.api_version != "v1" {
                problems.push(Problem::ApiVersion {
                    service: def.name.clone(),
                    version: def.spec.api_version.clone(),
                });
            }
            if incoming.contains_key(&def.name) {
                problems.push(Problem::Duplicate(def.name.clone()));
                continue;
            }
            incoming.insert(def.name.clone(), def);
        }
        // The catalog as it would be.
        let mut after: BTreeMap<&ServiceName, &ServiceDefinition> = self
            .services
            .iter()
            .map(|(n, e)| (n, &e.definition))
            .collect();
        for (n, d) in &incoming {
            after.insert(n, d);
        }
        for def in incoming.values() {
            let mut seen = BTreeSet::new();
            for (_, dep) in def.spec.dependencies.all() {
                if !seen.insert(dep) {
                    problems.push(Problem::DuplicateDependency {
                        service: def.name.clone(),
                        dependency: dep.clone(),
                    });
                }
            }
            for (kind, dep) in def.spec.dependencies.all() {
                if dep == &def.name {
                    problems.push(Problem::SelfDependency(def.name.clone()));
                } else if !after.contains_key(dep) {
                    problems.push(Problem::UnknownDependency {
                        service: def.name.clone(),
                        kind,
                        dependency: dep.clone(),
                    });
                }
            }
        }
        if !problems.is_empty() {
            problems.dedup();
            return Err(Rejected(problems));
        }
        let graph = DependencyGraph::new(after.values().copied());
        let order = graph
            .topological_order()
            .map_err(|cycle| Rejected(vec![Problem::Cycle(cycle)]))?;
        let mut events = Vec::new();
        for name in order {
            let Some(def) = incoming.remove(&name) else {
                continue;
            };
            match self.services.get(&name) {
                None => events.push(CatalogEvent::ServiceOnboarded { definition: def }),
                Some(e) if e.definition == def => {}
                Some(e) => events.push(CatalogEvent::ServiceUpdated {
                    definition: def,
                    revision: e.revision + 1,
                }),
            }
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str, deps: &[&str]) -> ServiceDefinition {
        ServiceDefinition {
            owner: None,
            name: ServiceName::parse(name).unwrap(),
            spec: ServiceSpec {
                api_version: "v1".into(),
                compliance_mode: ComplianceMode::Sandbox,
                dependencies: Dependencies {
                    runtime: deps
                        .iter()
                        .map(|d| ServiceName::parse(d).unwrap())
                        .collect(),
                    ..Default::default()
                },
            },
        }
    }

    fn names(events: &[CatalogEvent]) -> Vec<&str> {
        events
            .iter()
            .map(|e| e.definition().name.as_str())
            .collect()
    }

    #[test]
    fn the_seed_template_parses_in_yaml_and_json() {
        let yaml = "service:\n  name: service-b\n  spec:\n    api_version: v1\n    compliance_mode: sandbox\n    dependencies:\n      runtime: [service-a]\n      data: []\n      security: []\n";
        let defs = parse_definitions(yaml).unwrap();
        assert_eq!(defs, vec![def("service-b", &["service-a"])]);
        let json = r#"[{"service":{"name":"service-a","spec":{"api_version":"v1","compliance_mode":"compliant"}}}]"#;
        let defs = parse_definitions(json).unwrap();
        assert_eq!(defs[0].spec.compliance_mode, ComplianceMode::Compliant);
    }

    #[test]
    fn bad_documents_name_what_is_wrong() {
        let e = parse_definitions(
            "service:\n  name: a\n  spec:\n    api_version: v1\n    compliance_mode: production\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("production"), "{e}");
        let e = parse_definitions(
            "service:\n  name: Bad_Name\n  spec: {api_version: v1, compliance_mode: sandbox}\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("invalid service name"), "{e}");
        let e = parse_definitions("service: [unclosed\n").unwrap_err();
        assert!(e.to_string().contains("line"), "{e}");
        let e = parse_definitions("hello: world\n").unwrap_err();
        assert!(e.to_string().contains("expected a `service:`"), "{e}");
    }

    #[test]
    fn backstage_components_and_resources_import() {
        let text = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: checkout\n  annotations:\n    goldengoose.io/compliance-mode: compliant\nspec:\n  type: service\n  dependsOn:\n    - component:default/payments\n    - resource:orders-db\n---\napiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: checkout-api\n";
        let defs = parse_definitions(text).unwrap();
        assert_eq!(defs.len(), 1);
        assert_eq!(defs[0].name.as_str(), "checkout");
        assert_eq!(defs[0].spec.compliance_mode, ComplianceMode::Compliant);
        assert_eq!(defs[0].spec.dependencies.runtime[0].as_str(), "payments");
        assert_eq!(defs[0].spec.dependencies.data[0].as_str(), "orders-db");
    }

    #[test]
    fn a_dependency_listed_twice_is_refused() {
        let cat = Catalog::default();
        let base = cat.submit(vec![def("a", &[])]).unwrap();
        let mut cat = Catalog::default();
        for e in &base {
            cat.apply(e);
        }
        let mut b = def("b", &["a"]);
        b.spec
            .dependencies
            .data
            .push(ServiceName::parse("a").unwrap());
        let e = cat.submit(vec![b]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "rejected, nothing applied: service b lists dependency a more than once"
        );
    }

    #[test]
    fn a_batch_applies_in_dependency_order() {
        let cat = Catalog::default();
        let events = cat
            .submit(vec![def("c", &["b"]), def("a", &[]), def("b", &["a"])])
            .unwrap();
        assert_eq!(names(&events), ["a", "b", "c"]);
    }

    #[test]
    fn unknown_dependencies_duplicates_and_cycles_are_named() {
        let mut cat = Catalog::default();
        for e in cat.submit(vec![def("a", &[])]).unwrap() {
            cat.apply(&e);
        }
        let err = cat.submit(vec![def("b", &["zzz"])]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "rejected, nothing applied: service b has unknown runtime dependency zzz"
        );
        let err = cat.submit(vec![def("b", &[]), def("b", &[])]).unwrap_err();
        assert!(err.to_string().contains("defined more than once"));
        let err = cat
            .submit(vec![def("x", &["y"]), def("y", &["z"]), def("z", &["x"])])
            .unwrap_err();
        assert_eq!(err.0.len(), 1);
        let Problem::Cycle(c) = &err.0[0] else {
            panic!("{err}")
        };
        assert_eq!(c.first(), c.last());
        assert_eq!(c.len(), 4);
        // Updating a stored service into a cycle through the batch is also caught.
        let err = cat
            .submit(vec![def("b", &["a"]), def("a", &["b"])])
            .unwrap_err();
        assert!(err.to_string().contains("dependency cycle"), "{err}");
        let err = cat.submit(vec![def("a", &["a"])]).unwrap_err();
        assert!(err.to_string().contains("depends on itself"));
    }

    #[test]
    fn reapplying_is_a_no_op_and_changes_bump_the_revision() {
        let mut cat = Catalog::default();
        for e in cat.submit(vec![def("a", &[]), def("b", &[])]).unwrap() {
            cat.apply(&e);
        }
        assert!(cat.submit(vec![def("a", &[])]).unwrap().is_empty());
        let events = cat.submit(vec![def("a", &["b"])]).unwrap();
        assert!(matches!(
            events[0],
            CatalogEvent::ServiceUpdated { revision: 2, .. }
        ));
    }
}
