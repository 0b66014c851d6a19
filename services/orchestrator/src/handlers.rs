//! The orchestrator's REST handlers.

pub(crate) mod audit;
pub(crate) mod compliance;
pub(crate) mod packages;
pub(crate) mod promotions;
