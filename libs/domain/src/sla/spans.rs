//! Where each field of a YAML document is, so that an error found after parsing (a target
//! out of range, an unknown reference) names its line. A second pass over the same text
//! reads every node as a `Spanned` tree; [`line_of`] walks a field path such as
//! `spec.objectives[0].target` and answers the line of the deepest node that exists.

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

#[derive(Debug)]
pub(crate) enum Node {
    Map(Vec<(String, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
    Leaf,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML node")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_str<E>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut out = Vec::new();
        while let Some(n) = seq.next_element::<Spanned<Node>>()? {
            out.push(n);
        }
        Ok(Node::Seq(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut out = Vec::new();
        while let Some(k) = map.next_key::<serde_json::Value>()? {
            let key = match k {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            out.push((key, map.next_value::<Spanned<Node>>()?));
        }
        Ok(Node::Map(out))
    }
}

/// Every document's tree; empty when the text does not parse (the first pass reported that).
pub(crate) fn parse(text: &str) -> Vec<Spanned<Node>> {
    crate::yaml::from_multiple::<Spanned<Node>>(text).unwrap_or_default()
}

/// The line of `path` (`a.b[2].c`) in `doc`, or of the deepest part of it that exists.
pub(crate) fn line_of(doc: &Spanned<Node>, path: &str) -> u64 {
    let mut node = doc;
    let mut line = doc.referenced.line();
    for part in path.split('.') {
        let (key, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        let mut next = match &node.value {
            Node::Map(entries) if !key.is_empty() => {
                entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
            }
            _ if key.is_empty() => Some(node),
            _ => None,
        };
        for idx in indexes
            .split(['[', ']'])
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse::<usize>().ok())
        {
            next = match next.map(|n| &n.value) {
                Some(Node::Seq(items)) => items.get(idx),
                _ => None,
            };
        }
        match next {
            Some(n) => {
                node = n;
                line = n.referenced.line();
            }
            None => break,
        }
    }
    line
}
