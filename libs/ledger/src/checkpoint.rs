//! Checkpoints in the C2SP `tlog-checkpoint` signed-note format, and offline proofs in the
//! C2SP `tlog-proof` format.
//!
//! ```text
//! <origin>\n<tree size>\n<base64 root hash>\n\n— <signer name> <base64(key hash || signature)>\n
//! ```
//! The signature covers the body (the first three lines, each with its newline).

use crate::keys::{NoteKey, Vkey};
use crate::merkle::{self, Hash};
use crate::{Error, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Verifier as _};

/// An unsigned tree head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

/// A checkpoint with its signed-note text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    /// The whole note, verbatim.
    pub note: String,
}

fn bad(why: impl Into<String>) -> Error {
    Error::BadCheckpoint(why.into())
}

impl Checkpoint {
    /// The note body that is signed.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Signs the checkpoint with the log key.
    pub fn sign(&self, key: &NoteKey) -> Result<SignedCheckpoint> {
        if self.origin.is_empty() || self.origin.contains('\n') {
            return Err(Error::InvalidInput(
                "checkpoint origin must be one non-empty line".into(),
            ));
        }
        let body = self.body();
        let mut sig = key.key_hash().to_vec();
        sig.extend_from_slice(&key.sign(body.as_bytes()));
        let note = format!("{body}\n\u{2014} {} {}\n", key.name(), B64.encode(sig));
        Ok(SignedCheckpoint {
            checkpoint: self.clone(),
            note,
        })
    }
}

impl SignedCheckpoint {
    /// Parses a note and verifies that `vkey` signed it. Other signatures (witness cosignatures)
    /// are allowed and ignored.
    pub fn verify(note: &str, vkey: &Vkey) -> Result<Self> {
        let (body, sigs) = note
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line between body and signatures"))?;
        let body = format!("{body}\n");
        let mut lines = body.lines();
        let origin = lines
            .next()
            .ok_or_else(|| bad("missing origin"))?
            .to_owned();
        let size = lines
            .next()
            .and_then(|l| l.parse::<u64>().ok())
            .ok_or_else(|| bad("second line must be the decimal tree size"))?;
        let root: Hash = lines
            .next()
            .and_then(|l| B64.decode(l).ok())
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| bad("third line must be a base64 SHA-256 root hash"))?;
        if origin.is_empty() {
            return Err(bad("empty origin"));
        }
        if lines.any(|l| l.starts_with(crate::seal::SEAL_EXTENSION)) {
            return Err(bad("this note is a commit seal, not a checkpoint"));
        }
        let mut found = false;
        for line in sigs.lines() {
            let Some(rest) = line.strip_prefix("\u{2014} ") else {
                return Err(bad(format!("malformed signature line {line:?}")));
            };
            let Some((name, b64)) = rest.split_once(' ') else {
                return Err(bad(format!("malformed signature line {line:?}")));
            };
            let raw = B64
                .decode(b64)
                .map_err(|_| bad("signature is not base64"))?;
            if name != vkey.name || raw.len() < 4 || raw[..4] != vkey.key_hash {
                continue;
            }
            let sig: [u8; 64] = raw[4..]
                .try_into()
                .map_err(|_| bad("Ed25519 signature must be 64 bytes"))?;
            vkey.key
                .verify(body.as_bytes(), &Signature::from_bytes(&sig))
                .map_err(|_| bad(format!("signature by {} does not verify", vkey.key_id())))?;
            found = true;
        }
        if !found {
            return Err(bad(format!("no signature by {}", vkey.key_id())));
        }
        Ok(Self {
            checkpoint: Checkpoint { origin, size, root },
            note: note.to_owned(),
        })
    }
}

/// An offline inclusion proof (C2SP `tlog-proof@v1`). `extra` carries the canonical event
/// record so the verifier can recompute the leaf itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    pub extra: Option<Vec<u8>>,
    pub index: u64,
    pub hashes: Vec<Hash>,
    pub checkpoint_note: String,
}

const PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";

impl TlogProof {
    /// The file text.
    pub fn to_text(&self) -> String {
        let mut out = format!("{PROOF_HEADER}\n");
        if let Some(extra) = &self.extra {
            out.push_str(&format!("extra {}\n", B64.encode(extra)));
        }
        out.push_str(&format!("index {}\n", self.index));
        for h in &self.hashes {
            out.push_str(&B64.encode(h));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint_note);
        out
    }

    /// Parses the file text (no verification).
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| Error::BadProof(why.to_owned());
        let (head, checkpoint_note) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line before the checkpoint"))?;
        let mut lines = head.lines().peekable();
        if lines.next() != Some(PROOF_HEADER) {
            return Err(bad("first line must be c2sp.org/tlog-proof@v1"));
        }
        let mut extra = None;
        if let Some(e) = lines.peek().and_then(|l| l.strip_prefix("extra ")) {
            extra = Some(B64.decode(e).map_err(|_| bad("extra is not base64"))?);
            lines.next();
        }
        let index_line = lines.next().ok_or_else(|| bad("missing index line"))?;
        let index_text = index_line
            .strip_prefix("index ")
            .ok_or_else(|| bad("missing index line"))?;
        if index_text.len() > 1 && index_text.starts_with('0') {
            return Err(bad("index has leading zeroes"));
        }
        let index = index_text
            .parse()
            .map_err(|_| bad("index is not a decimal number"))?;
        let hashes = lines
            .map(|l| {
                B64.decode(l)
                    .ok()
                    .and_then(|h| <Hash>::try_from(h).ok())
                    .ok_or_else(|| bad("proof line is not a base64 SHA-256 hash"))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            extra,
            index,
            hashes,
            checkpoint_note: checkpoint_note.to_owned(),
        })
    }

    /// Verifies the proof against the log's verifier key, given the leaf data (the event
    /// digest). Returns the verified checkpoint.
    pub fn verify(&self, vkey: &Vkey, leaf_data: &[u8]) -> Result<SignedCheckpoint> {
        let cp = SignedCheckpoint::verify(&self.checkpoint_note, vkey)?;
        merkle::verify_inclusion(
            self.index,
            cp.checkpoint.size,
            &merkle::leaf_hash(leaf_data),
            &self.hashes,
            &cp.checkpoint.root,
        )
        .map_err(|e| Error::BadProof(format!("inclusion proof does not verify: {e}")))?;
        Ok(cp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_checkpoint() {
        let key = NoteKey::generate("goose.test/log").unwrap();
        let vkey = Vkey::parse(&key.vkey()).unwrap();
        let cp = Checkpoint {
            origin: "goose.test/log".into(),
            size: 12,
            root: [9; 32],
        };
        let signed = cp.sign(&key).unwrap();
        assert!(signed.note.starts_with("goose.test/log\n12\n"));
        let back = SignedCheckpoint::verify(&signed.note, &vkey).unwrap();
        assert_eq!(back.checkpoint, cp);
        let forged = signed.note.replace("\n12\n", "\n13\n");
        assert!(SignedCheckpoint::verify(&forged, &vkey).is_err());
        let other = Vkey::parse(&NoteKey::generate("goose.test/log").unwrap().vkey()).unwrap();
        assert!(SignedCheckpoint::verify(&signed.note, &other).is_err());
    }

    #[test]
    fn proof_text_round_trips() {
        let p = TlogProof {
            extra: Some(b"record".to_vec()),
            index: 0,
            hashes: vec![[1; 32], [2; 32]],
            checkpoint_note: "o\n1\nAAAA\n\n\u{2014} o abc\n".into(),
        };
        assert_eq!(TlogProof::parse(&p.to_text()).unwrap(), p);
        assert!(TlogProof::parse(&p.to_text().replace("index 0", "index 00")).is_err());
    }
}
