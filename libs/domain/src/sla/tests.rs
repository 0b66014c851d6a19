use super::measure::{self, Sample};
use super::openslo::{self, Indicator, Op};
use super::status;
use proptest::prelude::*;

pub const SLOS: &str = r#"
apiVersion: openslo/v1
kind: SLI
metadata:
  name: checkout-latency
spec:
  thresholdMetric:
    metricSource:
      type: golden-goose
      spec: {signal: latency}
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: checkout-availability
  displayName: Checkout availability
spec:
  service: checkout
  budgetingMethod: Occurrences
  timeWindow:
    - duration: 30d
      isRolling: true
  indicator:
    metadata: {name: checkout-requests}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: golden-goose, spec: {signal: requests}}}
        total: {metricSource: {type: golden-goose, spec: {signal: requests}}}
  objectives:
    - displayName: three nines
      target: 0.999
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: checkout-latency
spec:
  service: checkout
  timeWindow:
    - duration: 7d
      isRolling: true
  indicatorRef: checkout-latency
  objectives:
    - displayName: P95 under 250 ms
      op: lte
      value: 250
      target: 0.95
    - displayName: P99 under 800 ms
      op: lte
      value: 800
      targetPercent: 99
  alertPolicies:
    - fast-burn
---
apiVersion: openslo/v1
kind: AlertPolicy
metadata:
  name: fast-burn
spec:
  conditions:
    - conditionRef: burn-14
---
apiVersion: openslo/v1
kind: AlertCondition
metadata:
  name: burn-14
spec:
  severity: page
  condition:
    kind: burnrate
    op: gte
    threshold: 14.4
    lookbackWindow: 1h
    alertAfter: 5m
"#;

#[test]
fn openslo_documents_become_slos() {
    let slos = openslo::parse(SLOS).unwrap();
    assert_eq!(slos.len(), 2);
    let a = &slos[0];
    assert_eq!(
        (a.name.as_str(), a.service.as_str()),
        ("checkout-availability", "checkout")
    );
    assert_eq!(a.indicator, Indicator::Ratio);
    assert_eq!(a.window_seconds, 30 * 86_400);
    assert_eq!(a.objectives[0].target, 0.999);
    // No alert policy: the workbook's three pairs for a 30-day window.
    let pairs: Vec<(f64, u64, u64)> = a
        .alerts
        .iter()
        .map(|c| (c.factor, c.long_seconds, c.short_seconds))
        .collect();
    assert_eq!(
        pairs,
        vec![
            (14.4, 3_600, 300),
            (6.0, 21_600, 1_800),
            (1.0, 259_200, 21_600)
        ]
    );
    let l = &slos[1];
    assert_eq!(
        l.indicator,
        Indicator::Latency {
            op: Op::Lte,
            threshold_ms: 250.0
        }
    );
    assert_eq!(l.objectives[1].target, 0.99);
    assert_eq!(l.objectives[1].threshold_ms, Some(800.0));
    assert_eq!(l.alerts.len(), 1);
    assert_eq!(
        (l.alerts[0].factor, l.alerts[0].long_seconds),
        (14.4, 3_600)
    );
}

#[test]
fn workbook_windows_scale_with_the_slo_window() {
    let week = openslo::workbook_alerts(7 * 86_400);
    // 7/30 of 1 h = 14 min; of 5 m = 70 s.
    assert_eq!((week[0].long_seconds, week[0].short_seconds), (840, 70));
}

