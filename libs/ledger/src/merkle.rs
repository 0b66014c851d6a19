//! RFC 6962 / RFC 9162 Merkle tree maths over the global log, with no I/O.
//!
//! The tree hash is SHA-256 (so that standard transparency-log verifiers can check our proofs):
//! `leaf = SHA-256(0x00 || leaf_data)`, `node = SHA-256(0x01 || left || right)`, and the leaf data
//! of position `p` is the 32-byte SHA3-256 digest of the event stored at `p`.
//!
//! Storage layout: the ledger stores, on the row of position `p`, the hashes of the perfect
//! subtrees that leaf `p` completes — levels `1..=trailing_ones(p)` — so any perfect subtree
//! `(level, index)` lives on row `(index + 1) * 2^level - 1`. Proofs are planned here as a list of
//! rows to read ([`ProofPlan`]), the backend reads those O(log n) rows, and the proof is computed
//! from them. No scan is ever needed.

use sha2::{Digest as _, Sha256};
use std::collections::HashMap;

/// A SHA-256 tree hash.
pub type Hash = [u8; 32];

/// Hash of a leaf whose data is `data` (the event's SHA3-256 digest).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// Hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Largest power of two strictly smaller than `n` (n >= 2).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// A perfect subtree: `2^level` leaves starting at `index * 2^level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u32,
    pub index: u64,
}

impl NodeId {
    /// The ledger row (position) on which this node's hash is stored.
    pub fn row(self) -> u64 {
        ((self.index + 1) << self.level) - 1
    }
}

/// Number of subtree hashes stored on row `position` (levels 1..=n).
pub fn stored_levels(position: u64) -> u32 {
    position.trailing_ones()
}

/// The perfect subtrees that make up the range `[start, end)` when hashed the RFC 6962 way.
fn decompose(start: u64, end: u64, out: &mut Vec<NodeId>) {
    let n = end - start;
    if n == 0 {
        return;
    }
    if n.is_power_of_two() && start.is_multiple_of(n) {
        out.push(NodeId {
            level: n.trailing_zeros(),
            index: start >> n.trailing_zeros(),
        });
        return;
    }
    let k = split_point(n);
    decompose(start, start + k, out);
    decompose(start + k, end, out);
}

/// Computes MTH of `[start, end)` from the perfect subtree hashes in `nodes`.
fn range_hash(start: u64, end: u64, nodes: &HashMap<NodeId, Hash>) -> Option<Hash> {
    let n = end - start;
    if n == 0 {
        return Some(empty_root());
    }
    if n.is_power_of_two() && start.is_multiple_of(n) {
        let id = NodeId {
            level: n.trailing_zeros(),
            index: start >> n.trailing_zeros(),
        };
        return nodes.get(&id).copied();
    }
    let k = split_point(n);
    Some(node_hash(
        &range_hash(start, start + k, nodes)?,
        &range_hash(start + k, end, nodes)?,
    ))
}

/// The ranges whose hashes form the inclusion proof of leaf `m` in a tree of `n` leaves,
/// from the leaf's sibling upwards (RFC 6962 §2.1.1 PATH).
fn inclusion_ranges(m: u64, start: u64, end: u64, out: &mut Vec<(u64, u64)>) {
    let n = end - start;
    if n <= 1 {
        return;
    }
    let k = split_point(n);
    if m < start + k {
        inclusion_ranges(m, start, start + k, out);
        out.push((start + k, end));
    } else {
        inclusion_ranges(m, start + k, end, out);
        out.push((start, start + k));
    }
}

/// The ranges of the consistency proof between sizes `m` and `n` (RFC 6962 §2.1.2 SUBPROOF).
fn consistency_ranges(m: u64, start: u64, end: u64, whole: bool, out: &mut Vec<(u64, u64)>) {
    let n = end - start;
    if m == n {
        if !whole {
            out.push((start, end));
        }
        return;
    }
    let k = split_point(n);
    if m <= k {
        consistency_ranges(m, start, start + k, whole, out);
        out.push((start + k, end));
    } else {
        consistency_ranges(m - k, start + k, end, false, out);
        out.push((start, start + k));
    }
}

