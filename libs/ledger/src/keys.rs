//! Ed25519 keys in the C2SP signed-note formats, and the keyring that verifies signatures.
//!
//! One key type serves both purposes: a service key signs event contents, the log key signs
//! checkpoints. Their text forms are the ones `golang.org/x/mod/sumdb/note` uses, so standard
//! tooling reads them:
//! - verifier key (vkey): `<name>+<hex key id>+<base64(0x01 || public key)>`
//! - private key file: `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || seed)>`
//!
//! The key id is the first 4 bytes of `SHA-256(name || 0x0A || 0x01 || public key)`.

use crate::{Error, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

const ALG_ED25519: u8 = 0x01;

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('+') || name.chars().any(|c| c.is_whitespace()) {
        return Err(Error::InvalidInput(format!(
            "key name {name:?} must be non-empty without '+' or whitespace"
        )));
    }
    Ok(())
}

/// The 4-byte C2SP key id.
pub fn key_hash(name: &str, public: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ALG_ED25519]);
    h.update(public.as_bytes());
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// A named Ed25519 signing key.
pub struct NoteKey {
    name: String,
    signing: SigningKey,
    key_id: String,
}

impl fmt::Debug for NoteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        f.debug_struct("NoteKey")
            .field("key_id", &self.key_id)
            .finish()
    }
}

impl NoteKey {
    /// The Ed25519 key itself, for signers other than the log (rbac's access tokens).
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// A fresh random key.
    pub fn generate(name: &str) -> Result<Self> {
        check_name(name)?;
        let signing = SigningKey::generate(&mut rand::rngs::OsRng);
        Ok(Self::from_parts(name, signing))
    }

    fn from_parts(name: &str, signing: SigningKey) -> Self {
        let hash = key_hash(name, &signing.verifying_key());
        Self {
            key_id: format!("{name}+{}", hex::encode(hash)),
            name: name.to_owned(),
            signing,
        }
    }

    /// Key name (the checkpoint signer name / service name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `name+hexid`: what events carry to say who signed them.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The 4-byte key hash.
    pub fn key_hash(&self) -> [u8; 4] {
        key_hash(&self.name, &self.signing.verifying_key())
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// The verifier key string.
    pub fn vkey(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.signing.verifying_key().as_bytes());
        format!("{}+{}", self.key_id, B64.encode(raw))
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// The private key file text.
    pub fn to_private_text(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.signing.as_bytes());
        format!("PRIVATE+KEY+{}+{}\n", self.key_id, B64.encode(raw))
    }

    /// Parses a private key file text.
    pub fn from_private_text(text: &str) -> Result<Self> {
        let bad = |why: &str| Error::Key(format!("private key: {why}"));
        let rest = text
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| bad("missing PRIVATE+KEY+ prefix"))?;
        // Names never contain '+', base64 may: split from the left.
        let Some((name, (hash_hex, b64))) = rest
            .split_once('+')
            .and_then(|(n, r)| r.split_once('+').map(|h| (n, h)))
        else {
            return Err(bad("expected PRIVATE+KEY+name+hash+key"));
        };
        let raw = B64.decode(b64).map_err(|_| bad("key is not base64"))?;
        let [alg, seed @ ..] = raw.as_slice() else {
            return Err(bad("empty key"));
        };
        if *alg != ALG_ED25519 {
            return Err(bad("not an Ed25519 key"));
        }
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| bad("Ed25519 seed must be 32 bytes"))?;
        check_name(name)?;
        let key = Self::from_parts(name, SigningKey::from_bytes(&seed));
        if hex::encode(key.key_hash()) != hash_hex {
            return Err(bad("key hash does not match the key"));
        }
        Ok(key)
    }

    /// Loads a key file, refusing files that others can read.
    pub fn load(path: &Path) -> Result<Self> {
        check_private_permissions(path)?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Key(format!("cannot read key {}: {e}", path.display())))?;
        Self::from_private_text(&text).map_err(|e| Error::Key(format!("{}: {e}", path.display())))
    }

    /// Loads the key at `path`, or creates one named `name` there (mode 0600) if missing.
    pub fn load_or_generate(path: &Path, name: &str) -> Result<Self> {
        if path.exists() {
            return Self::load(path);
        }
        let key = Self::generate(name)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Key(format!("cannot create {}: {e}", dir.display())))?;
        }
        write_private(path, key.to_private_text().as_bytes())?;
        tracing::info!(key_id = key.key_id(), path = %path.display(), "generated signing key");
        Ok(key)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::Key(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::Key(format!("cannot write {}: {e}", path.display())))
}

#[cfg(unix)]
fn check_private_permissions(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::Key(format!("cannot read key {}: {e}", path.display())))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::Key(format!(
            "key file {} has mode {mode:o}; it must not be readable by group or others (chmod 600)",
            path.display()
        )));
    }
    Ok(())
}

/// A parsed verifier key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vkey {
    pub name: String,
    pub key_hash: [u8; 4],
    pub key: VerifyingKey,
}

