//! Integration tests of the ledger against real PostgreSQL and a real SQLite file.

mod conformance;
mod cqrs;
mod postgres;
mod support;
