//! The sla service's own metrics (defined in the catalog, `goose_metrics`).

pub use goose_metrics::sla::{
    REMOTE_WRITE_SERIES, REPORTS_ISSUED, TELEMETRY_DROPPED, TELEMETRY_FLUSH_FAILURES,
    TELEMETRY_SAMPLES,
};

use crate::views::SlaView;
use goose_domain::sla::incident::{IncidentSeverity, IncidentStatus};
use goose_metrics::sla as m;
use std::collections::BTreeMap;

/// Sets the gauges computed from the sla read model (burn rates, budgets, open incidents),
/// as of now. SLOs whose status cannot be computed are logged and left out.
pub fn export(view: &SlaView) {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for (name, e) in &view.slos {
        let summaries = view
            .summaries
            .get(&e.slo.service)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let st = match goose_domain::sla::status::status(&e.slo, summaries, now) {
            Ok(st) => st,
            Err(err) => {
                tracing::warn!(slo = %name, error = %err, "SLO status for the metrics failed");
                continue;
            }
        };
        for o in &st.objectives {
            if let Some(b) = o.budget_remaining {
                m::BUDGET_REMAINING
                    .gauge(&[name, &o.name, &st.service])
                    .set(b);
            }
            for a in &o.alerts {
                m::ALERT_FIRING
                    .gauge(&[
                        name,
                        &o.name,
                        &st.service,
                        &a.name,
                        goose_domain::sla::rules::severity(a.factor),
                    ])
                    .set(if a.firing { 1.0 } else { 0.0 });
                for (secs, rate) in [
                    (a.long_seconds, a.long_burn_rate),
                    (a.short_seconds, a.short_burn_rate),
                ] {
                    if let Some(r) = rate {
                        m::BURN_RATE
                            .gauge(&[name, &o.name, &st.service, &format!("{secs}s")])
                            .set(r);
                    }
                }
            }
        }
    }
    // Every (service, severity) seen keeps a series (0 once its incidents are resolved).
    let mut open: BTreeMap<(String, IncidentSeverity), u64> = BTreeMap::new();
    for i in view.incidents.values() {
        let service = i.report.service.clone().unwrap_or_else(|| "none".into());
        let n = open.entry((service, i.report.severity)).or_default();
        if i.status != IncidentStatus::Resolved {
            *n += 1;
        }
    }
    for ((service, severity), n) in open {
        m::OPEN_INCIDENTS
            .gauge(&[&service, severity.as_str()])
            .set(n as f64);
    }
}