impl Vkey {
    /// `name+hex`.
    pub fn key_id(&self) -> String {
        format!("{}+{}", self.name, hex::encode(self.key_hash))
    }

    /// Parses `name+hash+base64`.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| Error::Key(format!("verifier key {text:?}: {why}"));
        let Some((name, (hash_hex, b64))) = text
            .trim()
            .split_once('+')
            .and_then(|(n, r)| r.split_once('+').map(|h| (n, h)))
        else {
            return Err(bad("expected name+hash+key"));
        };
        check_name(name)?;
        let raw = B64.decode(b64).map_err(|_| bad("key is not base64"))?;
        let [alg, public @ ..] = raw.as_slice() else {
            return Err(bad("empty key"));
        };
        if *alg != ALG_ED25519 {
            return Err(bad("not an Ed25519 key"));
        }
        let public: [u8; 32] = public
            .try_into()
            .map_err(|_| bad("public key must be 32 bytes"))?;
        let key =
            VerifyingKey::from_bytes(&public).map_err(|_| bad("not a valid Ed25519 point"))?;
        let hash = key_hash(name, &key);
        if hex::encode(hash) != hash_hex {
            return Err(bad("key hash does not match the key"));
        }
        Ok(Self {
            name: name.to_owned(),
            key_hash: hash,
            key,
        })
    }
}

/// Public keys by key id; verifies event signatures.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: HashMap<String, VerifyingKey>,
}

impl Keyring {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, vkey: &Vkey) {
        self.keys.insert(vkey.key_id(), vkey.key);
    }

    pub fn add_key(&mut self, key: &NoteKey) {
        self.keys
            .insert(key.key_id().to_owned(), key.verifying_key());
    }

    pub fn get(&self, key_id: &str) -> Option<&VerifyingKey> {
        self.keys.get(key_id)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Verifies one signature.
    pub fn verify(&self, key_id: &str, message: &[u8], signature: &[u8; 64]) -> Result<()> {
        let key = self
            .get(key_id)
            .ok_or_else(|| Error::Key(format!("unknown signing key {key_id}")))?;
        key.verify(message, &Signature::from_bytes(signature))
            .map_err(|_| Error::Key(format!("signature by {key_id} does not verify")))
    }

    /// Verifies many signatures at once (Ed25519 batch verification). On failure returns the
    /// index of the first signature that does not verify on its own.
    pub fn verify_batch(
        &self,
        items: &[(&str, &[u8], &[u8; 64])],
    ) -> std::result::Result<(), usize> {
        let mut keys = Vec::with_capacity(items.len());
        for (i, (key_id, _, _)) in items.iter().enumerate() {
            keys.push(*self.get(key_id).ok_or(i)?);
        }
        let messages: Vec<&[u8]> = items.iter().map(|(_, m, _)| *m).collect();
        let sigs: Vec<Signature> = items
            .iter()
            .map(|(_, _, s)| Signature::from_bytes(s))
            .collect();
        if ed25519_dalek::verify_batch(&messages, &sigs, &keys).is_ok() {
            return Ok(());
        }
        // Find the culprit one by one; only happens when something is wrong.
        for (i, (key_id, message, sig)) in items.iter().enumerate() {
            if self.verify(key_id, message, sig).is_err() {
                return Err(i);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vkey_and_private_text_round_trip() {
        let key = NoteKey::generate("example.com/log").unwrap();
        let vkey = Vkey::parse(&key.vkey()).unwrap();
        assert_eq!(vkey.key, key.verifying_key());
        assert_eq!(vkey.key_id(), key.key_id());
        let again = NoteKey::from_private_text(&key.to_private_text()).unwrap();
        assert_eq!(again.vkey(), key.vkey());
    }

    #[test]
    fn known_vkey_from_the_note_package_parses() {
        // The example verifier key from golang.org/x/mod/sumdb/note's documentation.
        let v = Vkey::parse("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
            .unwrap();
        assert_eq!(v.name, "PeterNeumann");
    }

    #[test]
    fn refuses_world_readable_key_files() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let key = NoteKey::load_or_generate(&path, "svc").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(NoteKey::load(&path).unwrap().vkey(), key.vkey());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = NoteKey::load(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }

    #[test]
    fn batch_verification_names_the_bad_signature() {
        let key = NoteKey::generate("svc").unwrap();
        let mut ring = Keyring::new();
        ring.add_key(&key);
        let msgs: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 10]).collect();
        let mut sigs: Vec<[u8; 64]> = msgs.iter().map(|m| key.sign(m)).collect();
        let items: Vec<_> = msgs
            .iter()
            .zip(&sigs)
            .map(|(m, s)| (key.key_id(), m.as_slice(), s))
            .collect();
        assert_eq!(ring.verify_batch(&items), Ok(()));
        sigs[3][0] ^= 1;
        let items: Vec<_> = msgs
            .iter()
            .zip(&sigs)
            .map(|(m, s)| (key.key_id(), m.as_slice(), s))
            .collect();
        assert_eq!(ring.verify_batch(&items), Err(3));
    }
}
