//! The incident reactor: with `incidents.demote_on_critical_sla_breach` in the policy, an open
//! critical `sla_breach` incident of a service demotes its compliant version to sandbox
//! (through the same demotion as `POST /v1/compliance/{service}/{version}/demote`), the reason
//! citing the incident. A version made compliant after the incident opened (someone promoted
//! it again on purpose) is left alone. Replicas may all react: the second finds the version
//! in sandbox already and its demotion is refused, which is not an error here.

use crate::engine::Engine;
use crate::handlers::compliance::demote_version;
use goose_domain::catalog::ServiceName;
use goose_domain::version::Version;
use std::sync::Arc;
use std::time::Duration;

/// The actor of demotions the reactor makes.
pub const ACTOR: &str = "goose-orchestrator";

/// Counter: reactor demotions that failed (logged; tried again).
pub use goose_metrics::promotion::REACTOR_FAILURES;

/// What to demote now: (service, version, reason).
fn due(engine: &Engine) -> Vec<(String, String, String)> {
    let data = engine.views.read();
    let mut out = Vec::new();
    for (service, (version, compliant)) in &data.compliant {
        for i in data.critical_breaches(service) {
            let opened = i.fact.position.unwrap_or(0);
            if compliant.position.unwrap_or(0) > opened {
                continue;
            }
            out.push((
                service.clone(),
                version.clone(),
                format!(
                    "critical SLA breach: {} ({}, ledger position {opened})",
                    i.fact.note, i.report.title
                ),
            ));
            break;
        }
    }
    out
}

pub(crate) fn start(engine: Arc<Engine>) {
    if !engine.policy.incidents.demote_on_critical_sla_breach {
        return;
    }
    let stopped = engine.platform.stopped();
    let me = engine.clone();
    engine.platform.spawn(async move {
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                () = &mut stopped => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            for (service, version, reason) in due(&me) {
                let (Ok(name), Ok(v)) = (ServiceName::parse(&service), Version::parse(&version)) else {
                    continue;
                };
                match demote_version(&me, &name, &v, &reason, ACTOR).await {
                    Ok(d) => tracing::warn!(%service, %version, dependants = ?d.dependants, %reason, "demoted on a critical SLA breach"),
                    Err(p) if p.status == axum::http::StatusCode::CONFLICT => {}
                    Err(p) => {
                        REACTOR_FAILURES.counter(&[]).increment(1);
                        tracing::error!(%service, %version, problem = ?p, "demotion on a critical SLA breach failed; trying again");
                    }
                }
            }
        }
    });
}
