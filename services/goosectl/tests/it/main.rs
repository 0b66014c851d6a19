//! goosectl end to end: the real binary against real storage, the chain HTTP API, and proofs
//! checked by a third-party C2SP verifier.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod chain_api;
mod cli;
mod console;
mod deploy;
mod mesh;
mod models;
mod observability;
mod runbooks;
mod schemathesis;
mod sla;
mod support;
mod third_party;
mod vulnerabilities;
mod witness;
