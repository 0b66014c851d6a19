//! Commit seals (chain format v2): every commit is signed as a whole by the writing service's
//! key, over the log's origin, the commit's first position and the Merkle tree after it.
//!
//! A seal is a C2SP signed note shaped like a checkpoint with one extension line, so any
//! signed-note library checks it with the service's vkey:
//!
//! ```text
//! <origin>\n
//! <tree size after the commit = last position + 1>\n
//! <base64 root of that tree>\n
//! golden-goose/seal/v2 first <first position of the commit>\n
//! \n
//! — <service key name> <base64(key hash || Ed25519 signature over the four body lines)>\n
//! ```
//!
//! Why this binds positions: the root commits to every event before and in the commit, in
//! order, and the first position bounds the commit. Removing, inserting or reordering any
//! event changes the root of every later tree, so each later seal stops verifying unless it is
//! signed again with its writer's key. A database administrator without service keys can only
//! cut the log's tail (whole commits), and that is what checkpoints kept outside the database
//! catch. See docs/adr/0005-commit-seals-and-checkpoints-outside-the-database.md.

use crate::canonical;
use crate::event::RecordedEvent;
use crate::keys::{Keyring, NoteKey};
use crate::merkle::{self, Hash};
use crate::{Error, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use std::sync::Arc;

/// The extension line's keyword.
pub const SEAL_EXTENSION: &str = "golden-goose/seal/v2";

/// A parsed seal (not yet verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    pub origin: String,
    /// First position of the commit.
    pub first: u64,
    /// Tree size after the commit (its last position + 1).
    pub size: u64,
    pub root: Hash,
    /// `name+hex(key hash)` of the signer, as events name their writer.
    pub key_id: String,
    pub signature: [u8; 64],
    /// The whole note, verbatim.
    pub note: String,
}

fn bad(why: impl Into<String>) -> Error {
    Error::BadProof(format!("seal: {}", why.into()))
}

/// The signed body of a seal.
pub fn body(origin: &str, first: u64, size: u64, root: &Hash) -> String {
    format!(
        "{origin}\n{size}\n{}\n{SEAL_EXTENSION} first {first}\n",
        B64.encode(root)
    )
}

impl Seal {
    /// Signs a seal of the commit `[first, size)` whose tree has `root`.
    pub fn sign(origin: &str, first: u64, size: u64, root: &Hash, key: &NoteKey) -> Result<Self> {
        if origin.is_empty() || origin.contains('\n') {
            return Err(Error::InvalidInput(
                "the log origin must be one non-empty line".into(),
            ));
        }
        if first >= size {
            return Err(Error::InvalidInput(format!(
                "a commit seal needs first < size (got {first} and {size})"
            )));
        }
        let body = body(origin, first, size, root);
        let signature = key.sign(body.as_bytes());
        let mut raw = key.key_hash().to_vec();
        raw.extend_from_slice(&signature);
        let note = format!("{body}\n\u{2014} {} {}\n", key.name(), B64.encode(raw));
        Ok(Self {
            origin: origin.to_owned(),
            first,
            size,
            root: *root,
            key_id: key.key_id().to_owned(),
            signature,
            note,
        })
    }

    /// Parses a seal note; checks its shape only (see [`Seal::verify`]).
    pub fn parse(note: &str) -> Result<Self> {
        let (body, sigs) = note
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line between body and signature"))?;
        let lines: Vec<&str> = body.split('\n').collect();
        let [origin, size, root, ext] = lines.as_slice() else {
            return Err(bad(format!(
                "body has {} lines; a seal has origin, size, root and the {SEAL_EXTENSION} line",
                lines.len()
            )));
        };
        let size = decimal(size).ok_or_else(|| bad("second line must be the decimal tree size"))?;
        let root: Hash = B64
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| bad("third line must be a base64 SHA-256 root hash"))?;
        let first = ext
            .strip_prefix(SEAL_EXTENSION)
            .and_then(|r| r.strip_prefix(" first "))
            .and_then(decimal)
            .ok_or_else(|| bad(format!("fourth line must be `{SEAL_EXTENSION} first <n>`")))?;
        if origin.is_empty() || first >= size {
            return Err(bad("empty origin, or first position not below the size"));
        }
        let mut sig_lines = sigs.lines();
        let line = sig_lines.next().ok_or_else(|| bad("no signature line"))?;
        if sig_lines.next().is_some() || !sigs.ends_with('\n') {
            return Err(bad("a seal carries exactly one signature line"));
        }
        let (name, b64) = line
            .strip_prefix("\u{2014} ")
            .and_then(|r| r.split_once(' '))
            .ok_or_else(|| bad(format!("malformed signature line {line:?}")))?;
        let raw = B64
            .decode(b64)
            .map_err(|_| bad("signature is not base64"))?;
        if raw.len() != 68 {
            return Err(bad("signature must be a 4-byte key hash and 64 bytes"));
        }
        let signature: [u8; 64] = raw[4..]
            .try_into()
            .map_err(|_| bad("signature must be 64 bytes"))?;
        Ok(Self {
            origin: (*origin).to_owned(),
            first,
            size,
            root,
            key_id: format!("{name}+{}", hex::encode(&raw[..4])),
            signature,
            note: note.to_owned(),
        })
    }

    /// The last position the seal covers.
    pub fn last(&self) -> u64 {
        self.size - 1
    }

    /// The bytes the signature covers.
    pub fn message(&self) -> String {
        body(&self.origin, self.first, self.size, &self.root)
    }

    /// Checks the signature against the keyring (the key is found by the note's key id).
    pub fn verify(&self, keyring: &Keyring) -> Result<()> {
        keyring.verify(&self.key_id, self.message().as_bytes(), &self.signature)
    }
}

fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    s.parse().ok()
}

/// What a committer seals with: the log's origin and this process's key.
#[derive(Debug, Clone)]
pub struct Sealer {
    pub origin: String,
    pub key: Arc<NoteKey>,
}

impl Sealer {
    pub fn seal(&self, first: u64, size: u64, root: &Hash) -> Result<Seal> {
        Seal::sign(&self.origin, first, size, root, &self.key)
    }
}

const AUTHORSHIP_MAGIC: &[u8] = b"GGPROOF";

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(bad("authorship data is truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn len(&mut self) -> Result<usize> {
        let b: [u8; 4] = self
            .take(4)?
            .try_into()
            .map_err(|_| bad("authorship data is truncated"))?;
        Ok(u32::from_be_bytes(b) as usize)
    }
}

/// Offline proof that one event was written by a key, in O(log n): the event's record, the
/// seal of its commit, and the inclusion path of the event in the seal's tree. It travels as
/// the `extra` data of a C2SP tlog-proof file (opaque to other verifiers).
///
/// ```text
/// extra = "GGPROOF" u8(2) bytes(record) str(seal note) u32(n) n * hash32
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorship {
    pub record: Vec<u8>,
    pub seal: String,
    /// Inclusion path of the event in the tree of the seal's size, leaf's sibling first.
    pub path: Vec<Hash>,
}

/// A verified authorship proof.
#[derive(Debug, Clone)]
pub struct Authored {
    pub event: RecordedEvent,
    pub seal: Seal,
}

impl Authorship {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.record.len() + self.seal.len() + 64 + 32 * 40);
        out.extend_from_slice(AUTHORSHIP_MAGIC);
        out.push(canonical::FORMAT_VERSION);
        for part in [self.record.as_slice(), self.seal.as_bytes()] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part);
        }
        out.extend_from_slice(&(self.path.len() as u32).to_be_bytes());
        for h in &self.path {
            out.extend_from_slice(h);
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let short = || bad("authorship data is truncated");
        let rest = bytes
            .strip_prefix(AUTHORSHIP_MAGIC)
            .ok_or_else(|| bad("authorship data does not start with GGPROOF"))?;
        let (&version, rest) = rest.split_first().ok_or_else(short)?;
        if version != canonical::FORMAT_VERSION {
            return Err(bad(format!(
                "authorship format version {version} is not supported"
            )));
        }
        let mut r = Cursor(rest);
        let n = r.len()?;
        let record = r.take(n)?.to_vec();
        let n = r.len()?;
        let seal = String::from_utf8(r.take(n)?.to_vec()).map_err(|_| bad("seal is not UTF-8"))?;
        let n = r.len()?;
        if n > 64 {
            return Err(bad("inclusion path longer than 64 hashes"));
        }
        let mut path = Vec::with_capacity(n);
        for _ in 0..n {
            path.push(r.take(32)?.try_into().map_err(|_| short())?);
        }
        if !r.0.is_empty() {
            return Err(bad("trailing bytes after the authorship data"));
        }
        Ok(Self { record, seal, path })
    }

    /// Checks that the event is in a commit sealed for `origin` by a key in `keyring`, and
    /// that the event names that key as its writer.
    pub fn verify(&self, keyring: &Keyring, origin: &str) -> Result<Authored> {
        let seal = Seal::parse(&self.seal)?;
        let decoded = canonical::decode_record(&self.record, 0)?;
        let event = decoded.event;
        if seal.origin != origin {
            return Err(bad(format!(
                "sealed for log {:?}, not {origin:?}",
                seal.origin
            )));
        }
        if event.position < seal.first || event.position > seal.last() {
            return Err(bad(format!(
                "event at position {} is outside the sealed commit [{}, {}]",
                event.position,
                seal.first,
                seal.last()
            )));
        }
        if event.key_id != seal.key_id {
            return Err(bad(format!(
                "event names writer {} but the commit is sealed by {}",
                event.key_id, seal.key_id
            )));
        }
        seal.verify(keyring)?;
        merkle::verify_inclusion(
            event.position,
            seal.size,
            &merkle::leaf_hash(&event.digest),
            &self.path,
            &seal.root,
        )
        .map_err(|e| bad(format!("event is not in the sealed tree: {e}")))?;
        Ok(Authored { event, seal })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Vkey;

    #[test]
    fn seals_round_trip_and_bind_every_field() {
        let key = NoteKey::generate("svc-a").unwrap();
        let mut ring = Keyring::new();
        ring.add(&Vkey::parse(&key.vkey()).unwrap());
        let seal = Seal::sign("goose.test/ledger", 3, 9, &[7; 32], &key).unwrap();
        let parsed = Seal::parse(&seal.note).unwrap();
        assert_eq!(parsed, seal);
        parsed.verify(&ring).unwrap();
        for (from, to) in [
            ("first 3", "first 2"),
            ("\n9\n", "\n10\n"),
            ("goose.test/ledger", "goose.test/other"),
        ] {
            let forged = Seal::parse(&seal.note.replace(from, to)).unwrap();
            assert!(forged.verify(&ring).is_err(), "{from} -> {to}");
        }
        assert!(Seal::parse(&seal.note.replace("first 3", "first 03")).is_err());
        assert!(Seal::parse(&seal.note.replace("first 3", "first 9")).is_err());
    }

    #[test]
    fn authorship_data_round_trips_and_refuses_trailing_bytes() {
        let a = Authorship {
            record: b"rec".to_vec(),
            seal: "note".into(),
            path: vec![[1; 32], [2; 32]],
        };
        let bytes = a.encode();
        assert_eq!(Authorship::decode(&bytes).unwrap(), a);
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Authorship::decode(&longer).is_err());
        for cut in 0..bytes.len() {
            assert!(Authorship::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