/// Errors of proof planning and verification.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofError {
    #[error("index {index} is outside a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("cannot prove consistency from size {from} to smaller size {to}")]
    BadSizes { from: u64, to: u64 },
    #[error("proof has {got} hashes, expected {expected}")]
    WrongLength { got: usize, expected: usize },
    #[error("computed root does not match the expected root")]
    RootMismatch,
    #[error("subtree hash for {0:?} was not supplied")]
    MissingNode(NodeId),
}

/// What a backend must read to answer a proof: the perfect subtrees, by storage row.
#[derive(Debug, Clone)]
pub struct ProofPlan {
    ranges: Vec<(u64, u64)>,
    nodes: Vec<NodeId>,
}

impl ProofPlan {
    fn from_ranges(ranges: Vec<(u64, u64)>) -> Self {
        let mut nodes = Vec::new();
        for &(s, e) in &ranges {
            decompose(s, e, &mut nodes);
        }
        nodes.sort_unstable();
        nodes.dedup();
        Self { ranges, nodes }
    }

    /// Plan for the inclusion proof of `index` in a tree of `size` leaves.
    pub fn inclusion(index: u64, size: u64) -> Result<Self, ProofError> {
        if index >= size {
            return Err(ProofError::IndexOutOfRange { index, size });
        }
        let mut ranges = Vec::new();
        inclusion_ranges(index, 0, size, &mut ranges);
        Ok(Self::from_ranges(ranges))
    }

    /// Plan for the consistency proof from `from` leaves to `to` leaves.
    pub fn consistency(from: u64, to: u64) -> Result<Self, ProofError> {
        if from > to {
            return Err(ProofError::BadSizes { from, to });
        }
        let mut ranges = Vec::new();
        if from > 0 && from < to {
            consistency_ranges(from, 0, to, true, &mut ranges);
        }
        Ok(Self::from_ranges(ranges))
    }

    /// Plan for the root hash of a tree of `size` leaves.
    pub fn root(size: u64) -> Self {
        Self::from_ranges(if size == 0 { vec![] } else { vec![(0, size)] })
    }

    /// The perfect subtrees to read.
    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }

    /// Computes the proof hashes (or, for a root plan, the single root) from the nodes read.
    pub fn compute(&self, nodes: &HashMap<NodeId, Hash>) -> Result<Vec<Hash>, ProofError> {
        if let Some(missing) = self.nodes.iter().find(|n| !nodes.contains_key(n)) {
            return Err(ProofError::MissingNode(*missing));
        }
        self.ranges
            .iter()
            .map(|&(s, e)| {
                range_hash(s, e, nodes)
                    .ok_or(ProofError::MissingNode(NodeId { level: 0, index: s }))
            })
            .collect()
    }
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::WrongLength {
                got: proof.len(),
                expected: inclusion_len(index, size),
            });
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            expected: inclusion_len(index, size),
        });
    }
    if &r == root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

fn inclusion_len(index: u64, size: u64) -> usize {
    let mut v = Vec::new();
    inclusion_ranges(index, 0, size, &mut v);
    v.len()
}

