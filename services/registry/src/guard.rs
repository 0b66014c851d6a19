//! The model guard: the model policy's automatic rollback (`rollback.on_sla_breach`,
//! `rollback.on_drift`), run as a task of the registry. It wakes when the view changes (an
//! incident, an evidence file, a deployment) and at least every few seconds, asks the pure rule
//! (`goose_domain::model::guard`) about each model in production, and records the rollbacks it
//! asks for as `goose-registry`, the reason citing the incident or the evidence.
//!
//! Replicas may all run it: the rule is re-asked on the model's state as the append sees it
//! (optimistic concurrency), so a second replica finds the version already rolled back and
//! records nothing.

use crate::{AppState, ModelAgg};
use goose_domain::model::guard::{rollback_reason, SERVING_SERVICE_TAG};
use goose_domain::model::policy::VersionEvidence;
use goose_domain::model::{guard, ModelError, ModelEvent, RegisteredModel};
use goose_ledger::{aggregate, Metadata};
use std::time::Duration;

/// Who records the guard's rollbacks.
pub const ACTOR: &str = "goose-registry";
/// Counter of guard rounds that failed (each is retried at the next wake-up).
pub use goose_metrics::registry::GUARD_FAILURES as FAILURES;
/// Counter of automatic rollbacks recorded.
pub use goose_metrics::registry::ROLLBACKS;

pub(crate) async fn run(
    s: AppState,
    every: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut changed = s.view.subscribe();
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            // A closed channel (the view is gone) leaves the timer.
            _ = changed.changed() => {}
            () = tokio::time::sleep(every) => {}
        }
        if let Err(e) = check_all(&s).await {
            FAILURES.counter(&[]).increment(1);
            tracing::error!(error = %e, "model guard: an automatic rollback could not be recorded; retrying");
        }
    }
}

/// The rule's inputs for `m` as the view has them now.
fn signals(
    s: &AppState,
    name: &str,
    m: &RegisteredModel,
) -> (Option<guard::Breach>, VersionEvidence) {
    let v = s.view.read();
    let breach = m
        .tags
        .get(SERVING_SERVICE_TAG)
        .and_then(|service| v.breaches.get(service))
        .cloned();
    let evidence = guard::in_production_since(m)
        .and_then(|(version, _)| v.model_evidence.get(&(name.to_owned(), version)))
        .cloned()
        .unwrap_or_default();
    (breach, evidence)
}

async fn check_all(s: &AppState) -> anyhow::Result<()> {
    let policy = &s.model_policy.rollback;
    if !policy.on_sla_breach && policy.on_drift.is_empty() {
        return Ok(());
    }
    let due: Vec<String> = {
        let models: Vec<(String, RegisteredModel)> = s
            .view
            .read()
            .models
            .iter()
            .filter(|(_, m)| guard::in_production_since(m).is_some())
            .map(|(n, m)| (n.clone(), m.clone()))
            .collect();
        models
            .into_iter()
            .filter(|(n, m)| {
                let (breach, evidence) = signals(s, n, m);
                rollback_reason(policy, m, breach.as_ref(), &evidence).is_some()
            })
            .map(|(n, _)| n)
            .collect()
    };
    for name in due {
        let meta = Metadata::now(ACTOR);
        let now = time::OffsetDateTime::now_utc();
        let done =
            aggregate::execute::<ModelAgg, ModelError>(&s.platform.ledger, &name, &meta, |m| {
                let (breach, evidence) = signals(s, &name, &m.0);
                match rollback_reason(policy, &m.0, breach.as_ref(), &evidence) {
                    Some(reason) => m.0.rollback(&reason, ACTOR, now),
                    None => Ok(Vec::new()),
                }
            })
            .await;
        match done {
            Ok(done) => {
                s.view.after_write(done.receipt, "registry").await;
                for e in &done.events {
                    if let ModelEvent::RolledBack {
                        from, to, reason, ..
                    } = e
                    {
                        ROLLBACKS.counter(&[]).increment(1);
                        tracing::warn!(model = %name, from, to, %reason, "model rolled back by its policy");
                    }
                }
            }
            // Nothing earlier to go back to: said once per wake-up until a human acts.
            Err(aggregate::ExecuteError::Rejected(ModelError::Refused(why))) => {
                FAILURES.counter(&[]).increment(1);
                tracing::error!(model = %name, reason = %why, "model guard: the policy asks for a rollback that cannot be done");
            }
            Err(e) => anyhow::bail!("rolling back model {name}: {e}"),
        }
    }
    Ok(())
}
