//! Bus tests against a real nats-server with JetStream (and the in-process bus), with ledgers
//! on real PostgreSQL / SQLite.

mod conformance;
mod crash;
mod support;