/// Verifies a consistency proof between two tree heads (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    from: u64,
    to: u64,
    from_root: &Hash,
    to_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if from > to {
        return Err(ProofError::BadSizes { from, to });
    }
    if from == to {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength {
                got: proof.len(),
                expected: 0,
            });
        }
        return if from_root == to_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if from == 0 {
        // Every tree is consistent with the empty tree.
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::WrongLength {
                got: proof.len(),
                expected: 0,
            })
        };
    }
    let mut path: Vec<Hash> = proof.to_vec();
    if from.is_power_of_two() {
        path.insert(0, *from_root);
    }
    let wrong_len = || ProofError::WrongLength {
        got: proof.len(),
        expected: {
            let mut v = Vec::new();
            consistency_ranges(from, 0, to, true, &mut v);
            v.len()
        },
    };
    let (mut fnode, mut snode) = (from - 1, to - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let mut iter = path.iter();
    let first = iter.next().ok_or_else(wrong_len)?;
    let (mut fr, mut sr) = (*first, *first);
    for c in iter {
        if snode == 0 {
            return Err(wrong_len());
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(wrong_len());
    }
    if &fr == from_root && &sr == to_root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// The right edge of the tree: hashes of the perfect subtrees covering `[0, size)`, largest
/// first. Appending a leaf touches only this, and yields the subtree hashes to store on the
/// new leaf's row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frontier {
    size: u64,
    hashes: Vec<Hash>,
}

impl Frontier {
    /// The nodes a backend reads to rebuild the frontier of a tree of `size` leaves.
    pub fn plan(size: u64) -> Vec<NodeId> {
        let mut out = Vec::new();
        decompose(0, size, &mut out);
        out
    }

    /// Rebuilds the frontier from the nodes listed by [`Frontier::plan`].
    pub fn from_nodes(size: u64, nodes: &HashMap<NodeId, Hash>) -> Result<Self, ProofError> {
        let hashes = Self::plan(size)
            .into_iter()
            .map(|id| nodes.get(&id).copied().ok_or(ProofError::MissingNode(id)))
            .collect::<Result<_, _>>()?;
        Ok(Self { size, hashes })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf (its data is the event digest). Returns the leaf hash and the hashes of
    /// the perfect subtrees completed by it, level 1 upwards: what the row stores.
    pub fn push(&mut self, leaf_data: &[u8]) -> (Hash, Vec<Hash>) {
        let leaf = leaf_hash(leaf_data);
        let merges = stored_levels(self.size);
        let mut completed = Vec::with_capacity(merges as usize);
        let mut acc = leaf;
        for _ in 0..merges {
            // The frontier's last entry is the left sibling at this level.
            let left = self.hashes.pop().unwrap_or_default();
            acc = node_hash(&left, &acc);
            completed.push(acc);
        }
        self.hashes.push(acc);
        self.size += 1;
        (leaf, completed)
    }

    /// The root hash of the tree.
    pub fn root(&self) -> Hash {
        let mut iter = self.hashes.iter().rev();
        match iter.next() {
            None => empty_root(),
            Some(last) => iter.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }
}

/// Reads node hashes out of rows: `(position, digest, stored subtree hashes)`.
pub fn nodes_from_rows<'a>(
    wanted: &[NodeId],
    rows: impl IntoIterator<Item = (u64, &'a [u8], &'a [u8])>,
) -> HashMap<NodeId, Hash> {
    let rows: HashMap<u64, (&[u8], &[u8])> =
        rows.into_iter().map(|(p, d, s)| (p, (d, s))).collect();
    let mut out = HashMap::with_capacity(wanted.len());
    for id in wanted {
        let Some((digest, subtrees)) = rows.get(&id.row()) else {
            continue;
        };
        let hash = if id.level == 0 {
            Some(leaf_hash(digest))
        } else {
            let at = (id.level as usize - 1) * 32;
            subtrees
                .get(at..at + 32)
                .and_then(|s| <Hash>::try_from(s).ok())
        };
        if let Some(h) = hash {
            out.insert(*id, h);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
            }
        }
    }

    /// `(position, digest, stored subtree hashes)`.
    type Row = (u64, Vec<u8>, Vec<u8>);

    /// Builds a tree the way the ledger does and returns every stored row.
    fn build(n: u64) -> (Vec<Hash>, Vec<Row>, Frontier) {
        let mut f = Frontier::default();
        let mut leaves = Vec::new();
        let mut rows = Vec::new();
        for p in 0..n {
            let data = sha2::Sha256::digest(p.to_be_bytes()).to_vec();
            let (leaf, completed) = f.push(&data);
            leaves.push(leaf);
            rows.push((p, data, completed.concat()));
        }
        (leaves, rows, f)
    }

    fn lookup(rows: &[(u64, Vec<u8>, Vec<u8>)], plan: &[NodeId]) -> HashMap<NodeId, Hash> {
        nodes_from_rows(
            plan,
            rows.iter()
                .map(|(p, d, s)| (*p, d.as_slice(), s.as_slice())),
        )
    }

    #[test]
    fn known_answer_empty_tree() {
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn stored_row_of_node() {
        assert_eq!(NodeId { level: 0, index: 5 }.row(), 5);
        assert_eq!(NodeId { level: 1, index: 0 }.row(), 1);
        assert_eq!(NodeId { level: 2, index: 1 }.row(), 7);
        assert_eq!(stored_levels(7), 3);
        assert_eq!(stored_levels(6), 0);
    }

    #[test]
    fn proofs_read_logarithmic_rows() {
        let size = 1_000_000u64;
        let plan = ProofPlan::inclusion(123_456, size).unwrap();
        assert!(plan.nodes().len() <= 2 * 20, "{}", plan.nodes().len());
        let plan = ProofPlan::consistency(333_333, size).unwrap();
        assert!(plan.nodes().len() <= 3 * 20, "{}", plan.nodes().len());
    }

    proptest! {
        #[test]
        fn frontier_root_matches_naive(n in 0u64..300) {
            let (leaves, rows, f) = build(n);
            prop_assert_eq!(f.root(), naive_root(&leaves));
            let plan = ProofPlan::root(n);
            let nodes = lookup(&rows, plan.nodes());
            if n > 0 {
                prop_assert_eq!(plan.compute(&nodes).unwrap()[0], naive_root(&leaves));
            }
            let rebuilt = Frontier::from_nodes(n, &lookup(&rows, &Frontier::plan(n))).unwrap();
            prop_assert_eq!(rebuilt, f);
        }

        #[test]
        fn inclusion_proofs_verify(n in 1u64..200, seed in any::<u64>()) {
            let (leaves, rows, f) = build(n);
            let m = seed % n;
            let plan = ProofPlan::inclusion(m, n).unwrap();
            let proof = plan.compute(&lookup(&rows, plan.nodes())).unwrap();
            prop_assert_eq!(verify_inclusion(m, n, &leaves[m as usize], &proof, &f.root()), Ok(()));
            // Any wrong leaf, index or proof hash fails.
            let other = leaf_hash(b"not the leaf");
            prop_assert!(verify_inclusion(m, n, &other, &proof, &f.root()).is_err());
            if !proof.is_empty() {
                let mut bad = proof.clone();
                bad[0][0] ^= 1;
                prop_assert!(verify_inclusion(m, n, &leaves[m as usize], &bad, &f.root()).is_err());
                prop_assert!(verify_inclusion(m, n, &leaves[m as usize], &proof[1..], &f.root()).is_err());
            }
            if n > 1 {
                let wrong = (m + 1) % n;
                prop_assert!(verify_inclusion(wrong, n, &leaves[m as usize], &proof, &f.root()).is_err());
            }
        }

        #[test]
        fn consistency_proofs_verify(n in 1u64..200, seed in any::<u64>()) {
            let (leaves, rows, f) = build(n);
            let m = seed % (n + 1);
            let plan = ProofPlan::consistency(m, n).unwrap();
            let proof = plan.compute(&lookup(&rows, plan.nodes())).unwrap();
            let old_root = naive_root(&leaves[..m as usize]);
            prop_assert_eq!(verify_consistency(m, n, &old_root, &f.root(), &proof), Ok(()));
            if m > 0 && m < n {
                let mut forged = old_root;
                forged[3] ^= 0x40;
                prop_assert!(verify_consistency(m, n, &forged, &f.root(), &proof).is_err());
                let mut bad = proof.clone();
                let last = bad.len() - 1;
                bad[last][0] ^= 1;
                prop_assert!(verify_consistency(m, n, &old_root, &f.root(), &bad).is_err());
            }
        }
    }
}
