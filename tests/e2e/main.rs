//! End-to-end tests: the services over real PostgreSQL and nats-server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod analytics;
mod contracts;
#[path = "../faults/mod.rs"]
mod faults;
mod inprocess;
mod matrix;
mod model_guard;
mod models;
mod nats_auth;
mod promotions;
mod services;
mod sla;
mod sla_breach;
mod sla_integrity;
mod sla_processes;
mod sla_prometheus;
mod snapshots;
mod sso;
mod support;
mod views;
