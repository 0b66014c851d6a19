//! The rules of Golden Goose, with no I/O: who may do what ([`rbac`]), how approvals are
//! decided ([`approval`]), what services exist and what they depend on ([`catalog`],
//! [`graph`]), and the organisation's policy file ([`org_config`]).
//!
//! Architecture invariant: nothing here touches a database, a socket, a clock or a thread.
//! Callers pass time in; every decision is a pure function of its inputs, so it can be
//! re-checked later from the events that recorded it.

pub mod approval;
pub mod catalog;
pub mod evidence;
pub mod graph;
pub mod org_config;
pub mod rbac;
pub mod user;
mod yaml;

pub use yaml::{documents as yaml_documents, YamlError};
