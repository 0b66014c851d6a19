//! rbac's read models: users (with their keys and roles) and approval requests. Every read of
//! these resources goes through them — one read path; a miss waits for the view to catch up
//! with the ledger before it is a 404, so a write by another replica is not reported missing.

use goose_domain::approval::{ApprovalEvent, ApprovalRequest};
use goose_domain::user::{User, UserEvent};
use goose_ledger::RecordedEvent;
use goose_platform::view::View;
use std::collections::BTreeMap;

/// Users by name (deactivated ones included).
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Users(pub BTreeMap<String, User>);

impl View for Users {
    const FOLLOWS: &'static [&'static str] = &[goose_domain::streams::USER];

    fn apply(&mut self, ev: &RecordedEvent) {
        if let Some(e) = goose_platform::decoded::<UserEvent>(ev) {
            self.0
                .entry(ev.stream.aggregate_id().to_owned())
                .or_default()
                .apply(&e);
        }
    }
}

/// Approval requests by id.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Approvals(pub BTreeMap<String, ApprovalRequest>);

impl View for Approvals {
    const FOLLOWS: &'static [&'static str] = &[goose_domain::streams::APPROVAL];

    fn apply(&mut self, ev: &RecordedEvent) {
        if let Some(e) = goose_platform::decoded::<ApprovalEvent>(ev) {
            self.0
                .entry(ev.stream.aggregate_id().to_owned())
                .or_default()
                .apply(&e);
        }
    }
}
