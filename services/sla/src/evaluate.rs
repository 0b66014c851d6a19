//! The evaluator: every `evaluate_every`, each SLO's status at that moment; burn-rate alerts
//! that began or stopped firing are recorded (`slo_alert/<slo>`: a violation is an
//! `AlertFired`), and every `AlertFired` is cited by an `sla_breach` incident (cause
//! `slo:<name>`): it opens one, or recurs on the open one; an incident resolved while alerts
//! still fire stays resolved until an alert fires anew. Replicas may all evaluate: each
//! decision is taken against the recorded state, so the second finds nothing to do.
//!
//! On the same tick, what the chain watch found — a chain that does not verify, checkpoint rows
//! the log key did not sign — opens `evidence_integrity` incidents.
//!
//! On the same tick, other services' events that mean an incident
//! (`goose_domain::sla::signals`: SAST or vulnerability checks that failed, failed promotions,
//! refused approval attempts) open one incident per cause or recur on the open one, citing
//! every occurrence not cited yet; an occurrence already cited is never recorded twice.

use crate::{AlertsAgg, AppState, IncidentAgg};
use goose_domain::sla::incident::{
    breach_severity, IncidentReport, IncidentSeverity, IncidentType,
};
use goose_domain::sla::signals::Signal;
use goose_domain::sla::status;
use goose_ledger::aggregate;
use goose_ledger::Metadata;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

/// The actor of what the evaluator records.
pub const ACTOR: &str = "goose-sla";

/// Counter: evaluations that failed (logged; retried at the next tick).
pub use goose_metrics::sla::EVALUATION_FAILURES;

pub(crate) async fn run(
    s: AppState,
    every: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(every) => {}
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if let Err(e) = evaluate_all(&s, now).await {
            EVALUATION_FAILURES.counter(&[]).increment(1);
            tracing::error!(error = %e, "SLO evaluation failed; retrying at the next tick");
        }
        if let Err(e) = chain_incidents(&s).await {
            EVALUATION_FAILURES.counter(&[]).increment(1);
            tracing::error!(error = %e, "opening incidents from the chain watch failed; retrying at the next tick");
        }
        if let Err(e) = signal_incidents(&s).await {
            EVALUATION_FAILURES.counter(&[]).increment(1);
            tracing::error!(error = %e, "opening incidents from other services' events failed; retrying at the next tick");
        }
    }
}

/// What the chain watch found, as `evidence_integrity` incidents (critical): a chain that does
/// not verify (cause `chain:verify:<SHA3 of the failure, 16 hex>`), and each checkpoint row the
/// log key did not sign (cause `chain:intrusion:<row id>`). They cite no event — the failure is
/// what they report — so each cause is opened once (`CauseState::occur`), by whichever replica
/// sees it first.
pub(crate) async fn chain_incidents(s: &AppState) -> anyhow::Result<()> {
    use sha3::Digest as _;
    let fact = s.chain.fact();
    let mut found: Vec<(String, String)> = Vec::new();
    if let Some(failure) = &fact.failure {
        let print = hex::encode(sha3::Sha3_256::digest(failure.as_bytes()));
        found.push((
            format!("chain:verify:{}", &print[..16]),
            format!("the evidence chain does not verify: {failure}"),
        ));
    }
    for (id, what) in s.chain.intrusions() {
        found.push((
            format!("chain:intrusion:{id}"),
            format!("a checkpoint row the log key did not sign (row {id}): {what}"),
        ));
    }
    let meta = Metadata::now(ACTOR);
    for (cause, title) in found {
        let known = s.view.read().incidents.values().any(|i| i.cause == cause);
        if known {
            continue;
        }
        let mut title = title;
        if title.len() > 500 {
            let mut cut = 497;
            while !title.is_char_boundary(cut) {
                cut -= 1;
            }
            title.truncate(cut);
            title.push_str("...");
        }
        let report = IncidentReport {
            kind: IncidentType::EvidenceIntegrity,
            severity: IncidentSeverity::Critical,
            title,
            service: None,
            caused_by: Vec::new(),
        };
        let id = uuid::Uuid::now_v7().to_string();
        let done = aggregate::execute::<IncidentAgg, _>(&s.platform.ledger, &cause, &meta, |cur| {
            cur.0.occur(&cause, &id, &report, ACTOR)
        })
        .await
        .map_err(|e| anyhow::anyhow!("opening the incident of {cause}: {e}"))?;
        s.view.after_write(done.receipt, "sla").await;
        if done.receipt.is_some() {
            tracing::error!(%cause, title = %report.title, "evidence integrity incident");
        }
    }
    Ok(())
}

