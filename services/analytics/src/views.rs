//! The analytics read model: every table of `goose_analytics`, kept current from the ledger
//! (the same catch-up / follow / gap-fill contract as every read model).

use goose_analytics::Tables;
use goose_ledger::RecordedEvent;
use goose_platform::view::View;

/// Events whose payload did not decode (their `events` row exists; typed tables lack them).
pub use goose_metrics::analytics::UNDECODABLE;

#[derive(Debug, Default)]
pub struct AnalyticsView {
    pub tables: Tables,
}

impl View for AnalyticsView {
    /// Every event: the `events` table is the whole ledger.
    const FOLLOWS: &'static [&'static str] = &[];

    fn apply(&mut self, ev: &RecordedEvent) {
        if let Err(e) = self.tables.apply(ev) {
            UNDECODABLE.counter(&[]).increment(1);
            tracing::error!(error = %e, "analytics: event kept in `events` only");
        }
    }
}
