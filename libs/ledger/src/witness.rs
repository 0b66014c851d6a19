//! Witnesses, the pure part: the c2sp.org/tlog-witness `add-checkpoint` exchange, a witness's
//! decision, and c2sp.org/tlog-cosignature v1 (Ed25519) cosignatures and witness policies.
//!
//! Spec revision followed: tlog-witness as of the C2SP main text after v1.0.0, where a
//! checkpoint of the size the witness already has but another root is answered 422 (v1.0.0
//! left that case to 409); everything else is as in v1.0.0. Cosignatures are
//! tlog-cosignature v1.0.0 `cosignature/v1` (key id algorithm byte 0x04, a timestamp).
//!
//! ```text
//! request  = "old " <size> "\n" *(<base64 consistency proof hash> "\n") "\n" <checkpoint note>
//! signed   = "cosignature/v1\ntime " <unix seconds> "\n" <checkpoint body>
//! line     = "— " <witness name> " " base64(key id(4) || u64 time || Ed25519 signature(64)) "\n"
//! ```

use crate::checkpoint::SignedCheckpoint;
use crate::keys::{NoteKey, Vkey};
use crate::merkle::{self, Hash};
use crate::{Error, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use sha2::{Digest as _, Sha256};

/// The C2SP signature type byte of cosignature/v1 keys.
pub const COSIGNATURE_V1_ALG: u8 = 0x04;
/// Content type of a 409 answer's body (the witness's current size).
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

fn cosigner_key_hash(name: &str, public: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([COSIGNATURE_V1_ALG]);
    h.update(public.as_bytes());
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// A witness's public cosigning key: `name+hex(key id)+base64(0x04 || public key)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessKey {
    pub name: String,
    pub key_id: [u8; 4],
    pub key: VerifyingKey,
}

impl WitnessKey {
    /// The cosigner verifier key of a witness holding `key` (its name is the witness's name).
    pub fn of(key: &NoteKey) -> Self {
        let public = key.verifying_key();
        Self {
            name: key.name().to_owned(),
            key_id: cosigner_key_hash(key.name(), &public),
            key: public,
        }
    }

    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| Error::Key(format!("witness key {text:?}: {why}"));
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(hash), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected name+hash+key"));
        };
        let raw = B64.decode(b64).map_err(|_| bad("key is not base64"))?;
        let [alg, public @ ..] = raw.as_slice() else {
            return Err(bad("empty key"));
        };
        if *alg != COSIGNATURE_V1_ALG {
            return Err(bad("not a cosignature/v1 (0x04) key"));
        }
        let public: [u8; 32] = public
            .try_into()
            .map_err(|_| bad("public key must be 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&public).map_err(|_| bad("not an Ed25519 point"))?;
        let key_id = cosigner_key_hash(name, &key);
        if hex::encode(key_id) != hash {
            return Err(bad("key hash does not match the key"));
        }
        Ok(Self {
            name: name.to_owned(),
            key_id,
            key,
        })
    }

    pub fn to_text(&self) -> String {
        let mut raw = vec![COSIGNATURE_V1_ALG];
        raw.extend_from_slice(self.key.as_bytes());
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_id),
            B64.encode(raw)
        )
    }
}

/// The checkpoint body (the note text before the blank line, with its final newline).
pub fn note_body(note: &str) -> Result<&str> {
    note.find("\n\n")
        .map(|i| &note[..=i])
        .ok_or_else(|| Error::BadCheckpoint("no blank line between body and signatures".into()))
}

fn cosigned_message(body: &str, time: u64) -> String {
    format!("cosignature/v1\ntime {time}\n{body}")
}

/// A witness's cosignature line over the checkpoint `body`, at `time` (Unix seconds).
pub fn cosign(key: &NoteKey, body: &str, time: u64) -> String {
    let w = WitnessKey::of(key);
    let sig = key.sign(cosigned_message(body, time).as_bytes());
    let mut raw = w.key_id.to_vec();
    raw.extend_from_slice(&time.to_be_bytes());
    raw.extend_from_slice(&sig);
    format!("\u{2014} {} {}\n", w.name, B64.encode(raw))
}