/// Opens (or recurs) the incidents other services' events mean: one per cause, citing
/// every occurrence not cited yet.
pub(crate) async fn signal_incidents(s: &AppState) -> anyhow::Result<()> {
    let pending: BTreeMap<String, Vec<(Signal, u64)>> = {
        let view = s.view.read();
        let mut by_cause: BTreeMap<String, Vec<(Signal, u64)>> = BTreeMap::new();
        for (sig, pos) in &view.signals {
            if view.linked.get(&sig.cause).is_none_or(|l| pos > l) {
                by_cause
                    .entry(sig.cause.clone())
                    .or_default()
                    .push((sig.clone(), *pos));
            }
        }
        by_cause
    };
    let meta = Metadata::now(ACTOR);
    for (cause, occurrences) in pending {
        let Some((latest, _)) = occurrences.last() else {
            continue;
        };
        let report = IncidentReport {
            kind: latest.kind,
            severity: latest.severity,
            title: latest.title.clone(),
            service: latest.service.clone(),
            caused_by: occurrences.iter().map(|(_, p)| *p).collect(),
        };
        let id = uuid::Uuid::now_v7().to_string();
        let done = aggregate::execute::<IncidentAgg, _>(&s.platform.ledger, &cause, &meta, |cur| {
            cur.0.occur(&cause, &id, &report, ACTOR)
        })
        .await
        .map_err(|e| anyhow::anyhow!("opening the incident of {cause}: {e}"))?;
        s.view.after_write(done.receipt, "sla").await;
        if done.receipt.is_some() {
            tracing::warn!(%cause, kind = ?report.kind, title = %report.title, "incident from another service's events");
        }
    }
    Ok(())
}

/// Evaluates every SLO at `now`, recording alert changes and incidents.
pub(crate) async fn evaluate_all(s: &AppState, now: i64) -> anyhow::Result<()> {
    let slos: Vec<_> = s.view.read().slos.values().map(|e| e.slo.clone()).collect();
    for slo in slos {
        let st = {
            let view = s.view.read();
            let summaries = view
                .summaries
                .get(&slo.service)
                .map(Vec::as_slice)
                .unwrap_or_default();
            status::status(&slo, summaries, now)?
        };
        let meta = Metadata::now(ACTOR);
        let done = aggregate::execute::<AlertsAgg, Infallible>(
            &s.platform.ledger,
            &slo.name,
            &meta,
            |cur| Ok(cur.0.changes(&st)),
        )
        .await
        .map_err(|e| anyhow::anyhow!("recording alerts of {}: {e}", slo.name))?;
        s.view.after_write(done.receipt, "sla").await;
        // Firing alerts no incident cites yet (just fired, or fired before a crash cut the
        // incident short) open the SLO's incident, or recur on the open one.
        let cause = format!("slo:{}", slo.name);
        let unlinked: Vec<((String, String), (u64, f64))> = {
            let view = s.view.read();
            let linked = view.linked.get(&cause).copied();
            view.firing
                .get(&slo.name)
                .map(|f| {
                    f.iter()
                        .filter(|(_, (p, _))| linked.is_none_or(|l| *p > l))
                        .map(|(k, v)| (k.clone(), *v))
                        .collect()
                })
                .unwrap_or_default()
        };
        if unlinked.is_empty() {
            continue;
        }
        let factor = unlinked.iter().map(|(_, (_, f))| *f).fold(0.0, f64::max);
        let alerts: Vec<String> = unlinked
            .iter()
            .map(|((objective, alert), _)| format!("{objective}: {alert}"))
            .collect();
        let report = IncidentReport {
            kind: IncidentType::SlaBreach,
            severity: breach_severity(factor),
            title: format!(
                "SLO {} burning its error budget ({})",
                slo.name,
                alerts.join(", ")
            ),
            service: Some(slo.service.clone()),
            caused_by: unlinked.iter().map(|(_, (p, _))| *p).collect(),
        };
        let id = uuid::Uuid::now_v7().to_string();
        let done = aggregate::execute::<IncidentAgg, _>(&s.platform.ledger, &cause, &meta, |cur| {
            cur.0.occur(&cause, &id, &report, ACTOR)
        })
        .await
        .map_err(|e| anyhow::anyhow!("opening the incident of {}: {e}", slo.name))?;
        s.view.after_write(done.receipt, "sla").await;
        tracing::warn!(slo = %slo.name, service = %slo.service, alerts = ?alerts, "SLO violated");
    }
    Ok(())
}
