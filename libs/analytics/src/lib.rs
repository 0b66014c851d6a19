//! Analytics over the ledger: every event, and typed tables derived from the domain events
//! (promotions, their targets, gate checks, evidence, approvals, compliance transitions,
//! incidents, SLA minutes), as Arrow tables that a read model keeps current; read-only SQL
//! over them with Apache DataFusion; and the KPI views (DORA, promotion outcomes and duration,
//! gate failure reasons, parallel efficiency, approval wait, evidence volume, SLA attainment).
//!
//! Pure of I/O except the query engine's own execution: the service feeds [`Tables::apply`]
//! from the ledger and answers with a [`query::Engine`].

pub mod accel;
pub mod archive;
mod date_trunc;
pub mod dict_group;
pub mod encode;
pub mod export;
pub mod forecast;
pub mod kpis;
pub mod ledger_scan;
mod percentile_cont;
pub mod query;
pub mod rows;
pub mod schema;
mod session;
pub mod table;
pub mod tables;
pub mod udf;

pub use query::{Answer, Engine, Limits, QueryError};
pub use tables::{TableData, Tables, Undecodable};

#[cfg(test)]
mod forecast_tests;
#[cfg(test)]
mod tests;

/// The DataFusion (and Arrow) this crate is built on, for readers of its answers.
pub use datafusion;