/// The time of `witness`'s valid cosignature in `note`, if there is one.
pub fn cosigned_by(note: &str, witness: &WitnessKey) -> Option<u64> {
    let body = note_body(note).ok()?;
    let sigs = &note[body.len() + 1..];
    sigs.lines().find_map(|line| {
        let (name, b64) = line.strip_prefix("\u{2014} ")?.split_once(' ')?;
        if name != witness.name {
            return None;
        }
        let raw = B64.decode(b64).ok()?;
        if raw.len() != 4 + 8 + 64 || raw[..4] != witness.key_id {
            return None;
        }
        let time = u64::from_be_bytes(raw[4..12].try_into().ok()?);
        let sig = Signature::from_bytes(&raw[12..].try_into().ok()?);
        witness
            .key
            .verify(cosigned_message(body, time).as_bytes(), &sig)
            .ok()
            .map(|()| time)
    })
}

/// Adds cosignature lines to a note (skipping ones it already carries).
pub fn add_cosignatures(note: &str, lines: &str) -> String {
    let mut out = note.to_owned();
    for line in lines.lines().filter(|l| !l.is_empty()) {
        if !note.lines().any(|l| l == line) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// When a checkpoint counts as witnessed: cosigned by at least `threshold` of `witnesses`.
#[derive(Debug, Clone, Default)]
pub struct WitnessPolicy {
    pub witnesses: Vec<WitnessKey>,
    pub threshold: usize,
}

impl WitnessPolicy {
    pub fn is_set(&self) -> bool {
        self.threshold > 0
    }

    /// How many of the policy's witnesses cosigned `note`.
    pub fn cosigners(&self, note: &str) -> usize {
        self.witnesses
            .iter()
            .filter(|w| cosigned_by(note, w).is_some())
            .count()
    }

    pub fn is_witnessed(&self, note: &str) -> bool {
        self.cosigners(note) >= self.threshold
    }
}

/// An `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    pub old_size: u64,
    pub proof: Vec<Hash>,
    pub note: String,
}

impl AddCheckpoint {
    pub fn to_text(&self) -> String {
        let mut out = format!("old {}\n", self.old_size);
        for h in &self.proof {
            out.push_str(&B64.encode(h));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.note);
        out
    }

    pub fn parse(text: &str) -> std::result::Result<Self, Refusal> {
        let bad = |why: &str| Refusal::new(400, why);
        let (head, note) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line before the checkpoint"))?;
        let mut lines = head.lines();
        let old_size = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .filter(|n| !(n.len() > 1 && n.starts_with('0')))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad("first line must be `old <size>`"))?;
        let proof: Vec<Hash> = lines
            .map(|l| {
                B64.decode(l)
                    .ok()
                    .and_then(|h| Hash::try_from(h).ok())
                    .ok_or_else(|| bad("proof line is not a base64 SHA-256 hash"))
            })
            .collect::<std::result::Result<_, _>>()?;
        if proof.len() > 63 {
            return Err(bad("consistency proof longer than 63 hashes"));
        }
        Ok(Self {
            old_size,
            proof,
            note: note.to_owned(),
        })
    }
}

/// A witness's refusal: the HTTP status the spec gives it and a body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {body}")]
pub struct Refusal {
    pub status: u16,
    pub body: String,
}

impl Refusal {
    fn new(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            body: body.into(),
        }
    }
}

/// The newest checkpoint a witness holds for a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witnessed {
    pub size: u64,
    pub root: Hash,
}

