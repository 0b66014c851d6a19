//! Istio authorization from the dependency graph (seed 001 §3.3): one `AuthorizationPolicy`
//! per onboarded service that allows exactly the services depending on it (their mesh
//! identities, `cluster.local/ns/<ns>/sa/<service>`), with the template's methods and paths,
//! plus Prometheus's scrape of `/metrics`. With the namespace's default-deny policy
//! (istio/default-deny.yaml) nothing else reaches the service.
//!
//! Pure: the registry serves it from its catalog (`GET /v1/mesh/authorization-policies`) and
//! `goosectl mesh render` writes it, offline from files too.

use crate::catalog::ServiceDefinition;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The Istio API version the policies are written in.
pub const API_VERSION: &str = "security.istio.io/v1";
/// The label every rendered policy carries (to prune policies of removed services).
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "golden-goose");

/// What the rendered policies allow besides the dependency edges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshOptions {
    /// The namespace the services (and their service accounts) run in.
    pub namespace: String,
    /// Methods a dependant may call (the seed's template: GET, POST).
    pub methods: Vec<String>,
    /// Paths a dependant may call (the seed's template: `/api/*`).
    pub paths: Vec<String>,
    /// Prometheus's mesh identity, allowed `GET /metrics` on every service (`None`: no scrape
    /// rule).
    pub prometheus: Option<String>,
}

