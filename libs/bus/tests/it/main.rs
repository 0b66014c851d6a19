//! Bus tests against a real nats-server with JetStream (and the in-process bus), with ledgers
//! on real PostgreSQL / SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod conformance;
mod crash;
mod relays;
mod support;