/// A witness's decision on `req` for the log verified by `log_key`, holding `stored` (None:
/// never saw it; a witness starts from the empty tree). Ok: the checkpoint to store and
/// cosign. A refusal names why, with the spec's status: 403 not signed by the log, 409 `old`
/// is not the size held (body: that size), 422 not consistent (a fork), 400 malformed.
pub fn decide(
    req: &AddCheckpoint,
    log_key: &Vkey,
    stored: Option<&Witnessed>,
) -> std::result::Result<SignedCheckpoint, Refusal> {
    let cp = SignedCheckpoint::verify(&req.note, log_key)
        .map_err(|e| Refusal::new(403, format!("checkpoint not signed by the log: {e}")))?;
    if cp.checkpoint.origin != log_key.name {
        return Err(Refusal::new(404, "unknown log origin"));
    }
    let held = stored.cloned().unwrap_or(Witnessed {
        size: 0,
        root: merkle::empty_root(),
    });
    if req.old_size != held.size {
        return Err(Refusal::new(409, held.size.to_string()));
    }
    let size = cp.checkpoint.size;
    if size < held.size {
        return Err(Refusal::new(
            400,
            format!(
                "checkpoint of size {size} is older than the size {} held",
                held.size
            ),
        ));
    }
    if size == held.size {
        if cp.checkpoint.root != held.root || !req.proof.is_empty() {
            return Err(Refusal::new(
                422,
                format!("a different tree of the size {size} held: the log forked"),
            ));
        }
        return Ok(cp);
    }
    merkle::verify_consistency(held.size, size, &held.root, &cp.checkpoint.root, &req.proof)
        .map_err(|e| {
            Refusal::new(
                422,
                format!(
                    "size {size} does not extend the size {} held ({e}): the log forked",
                    held.size
                ),
            )
        })?;
    Ok(cp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::merkle::Frontier;

    fn tree(n: u64) -> (Frontier, Vec<Hash>) {
        let mut f = Frontier::default();
        let mut roots = vec![merkle::empty_root()];
        for i in 0..n {
            f.push(&[i as u8; 32]);
            roots.push(f.root());
        }
        (f, roots)
    }

    #[test]
    fn cosignatures_verify_and_bind_the_body_and_key() {
        let wk = NoteKey::generate("witness.test/w1").unwrap();
        let w = WitnessKey::of(&wk);
        assert_eq!(WitnessKey::parse(&w.to_text()).unwrap(), w);
        let log = NoteKey::generate("goose.test/log").unwrap();
        let note = Checkpoint {
            origin: "goose.test/log".into(),
            size: 3,
            root: [1; 32],
        }
        .sign(&log)
        .unwrap()
        .note;
        let line = cosign(&wk, note_body(&note).unwrap(), 1_700_000_000);
        let cosigned = add_cosignatures(&note, &line);
        assert_eq!(cosigned_by(&cosigned, &w), Some(1_700_000_000));
        // The log's own verification still passes with the extra line.
        SignedCheckpoint::verify(&cosigned, &Vkey::parse(&log.vkey()).unwrap()).unwrap();
        let other = WitnessKey::of(&NoteKey::generate("witness.test/w1").unwrap());
        assert_eq!(cosigned_by(&cosigned, &other), None);
        let moved = cosigned.replace("\n3\n", "\n4\n");
        assert_eq!(cosigned_by(&moved, &w), None);
        let policy = WitnessPolicy {
            witnesses: vec![w, other],
            threshold: 2,
        };
        assert_eq!(policy.cosigners(&cosigned), 1);
        assert!(!policy.is_witnessed(&cosigned));
    }

    #[test]
    fn a_witness_accepts_extensions_and_refuses_forks_and_stale_sizes() {
        let log = NoteKey::generate("goose.test/log").unwrap();
        let vkey = Vkey::parse(&log.vkey()).unwrap();
        let (_, roots) = tree(10);
        let note = |size: u64, root: Hash| {
            Checkpoint {
                origin: "goose.test/log".into(),
                size,
                root,
            }
            .sign(&log)
            .unwrap()
            .note
        };
        // First contact: from the empty tree, no proof needed.
        let first = AddCheckpoint {
            old_size: 0,
            proof: vec![],
            note: note(4, roots[4]),
        };
        let req = AddCheckpoint::parse(&first.to_text()).unwrap();
        assert_eq!(req, first);
        assert!(decide(&req, &vkey, None).is_ok());
        let held = Witnessed {
            size: 4,
            root: roots[4],
        };
        // A stale `old`: 409 with the size held.
        let stale = AddCheckpoint {
            old_size: 0,
            proof: vec![],
            note: note(7, roots[7]),
        };
        assert_eq!(
            decide(&stale, &vkey, Some(&held)).unwrap_err(),
            Refusal::new(409, "4")
        );
        // A fork at the same size: 422.
        let fork = AddCheckpoint {
            old_size: 4,
            proof: vec![],
            note: note(4, [9; 32]),
        };
        assert_eq!(decide(&fork, &vkey, Some(&held)).unwrap_err().status, 422);
        // An extension without a valid proof: 422.
        let unproven = AddCheckpoint {
            old_size: 4,
            proof: vec![[0; 32]],
            note: note(7, roots[7]),
        };
        assert_eq!(
            decide(&unproven, &vkey, Some(&held)).unwrap_err().status,
            422
        );
        // Not signed by the log: 403.
        let other = NoteKey::generate("goose.test/log").unwrap();
        let forged = AddCheckpoint {
            old_size: 4,
            proof: vec![],
            note: Checkpoint {
                origin: "goose.test/log".into(),
                size: 4,
                root: roots[4],
            }
            .sign(&other)
            .unwrap()
            .note,
        };
        assert_eq!(decide(&forged, &vkey, Some(&held)).unwrap_err().status, 403);
        assert_eq!(AddCheckpoint::parse("old 01\n\nx").unwrap_err().status, 400);
    }
}