#[test]
fn invalid_slos_name_the_document_field_and_line() {
    let cases = [
        (
            "target: 0.999",
            "target: 1.5",
            "spec.objectives[0].target",
            "must be in (0, 1]",
        ),
        (
            "duration: 30d",
            "duration: 30x",
            "spec.timeWindow[0].duration",
            "unit must be",
        ),
        (
            // Months are calendar periods: a rolling window cannot use them (calendar
            // windows' own errors: calendar_tests.rs).
            "duration: 30d",
            "duration: 1M",
            "spec.timeWindow[0].duration",
            "for a rolling window",
        ),
        (
            "service: checkout\n  budgetingMethod",
            "service: Checkout!\n  budgetingMethod",
            "spec.service",
            "invalid service name",
        ),
        (
            "type: golden-goose, spec: {signal: requests}}}\n        total",
            "type: datadog, spec: {signal: requests}}}\n        total",
            "metricSource.type",
            "expected golden-goose",
        ),
    ];
    for (from, to, field, words) in cases {
        let text = SLOS.replacen(from, to, 1);
        assert_ne!(text, SLOS, "{from}");
        let e = openslo::parse(&text).unwrap_err();
        assert!(
            e.field.contains(field) && e.message.contains(words),
            "{from}: {e}"
        );
        assert_eq!(e.document, 2, "{e}");
        // The line of the offending value itself.
        let at = text.find(to).unwrap();
        let line = text[..at].matches('\n').count() as u64 + 1;
        assert_eq!(e.line, Some(line), "{from}: {e}");
    }
    let e = openslo::parse("apiVersion: openslo/v2\nkind: SLO\nmetadata: {name: x}\n").unwrap_err();
    assert_eq!((e.field.as_str(), e.line), ("apiVersion", Some(1)), "{e}");
    let e = openslo::parse("apiVersion: openslo/v1\nkind: Dashboard\nmetadata: {name: x}\n")
        .unwrap_err();
    assert_eq!((e.field.as_str(), e.line), ("kind", Some(2)), "{e}");
    let e = openslo::parse(&format!(
        "{SLOS}\n---\n{}",
        SLOS.split("---").nth(1).unwrap()
    ))
    .unwrap_err();
    assert!(e.message.contains("defined twice"), "{e}");
}

fn sample(at: i64, latency_ms: f64, status: u16) -> Sample {
    Sample {
        at: time::OffsetDateTime::from_unix_timestamp(at).unwrap(),
        latency_ms,
        status: Some(status),
        ok: None,
    }
}

#[test]
fn minute_summaries_add_up_and_give_exact_percentiles() {
    // 1,000 requests in two minutes: latencies 1..=1000 ms, every 100th fails.
    let samples: Vec<Sample> = (1..=1000)
        .map(|i| {
            sample(
                6_000 + (i % 120),
                i as f64,
                if i % 100 == 0 { 503 } else { 200 },
            )
        })
        .collect();
    let minutes = measure::summarize("checkout", &samples).unwrap();
    assert_eq!(minutes.len(), 2);
    assert_eq!(minutes.iter().map(|m| m.count).sum::<u64>(), 1000);
    assert!(minutes.iter().all(|m| m.minute % 60 == 0));
    let (w, bad) = measure::Window::of(&minutes, 0, 10_000).unwrap();
    assert_eq!((w.count, w.errors, bad), (1000, 10, 0));
    let p95 = w.percentile_ms(0.95).unwrap();
    let p99 = w.percentile_ms(0.99).unwrap();
    assert!((p95 - 950.0).abs() <= 1.0, "{p95}");
    assert!((p99 - 990.0).abs() <= 1.0, "{p99}");
    assert_eq!(w.satisfying(Op::Lte, 250.0), 250);
    // A summary travels as its V2 serialization and decodes to the same histogram.
    let h = measure::decode(&minutes[0].latency_histogram).unwrap();
    assert_eq!(h.len(), minutes[0].count);
    assert!(measure::decode("bm90IGEgaGlzdG9ncmFt").is_err());
    let e = measure::summarize("checkout", &[sample(0, f64::NAN, 200)]).unwrap_err();
    assert!(e.0.contains("samples[0].latency_ms"), "{e}");
}

