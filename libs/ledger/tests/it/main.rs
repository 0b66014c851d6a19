//! Integration tests of the ledger against real PostgreSQL and a real SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod attacks;
mod conformance;
mod postgres;
mod support;
