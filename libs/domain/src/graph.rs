//! The dependency graph of the catalog (petgraph): order, waves, cycles, DOT.
//!
//! Edges point from a dependency to its dependant, so a topological order lists
//! dependencies first — the order services can be promoted in.

use crate::catalog::{ServiceDefinition, ServiceName};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

/// An edge's dependency kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EdgeKind(pub &'static str);

/// Services and their dependencies.
#[derive(Debug, Clone, Default)]
pub struct DependencyGraph {
    graph: DiGraph<ServiceName, EdgeKind>,
    index: BTreeMap<ServiceName, NodeIndex>,
}

/// A JSON-friendly view of the graph.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GraphView {
    pub services: Vec<String>,
    /// `[dependant, dependency, kind]`
    #[schema(value_type = Vec<Vec<String>>)]
    pub edges: Vec<(String, String, String)>,
    /// Promotion waves: each wave depends only on earlier ones. Empty when cyclic.
    pub waves: Vec<Vec<String>>,
}

impl DependencyGraph {
    /// Builds the graph; dependencies on names not among `defs` are ignored (the catalog
    /// rejects them before they get here).
    pub fn new<'a>(defs: impl IntoIterator<Item = &'a ServiceDefinition>) -> Self {
        let defs: Vec<&ServiceDefinition> = defs.into_iter().collect();
        let mut g = Self::default();
        for d in &defs {
            g.node(&d.name);
        }
        for d in &defs {
            let to = g.index[&d.name];
            for (kind, dep) in d.spec.dependencies.all() {
                if let Some(&from) = g.index.get(dep) {
                    g.graph.update_edge(from, to, EdgeKind(kind));
                }
            }
        }
        g
    }

    fn node(&mut self, name: &ServiceName) -> NodeIndex {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.graph.add_node(name.clone());
        self.index.insert(name.clone(), i);
        i
    }

    /// Whether `name` is in the graph.
    pub fn contains(&self, name: &ServiceName) -> bool {
        self.index.contains_key(name)
    }

    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// Direct dependencies of `name`, sorted.
    pub fn dependencies(&self, name: &ServiceName) -> Vec<&ServiceName> {
        self.neighbours(name, Direction::Incoming)
    }

    /// Direct dependants of `name`, sorted.
    pub fn dependants(&self, name: &ServiceName) -> Vec<&ServiceName> {
        self.neighbours(name, Direction::Outgoing)
    }

    fn neighbours(&self, name: &ServiceName, dir: Direction) -> Vec<&ServiceName> {
        let Some(&i) = self.index.get(name) else {
            return Vec::new();
        };
        let mut v: Vec<&ServiceName> = self
            .graph
            .neighbors_directed(i, dir)
            .map(|n| &self.graph[n])
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Dependencies first; among services ready at the same time, by name (so the order is
    /// deterministic). A cycle is returned in order, first name repeated at the end.
    pub fn topological_order(&self) -> Result<Vec<ServiceName>, Vec<ServiceName>> {
        Ok(self.waves()?.into_iter().flatten().collect())
    }

    /// Promotion waves (Kahn's algorithm by levels): wave k holds the services whose
    /// dependencies are all in waves before k.
    pub fn waves(&self) -> Result<Vec<Vec<ServiceName>>, Vec<ServiceName>> {
        let mut indegree: HashMap<NodeIndex, usize> = self
            .graph
            .node_indices()
            .map(|n| {
                (
                    n,
                    self.graph
                        .neighbors_directed(n, Direction::Incoming)
                        .count(),
                )
            })
            .collect();
        let mut ready: BTreeSet<(&ServiceName, NodeIndex)> = indegree
            .iter()
            .filter(|(_, d)| **d == 0)
            .map(|(n, _)| (&self.graph[*n], *n))
            .collect();
        let mut waves = Vec::new();
        let mut done = 0;
        while !ready.is_empty() {
            let wave: Vec<(&ServiceName, NodeIndex)> =
                std::mem::take(&mut ready).into_iter().collect();
            for (_, n) in &wave {
                for m in self.graph.neighbors_directed(*n, Direction::Outgoing) {
                    if let Some(d) = indegree.get_mut(&m) {
                        *d -= 1;
                        if *d == 0 {
                            ready.insert((&self.graph[m], m));
                        }
                    }
                }
            }
            done += wave.len();
            waves.push(wave.into_iter().map(|(s, _)| s.clone()).collect());
        }
        if done < self.graph.node_count() {
            return Err(self.find_cycle().unwrap_or_default());
        }
        Ok(waves)
    }

    /// A cycle, if any, as `a -> b -> ... -> a` in dependency direction (each service
    /// followed by one that depends on it), starting from the smallest name in it.
    pub fn find_cycle(&self) -> Option<Vec<ServiceName>> {
        for scc in petgraph::algo::tarjan_scc(&self.graph) {
            let start = *scc.iter().min_by_key(|n| &self.graph[**n])?;
            let members: BTreeSet<NodeIndex> = scc.iter().copied().collect();
            if scc.len() == 1 && self.graph.find_edge(start, start).is_none() {
                continue;
            }
            // Breadth-first from start back to start, inside the component.
            let mut parent: HashMap<NodeIndex, NodeIndex> = HashMap::new();
            let mut queue = std::collections::VecDeque::from([start]);
            while let Some(n) = queue.pop_front() {
                let mut next: Vec<NodeIndex> = self
                    .graph
                    .neighbors_directed(n, Direction::Outgoing)
                    .filter(|m| members.contains(m))
                    .collect();
                next.sort_by_key(|m| &self.graph[*m]);
                for m in next {
                    if m == start {
                        let mut chain = Vec::new();
                        let mut at = n;
                        while at != start {
                            chain.push(at);
                            at = parent[&at];
                        }
                        chain.reverse();
                        let mut out = vec![self.graph[start].clone()];
                        out.extend(chain.iter().map(|i| self.graph[*i].clone()));
                        out.push(self.graph[start].clone());
                        return Some(out);
                    }
                    if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(m) {
                        e.insert(n);
                        queue.push_back(m);
                    }
                }
            }
        }
        None
    }

    /// Graphviz DOT; edges point from dependant to dependency, as people draw them.
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph services {\n  rankdir=LR;\n  node [shape=box];\n");
        for name in self.index.keys() {
            let _ = writeln!(out, "  \"{name}\";");
        }
        for (dependant, dependency, kind) in self.edges() {
            let _ = writeln!(
                out,
                "  \"{dependant}\" -> \"{dependency}\" [label=\"{kind}\"];"
            );
        }
        out.push_str("}\n");
        out
    }

    /// One line per service: `name -> dep (kind), ...`, then the promotion waves.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for name in self.index.keys() {
            let i = self.index[name];
            let mut deps: Vec<String> = self
                .graph
                .edges_directed(i, Direction::Incoming)
                .map(|e| {
                    use petgraph::visit::EdgeRef as _;
                    format!("{} ({})", self.graph[e.source()], e.weight().0)
                })
                .collect();
            deps.sort();
            if deps.is_empty() {
                let _ = writeln!(out, "{name}");
            } else {
                let _ = writeln!(out, "{name} -> {}", deps.join(", "));
            }
        }
        match self.waves() {
            Ok(waves) => {
                for (i, w) in waves.iter().enumerate() {
                    let names: Vec<&str> = w.iter().map(ServiceName::as_str).collect();
                    let _ = writeln!(out, "wave {}: {}", i + 1, names.join(", "));
                }
            }
            Err(cycle) => {
                let names: Vec<&str> = cycle.iter().map(ServiceName::as_str).collect();
                let _ = writeln!(out, "cycle: {}", names.join(" -> "));
            }
        }
        out
    }

    fn edges(&self) -> Vec<(String, String, String)> {
        use petgraph::visit::EdgeRef as _;
        let mut v: Vec<(String, String, String)> = self
            .graph
            .edge_references()
            .map(|e| {
                (
                    self.graph[e.target()].to_string(),
                    self.graph[e.source()].to_string(),
                    e.weight().0.to_owned(),
                )
            })
            .collect();
        v.sort();
        v
    }

    pub fn view(&self) -> GraphView {
        GraphView {
            services: self.index.keys().map(ToString::to_string).collect(),
            edges: self.edges(),
            waves: self
                .waves()
                .map(|w| {
                    w.into_iter()
                        .map(|wave| wave.into_iter().map(|s| s.to_string()).collect())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{ComplianceMode, Dependencies, ServiceSpec};
    use proptest::prelude::*;

    fn name(s: &str) -> ServiceName {
        ServiceName::parse(s).unwrap()
    }

    fn def(n: &str, deps: &[String]) -> ServiceDefinition {
        ServiceDefinition {
            owner: None,
            name: name(n),
            spec: ServiceSpec {
                api_version: "v1".into(),
                compliance_mode: ComplianceMode::Sandbox,
                dependencies: Dependencies {
                    runtime: deps.iter().map(|d| name(d)).collect(),
                    ..Default::default()
                },
            },
        }
    }

    #[test]
    fn waves_and_order() {
        let defs = vec![
            def("a", &[]),
            def("b", &["a".into()]),
            def("c", &["b".into()]),
            def("d", &["a".into()]),
        ];
        let g = DependencyGraph::new(&defs);
        let waves = g.waves().unwrap();
        assert_eq!(
            waves,
            vec![vec![name("a")], vec![name("b"), name("d")], vec![name("c")]]
        );
        assert_eq!(g.dependencies(&name("c")), vec![&name("b")]);
        assert_eq!(g.dependants(&name("a")), vec![&name("b"), &name("d")]);
        let dot = g.to_dot();
        assert!(dot.contains("\"c\" -> \"b\" [label=\"runtime\"]"), "{dot}");
        let text = g.to_text();
        assert!(text.contains("c -> b (runtime)"), "{text}");
        assert!(text.contains("wave 2: b, d"), "{text}");
    }

    #[test]
    fn cycles_are_named_in_order() {
        let defs = vec![
            def("a", &["c".into()]),
            def("b", &["a".into()]),
            def("c", &["b".into()]),
            def("x", &[]),
        ];
        let g = DependencyGraph::new(&defs);
        let cycle = g.topological_order().unwrap_err();
        // a is a dependency of b, b of c, c of a.
        assert_eq!(cycle, vec![name("a"), name("b"), name("c"), name("a")]);
        assert!(g.view().waves.is_empty());
    }

    proptest! {
        /// Random DAGs (edges only to earlier nodes): every service comes after all its
        /// dependencies. Adding one back edge makes a cycle that is reported and is real.
        #[test]
        fn order_respects_dependencies(
            n in 1usize..30,
            edges in proptest::collection::vec((0usize..30, 0usize..30), 0..80),
            back in (0usize..30, 0usize..30),
        ) {
            let mut deps: Vec<Vec<String>> = vec![Vec::new(); n];
            for (x, y) in edges {
                let (x, y) = (x % n, y % n);
                if x > y { deps[x].push(format!("s{y}")); }
            }
            let defs: Vec<ServiceDefinition> = (0..n).map(|i| def(&format!("s{i}"), &deps[i])).collect();
            let g = DependencyGraph::new(&defs);
            let order = g.topological_order().unwrap();
            prop_assert_eq!(order.len(), n);
            let pos: HashMap<&ServiceName, usize> = order.iter().enumerate().map(|(i, s)| (s, i)).collect();
            for d in &defs {
                for dep in d.spec.dependencies.names() {
                    prop_assert!(pos[dep] < pos[&d.name]);
                }
            }
            let (x, y) = (back.0 % n, back.1 % n);
            if x < y && deps[y].iter().any(|d| d == &format!("s{x}")) {
                let mut with_back = defs.clone();
                with_back[x].spec.dependencies.runtime.push(name(&format!("s{y}")));
                let g = DependencyGraph::new(&with_back);
                let cycle = g.topological_order().unwrap_err();
                prop_assert!(cycle.len() >= 3);
                prop_assert_eq!(cycle.first(), cycle.last());
                // Each consecutive pair is a real edge: the later depends on the earlier.
                let by_name: HashMap<&ServiceName, &ServiceDefinition> = with_back.iter().map(|d| (&d.name, d)).collect();
                for w in cycle.windows(2) {
                    prop_assert!(by_name[&w[1]].spec.dependencies.names().contains(&w[0]));
                }
            }
        }
    }
}