#[test]
fn a_fast_burn_fires_both_windows_and_spends_budget() {
    let slos = openslo::parse(SLOS).unwrap();
    let availability = &slos[0];
    let now = 40 * 86_400;
    // A healthy month, then 5 % errors for the last hour: 50x the 0.1 % budget rate.
    let mut samples = Vec::new();
    for h in 0..(29 * 24) {
        let t = now - 30 * 86_400 + h * 3_600;
        samples.extend((0..100).map(|i| sample(t + i, 20.0, 200)));
    }
    for m in 0..60 {
        let t = now - 3_600 + m * 60;
        samples.extend((0..100).map(|i| sample(t + (i % 60), 20.0, if i < 5 { 500 } else { 200 })));
    }
    let minutes = measure::summarize("checkout", &samples).unwrap();
    let s = status::status(availability, &minutes, now).unwrap();
    let o = &s.objectives[0];
    assert_eq!(o.total, 29 * 24 * 100 + 6_000);
    assert_eq!(o.good, o.total - 300);
    let fast = &o.alerts[0];
    assert!(fast.firing, "{fast:?}");
    assert!(
        (fast.long_burn_rate.unwrap() - 50.0).abs() < 1e-9,
        "{fast:?}"
    );
    // 300 bad of 75,600 allowed 75.6: the budget is overspent about four times.
    assert!(o.budget_remaining.unwrap() < -2.9, "{o:?}");
    assert_eq!(o.met, Some(false));
    // An hour later without errors the short window is clean: the fast alert stops.
    let later = status::status(availability, &minutes, now + 600).unwrap();
    assert!(!later.objectives[0].alerts[0].firing);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: crate::fuzz::cases(200), ..ProptestConfig::default() })]

    /// Whatever the samples, a summary's figures agree with themselves and the burn rate is
    /// the error ratio over the allowed ratio.
    #[test]
    fn summaries_and_burn_rates_are_consistent(
        raw in proptest::collection::vec((0i64..600, 0.0f64..5_000.0, prop::bool::ANY), 1..300),
        target in 0.5f64..0.9999,
    ) {
        let samples: Vec<Sample> = raw.iter().map(|(t, l, ok)| sample(*t, *l, if *ok { 200 } else { 500 })).collect();
        let minutes = measure::summarize("svc", &samples).unwrap();
        let (w, _) = measure::Window::of(&minutes, 0, 600).unwrap();
        prop_assert_eq!(w.count, samples.len() as u64);
        prop_assert_eq!(w.errors, raw.iter().filter(|(_, _, ok)| !ok).count() as u64);
        prop_assert!(w.satisfying(Op::Lte, 5_001.0) == w.count);
        let b = status::burn_rate(w.count - w.errors, w.count, target).unwrap();
        let expected = (w.errors as f64 / w.count as f64) / (1.0 - target);
        prop_assert!((b - expected).abs() < 1e-9);
    }
}

mod incidents {
    use crate::sla::incident::*;

    /// A report of an occurrence at ledger position `at`.
    fn report(title: &str, at: u64) -> IncidentReport {
        IncidentReport {
            kind: IncidentType::SlaBreach,
            severity: IncidentSeverity::Critical,
            title: title.into(),
            service: Some("checkout".into()),
            caused_by: vec![at],
        }
    }

    /// Decides with the state, then applies what was decided.
    macro_rules! step {
        ($s:ident, $decision:expr) => {{
            let events: Vec<IncidentEvent> = $decision;
            for e in &events {
                $s.apply(e);
            }
            events
        }};
    }

