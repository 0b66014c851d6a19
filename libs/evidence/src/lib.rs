//! Evidence: reading the formats tools already produce into the summaries the gates use
//! ([`formats`], [`dsse`]), and keeping the files themselves write-once ([`blob`]).

pub mod blob;
pub mod dsse;
pub mod formats;

/// SHA3-256 of `bytes`, lowercase hex: the content address of a blob.
pub fn digest(bytes: &[u8]) -> String {
    use sha3::Digest as _;
    hex::encode(sha3::Sha3_256::digest(bytes))
}
