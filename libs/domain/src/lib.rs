//! The rules of Golden Goose, with no I/O: who may do what ([`rbac`]), how approvals are
//! decided ([`approval`]), what services exist and what they depend on ([`catalog`],
//! [`graph`]), the organisation's policy file ([`org_config`]), and promotions: the
//! compliance state machine ([`compliance`]), the promotion policy ([`policy`]), its gates
//! ([`gates`]), the promotion scheduler ([`promotion`]), per-service locks ([`lock`]) and
//! packages ([`package`]); service level objectives and their measurements ([`sla`]); ML
//! models and the use cases built on them ([`model`], [`usecase`]).
//!
//! Architecture invariant: nothing here touches a database, a socket, a clock or a thread.
//! Callers pass time in; every decision is a pure function of its inputs, so it can be
//! re-checked later from the events that recorded it.

pub mod approval;
pub mod catalog;
pub mod compliance;
pub mod demotion;
pub mod errors;
pub mod events;
pub mod evidence;
pub mod gates;
pub mod graph;
pub mod identity;
pub mod lock;
pub mod mesh;
pub mod model;
pub mod org_config;
pub mod ownership;
pub mod package;
pub mod parallelism;
pub mod policy;
pub mod promotion;
pub mod rbac;
pub mod runbook;
pub mod sla;
pub mod streams;
pub mod usecase;
pub mod user;
pub mod version;
mod yaml;

#[cfg(test)]
mod fuzz;

pub use yaml::{documents as yaml_documents, YamlError};