impl Default for MeshOptions {
    fn default() -> Self {
        Self {
            namespace: "default".into(),
            methods: vec!["GET".into(), "POST".into()],
            paths: vec!["/api/*".into()],
            prometheus: Some("cluster.local/ns/monitoring/sa/prometheus".into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationPolicy {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: Metadata,
    pub spec: PolicySpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Metadata {
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicySpec {
    pub selector: Selector,
    pub action: &'static str,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    pub match_labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub from: Vec<From>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<To>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct From {
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub principals: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_principals: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct To {
    pub operation: Operation,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Operation {
    pub methods: Vec<String>,
    pub paths: Vec<String>,
}

/// The mesh identity of a service's workloads.
pub fn principal(namespace: &str, service: &str) -> String {
    format!("cluster.local/ns/{namespace}/sa/{service}")
}

/// One policy per service, in name order: the services that depend on it (any kind of
/// dependency: runtime calls, data reads, security checks all reach it over the mesh) may
/// call the template's methods and paths; Prometheus may scrape `/metrics`. A service no one
/// depends on gets a policy too, so that it is selected and only the scrape is allowed.
pub fn authorization_policies<'a>(
    services: impl IntoIterator<Item = &'a ServiceDefinition>,
    opts: &MeshOptions,
) -> Vec<AuthorizationPolicy> {
    let services: Vec<&ServiceDefinition> = services.into_iter().collect();
    let mut callers: BTreeMap<&str, BTreeSet<&str>> = services
        .iter()
        .map(|s| (s.name.as_str(), BTreeSet::new()))
        .collect();
    for s in &services {
        for (_, dep) in s.spec.dependencies.all() {
            callers
                .entry(dep.as_str())
                .or_default()
                .insert(s.name.as_str());
        }
    }
    callers
        .into_iter()
        .map(|(service, from)| {
            let mut rules = Vec::new();
            if !from.is_empty() {
                rules.push(Rule {
                    from: vec![From {
                        source: Source {
                            principals: from
                                .iter()
                                .map(|c| principal(&opts.namespace, c))
                                .collect(),
                            not_principals: Vec::new(),
                        },
                    }],
                    to: vec![To {
                        operation: Operation {
                            methods: opts.methods.clone(),
                            paths: opts.paths.clone(),
                        },
                    }],
                });
            }
            if let Some(p) = &opts.prometheus {
                rules.push(Rule {
                    from: vec![From {
                        source: Source {
                            principals: vec![p.clone()],
                            not_principals: Vec::new(),
                        },
                    }],
                    to: vec![To {
                        operation: Operation {
                            methods: vec!["GET".into()],
                            paths: vec!["/metrics".into()],
                        },
                    }],
                });
            }
            policy(service, "allow-dependants", "ALLOW", rules, opts)
        })
        .collect()
}

/// The policy that takes a service out of the mesh (the compliance_violation runbook's
/// isolate_service): a DENY — evaluated before every ALLOW — of every caller but Prometheus,
/// so its metrics stay visible while it is investigated.
pub fn isolation_policy(service: &str, opts: &MeshOptions) -> AuthorizationPolicy {
    let rules = vec![Rule {
        from: vec![From {
            source: Source {
                principals: Vec::new(),
                not_principals: opts.prometheus.iter().cloned().collect(),
            },
        }],
        to: Vec::new(),
    }];
    policy(service, "isolated", "DENY", rules, opts)
}

/// A policy named `<service>-<suffix>` selecting the service's workloads (`app` label),
/// labelled as ours.
fn policy(
    service: &str,
    suffix: &str,
    action: &'static str,
    rules: Vec<Rule>,
    opts: &MeshOptions,
) -> AuthorizationPolicy {
    AuthorizationPolicy {
        api_version: API_VERSION,
        kind: "AuthorizationPolicy",
        metadata: Metadata {
            name: format!("{service}-{suffix}"),
            namespace: opts.namespace.clone(),
            labels: BTreeMap::from([
                (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
                ("app".to_owned(), service.to_owned()),
            ]),
        },
        spec: PolicySpec {
            selector: Selector {
                match_labels: BTreeMap::from([("app".to_owned(), service.to_owned())]),
            },
            action,
            rules,
        },
    }
}

/// The policies as a multi-document YAML stream (what `kubectl apply -f -` takes).
pub fn to_yaml(policies: &[AuthorizationPolicy]) -> Result<String, String> {
    let mut out = String::from(
        "# Generated by Golden Goose from the service catalog's dependency graph; do not edit.\n",
    );
    for p in policies {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(p).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::parse_definitions;
    use proptest::prelude::*;

    fn defs(edges: &[(&str, &[&str])]) -> Vec<ServiceDefinition> {
        let yaml: Vec<String> = edges
            .iter()
            .map(|(name, deps)| {
                format!(
                    "service:\n  name: {name}\n  spec:\n    api_version: v1\n    compliance_mode: sandbox\n    dependencies:\n      runtime: [{}]\n",
                    deps.join(", ")
                )
            })
            .collect();
        parse_definitions(&yaml.join("---\n")).unwrap()
    }

    /// Every (caller principal, callee) pair the policies allow on the template's paths.
    fn allowed(policies: &[AuthorizationPolicy]) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for p in policies {
            for r in &p.spec.rules {
                if r.to.iter().any(|t| t.operation.paths == ["/metrics"]) {
                    continue;
                }
                for f in &r.from {
                    for who in &f.source.principals {
                        out.insert((who.clone(), p.spec.selector.match_labels["app"].clone()));
                    }
                }
            }
        }
        out
    }

    #[test]
    fn the_seed_template_for_an_edge_and_only_the_scrape_for_a_leaf() {
        let opts = MeshOptions {
            namespace: "shop".into(),
            ..MeshOptions::default()
        };
        let p = authorization_policies(
            &defs(&[("service-a", &[]), ("service-b", &["service-a"])]),
            &opts,
        );
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].metadata.name, "service-a-allow-dependants");
        assert_eq!(
            p[0].spec.rules[0].from[0].source.principals,
            ["cluster.local/ns/shop/sa/service-b"]
        );
        assert_eq!(p[0].spec.rules[0].to[0].operation.methods, ["GET", "POST"]);
        assert_eq!(p[0].spec.rules[0].to[0].operation.paths, ["/api/*"]);
        // service-b: no one depends on it; only Prometheus may scrape it.
        assert_eq!(p[1].spec.rules.len(), 1);
        assert_eq!(p[1].spec.rules[0].to[0].operation.paths, ["/metrics"]);
        let yaml = to_yaml(&p).unwrap();
        assert!(yaml.contains("kind: AuthorizationPolicy"), "{yaml}");
        assert!(yaml.contains("matchLabels:"), "{yaml}");
        assert_eq!(
            yaml.matches("\n---\n").count(),
            2,
            "one document per policy: {yaml}"
        );
    }

    proptest! {
        /// Exactly the dependency edges are allowed: an edge appears as an allow of the
        /// dependant's identity on the dependency; removing it removes the allow; nothing
        /// else is allowed.
        #[test]
        fn exactly_the_edges_are_allowed(
            n in 2usize..7,
            raw in proptest::collection::btree_set((0usize..7, 0usize..7), 0..12),
        ) {
            let names: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
            // Acyclic: only edges from a higher index to a lower one.
            let edges: BTreeSet<(usize, usize)> = raw
                .into_iter()
                .filter(|(a, b)| a < &n && b < a)
                .collect();
            let build = |edges: &BTreeSet<(usize, usize)>| {
                let deps: Vec<(String, Vec<String>)> = (0..n)
                    .map(|i| {
                        (
                            names[i].clone(),
                            edges.iter().filter(|(a, _)| *a == i).map(|(_, b)| names[*b].clone()).collect(),
                        )
                    })
                    .collect();
                let refs: Vec<(&str, Vec<&str>)> = deps
                    .iter()
                    .map(|(n, d)| (n.as_str(), d.iter().map(String::as_str).collect()))
                    .collect();
                let refs2: Vec<(&str, &[&str])> = refs.iter().map(|(n, d)| (*n, d.as_slice())).collect();
                let opts = MeshOptions::default();
                allowed(&authorization_policies(&defs(&refs2), &opts))
            };
            let expected: BTreeSet<(String, String)> = edges
                .iter()
                .map(|(a, b)| (principal("default", &names[*a]), names[*b].clone()))
                .collect();
            prop_assert_eq!(build(&edges), expected.clone());
            if let Some(first) = edges.iter().next().copied() {
                let mut fewer = edges.clone();
                fewer.remove(&first);
                let after = build(&fewer);
                prop_assert!(!after.contains(&(principal("default", &names[first.0]), names[first.1].clone())));
                prop_assert_eq!(after.len(), expected.len() - 1);
            }
        }
    }
}