    #[test]
    fn one_open_incident_per_cause_and_the_lifecycle() {
        let mut s = CauseState::default();
        let opened = step!(
            s,
            s.occur("slo:a", "i1", &report("burn", 1), "sla").unwrap()
        );
        assert!(matches!(&opened[0], IncidentEvent::IncidentOpened { id, .. } if id == "i1"));
        // The cause again while open: a recurrence of i1, not a second incident.
        let again = step!(
            s,
            s.occur("slo:a", "i2", &report("burn", 2), "sla").unwrap()
        );
        assert!(matches!(&again[0], IncidentEvent::IncidentRecurred { id, .. } if id == "i1"));
        step!(s, s.act("i1", Action::Acknowledge, "ada").unwrap());
        let e = s.act("i1", Action::Acknowledge, "ada").unwrap_err();
        assert!(matches!(e, IncidentError::Conflict { .. }), "{e}");
        step!(
            s,
            s.act("i1", Action::Mitigate("rolled back".into()), "ada")
                .unwrap()
        );
        step!(
            s,
            s.act("i1", Action::Resolve("fixed".into()), "ada").unwrap()
        );
        assert!(s.act("i1", Action::Resolve("again".into()), "ada").is_err());
        assert!(matches!(
            s.act("i9", Action::Acknowledge, "ada"),
            Err(IncidentError::NotFound(_))
        ));
        step!(
            s,
            s.act("i1", Action::Reopen("came back".into()), "ada")
                .unwrap()
        );
        assert_eq!(s.current, Some(("i1".into(), IncidentStatus::Open)));
        step!(
            s,
            s.act("i1", Action::Resolve("done".into()), "ada").unwrap()
        );
        // After resolution the next occurrence is a new incident.
        let next = s.occur("slo:a", "i3", &report("burn", 3), "sla").unwrap();
        assert!(matches!(&next[0], IncidentEvent::IncidentOpened { id, .. } if id == "i3"));
        assert!(s.occur("slo:a", "i4", &report(" ", 4), "sla").is_err());
    }

    #[test]
    fn breach_severity_follows_the_burn_rate() {
        assert_eq!(breach_severity(14.4), IncidentSeverity::Critical);
        assert_eq!(breach_severity(6.0), IncidentSeverity::Error);
        assert_eq!(breach_severity(1.0), IncidentSeverity::Warning);
    }
}

#[test]
fn alert_changes_are_decided_against_the_recorded_state() {
    let slos = openslo::parse(SLOS).unwrap();
    let now = 40 * 86_400;
    let mut samples: Vec<Sample> = (0..600)
        .map(|i| {
            sample(
                now - 3_600 + i * 6,
                20.0,
                if i % 10 == 0 { 500 } else { 200 },
            )
        })
        .collect();
    samples.push(sample(now - 10 * 86_400, 20.0, 200));
    let minutes = measure::summarize("checkout", &samples).unwrap();
    let st = status::status(&slos[0], &minutes, now).unwrap();
    let mut state = super::AlertsState::default();
    let fired = state.changes(&st);
    let names: Vec<&str> = fired
        .iter()
        .map(|e| match e {
            super::AlertEvent::AlertFired { alert, .. } => alert.as_str(),
            super::AlertEvent::AlertCleared { .. } => "cleared",
        })
        .collect();
    assert_eq!(names, vec!["page-fast", "page-slow", "ticket"]);
    for e in &fired {
        state.apply(e);
    }
    assert!(
        state.changes(&st).is_empty(),
        "the same evaluation again changes nothing"
    );
    let later = status::status(&slos[0], &minutes, now + 2 * 3_600).unwrap();
    let cleared = state.changes(&later);
    assert!(cleared.iter().any(
        |e| matches!(e, super::AlertEvent::AlertCleared { alert, .. } if alert == "page-fast")
    ));
}

#[test]
fn sla_events_round_trip_through_json() {
    use crate::sla::incident::*;
    let e = IncidentEvent::IncidentOpened {
        id: "i".into(),
        cause: "slo:a".into(),
        report: IncidentReport {
            kind: IncidentType::SlaBreach,
            severity: IncidentSeverity::Critical,
            title: "t".into(),
            service: None,
            caused_by: vec![3],
        },
        by: "sla".into(),
    };
    let json = serde_json::to_string(&e).unwrap();
    let back: IncidentEvent = serde_json::from_str(&json).unwrap();
    assert_eq!(back, e, "{json}");
}
