use super::measure::decode;
use super::prom::{CounterMemory, Mapping, Series};
use proptest::prelude::*;

fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> Series {
    Series {
        labels: labels
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect(),
        samples: samples.to_vec(),
    }
}

fn counter(code: &str, samples: &[(i64, f64)]) -> Series {
    series(
        &[
            ("__name__", "http_requests_total"),
            ("job", "checkout"),
            ("code", code),
        ],
        samples,
    )
}

fn bucket(le: &str, samples: &[(i64, f64)]) -> Series {
    series(
        &[
            ("__name__", "http_request_duration_seconds_bucket"),
            ("service", "checkout"),
            ("le", le),
        ],
        samples,
    )
}

#[test]
fn a_version_label_names_the_version_of_the_summaries() {
    let m = Mapping::default();
    let mem = CounterMemory::default();
    let with_version = |version: &str| {
        series(
            &[
                ("__name__", "http_requests_total"),
                ("job", "checkout"),
                ("code", "200"),
                ("version", version),
            ],
            &[(60_000, 10.0), (70_000, 15.0)],
        )
    };
    let c = mem
        .convert(&[with_version("1.4.0"), with_version("1.5.0")], &m)
        .unwrap();
    let got: Vec<(Option<&str>, u64)> = c.summaries["checkout"]
        .iter()
        .map(|s| (s.version.as_deref(), s.count))
        .collect();
    assert_eq!(got, vec![(Some("1.4.0"), 5), (Some("1.5.0"), 5)]);
}

#[test]
fn counters_become_increases_per_minute_and_the_first_sample_is_a_baseline() {
    let m = Mapping::default();
    let mut mem = CounterMemory::default();
    // 60_000 ms = minute 60; samples at 61 s, 75 s (minute 60) and 125 s (minute 120).
    let req = vec![
        counter("200", &[(61_000, 100.0), (75_000, 130.0), (125_000, 190.0)]),
        counter("503", &[(61_000, 5.0), (75_000, 7.0), (125_000, 7.0)]),
        series(&[("__name__", "up"), ("job", "checkout")], &[(61_000, 1.0)]),
    ];
    let c = mem.convert(&req, &m).unwrap();
    assert_eq!(c.ignored_series, 1);
    let s = &c.summaries["checkout"];
    assert_eq!(s.len(), 2);
    assert_eq!((s[0].minute, s[0].count, s[0].errors), (60, 32, 2));
    assert_eq!((s[1].minute, s[1].count, s[1].errors), (120, 60, 0));
    assert!(s.iter().all(|x| x.approximate));
    mem.commit(c);
    // A retry of the same request counts nothing; a later sample counts from the last one,
    // and a lower value is a counter reset (the increase is the new value).
    let c = mem.convert(&req, &m).unwrap();
    assert!(c.summaries.is_empty());
    assert_eq!(c.stale_samples, 6);
    let c = mem
        .convert(&[counter("200", &[(130_000, 200.0), (140_000, 4.0)])], &m)
        .unwrap();
    assert_eq!(c.summaries["checkout"][0].count, 14);
}

#[test]
fn buckets_give_approximate_percentiles_at_their_upper_bounds() {
    let m = Mapping::default();
    let mut mem = CounterMemory::default();
    let base = [
        bucket("0.1", &[(60_000, 0.0)]),
        bucket("0.25", &[(60_000, 0.0)]),
        bucket("1", &[(60_000, 0.0)]),
        bucket("+Inf", &[(60_000, 0.0)]),
    ];
    mem.commit(mem.convert(&base, &m).unwrap());
    // 90 requests ≤ 100 ms, 8 in (100, 250], 1 in (250 ms, 1 s], 1 above 1 s.
    let req = [
        bucket("0.1", &[(70_000, 90.0)]),
        bucket("0.25", &[(70_000, 98.0)]),
        bucket("1", &[(70_000, 99.0)]),
        bucket("+Inf", &[(70_000, 100.0)]),
    ];
    let c = mem.convert(&req, &m).unwrap();
    let s = &c.summaries["checkout"][0];
    assert_eq!((s.count, s.errors), (100, 0));
    let h = decode(&s.latency_histogram).unwrap();
    assert_eq!(h.len(), 100);
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    assert!((ms(0.5) - 100.0).abs() < 0.2, "{}", ms(0.5));
    assert!((ms(0.95) - 250.0).abs() < 0.3, "{}", ms(0.95));
    // The +Inf bucket lands on the highest finite bound.
    assert!((ms(1.0) - 1000.0).abs() < 1.0, "{}", ms(1.0));
}

#[test]
fn series_without_a_service_or_with_a_bad_le_are_counted_unusable() {
    let m = Mapping::default();
    let mem = CounterMemory::default();
    let req = [
        series(
            &[("__name__", "http_requests_total"), ("code", "200")],
            &[(1, 1.0)],
        ),
        series(
            &[
                ("__name__", "http_request_duration_seconds_bucket"),
                ("job", "a"),
                ("le", "x"),
            ],
            &[(1, 1.0)],
        ),
        series(
            &[
                ("__name__", "http_requests_total"),
                ("job", "a"),
                ("code", "OK"),
            ],
            &[(1, 1.0)],
        ),
    ];
    let c = mem.convert(&req, &m).unwrap();
    assert_eq!(c.unusable_series, 3);
    assert!(c.summaries.is_empty());
}

proptest! {
    /// However Prometheus splits a series over requests, the minutes add up to the same:
    /// the increase over the whole series (with resets counted as `rate()` does).
    #[test]
    fn splitting_a_series_over_requests_changes_nothing(
        steps in proptest::collection::vec((1i64..40_000, 0u32..500, proptest::bool::weighted(0.1)), 2..60),
        cut in 1usize..59,
    ) {
        let m = Mapping::default();
        let mut t = 0i64;
        let mut v = 0f64;
        let mut samples = Vec::new();
        for (dt, inc, reset) in &steps {
            t += dt;
            v = if *reset { f64::from(*inc) } else { v + f64::from(*inc) };
            samples.push((t, v));
        }
        let total = |mem: &mut CounterMemory, parts: Vec<Vec<(i64, f64)>>| {
            let mut by_minute = std::collections::BTreeMap::new();
            for p in parts {
                let c = mem.convert(&[counter("200", &p)], &m).unwrap();
                for s in c.summaries.values().flatten() {
                    *by_minute.entry(s.minute).or_insert(0u64) += s.count;
                }
                mem.commit(c);
            }
            by_minute
        };
        let whole = total(&mut CounterMemory::default(), vec![samples.clone()]);
        let cut = cut.min(samples.len() - 1);
        let split = total(
            &mut CounterMemory::default(),
            vec![samples[..cut].to_vec(), samples[cut..].to_vec()],
        );
        prop_assert_eq!(&whole, &split);
        let expected: u64 = samples.windows(2).map(|w| {
            let d = if w[1].1 >= w[0].1 { w[1].1 - w[0].1 } else { w[1].1 };
            d as u64
        }).sum();
        prop_assert_eq!(whole.values().sum::<u64>(), expected);
    }
}

mod telemetry {
    use crate::sla::measure::{self, Sample};
    use crate::sla::telemetry::{parse, Accumulator};

    #[test]
    fn a_version_keeps_its_own_summaries() {
        let mut acc = Accumulator::default();
        let msg = parse(b"[[60500, 1000, 200], [61000, 2000, 503]]").unwrap();
        acc.add("checkout", Some("2.0.0"), &msg).unwrap();
        acc.add("checkout", None, &msg).unwrap();
        let taken = acc.take_closed(120).unwrap();
        let versions: Vec<Option<&str>> = taken["checkout"]
            .iter()
            .map(|s| s.version.as_deref())
            .collect();
        assert_eq!(versions, vec![None, Some("2.0.0")]);
        assert!(taken["checkout"]
            .iter()
            .all(|s| s.count == 2 && s.errors == 1));
    }

    #[test]
    fn closed_minutes_are_taken_exact_and_late_samples_start_a_new_summary() {
        let mut acc = Accumulator::default();
        let msg = parse(b"[[60500, 1000, 200], [61000, 250000, 503], [125000, 3000, 0]]").unwrap();
        acc.add("checkout", None, &msg).unwrap();
        assert_eq!(acc.pending_samples(), 3);
        assert!(acc.take_closed(119).unwrap().is_empty());
        let taken = acc.take_closed(120).unwrap();
        let s = &taken["checkout"];
        assert_eq!(
            (s.len(), s[0].minute, s[0].count, s[0].errors),
            (1, 60, 2, 1)
        );
        // The same as a REST batch of the same samples would record.
        let at = |ms: i64| {
            time::OffsetDateTime::from_unix_timestamp(ms / 1000).unwrap()
                + time::Duration::milliseconds(ms % 1000)
        };
        let rest = measure::summarize(
            "checkout",
            &[
                Sample {
                    at: at(60_500),
                    latency_ms: 1.0,
                    status: Some(200),
                    ok: None,
                },
                Sample {
                    at: at(61_000),
                    latency_ms: 250.0,
                    status: Some(503),
                    ok: None,
                },
            ],
        )
        .unwrap();
        assert_eq!(s[0], rest[0]);
        assert_eq!(acc.pending_samples(), 1);
        // Late sample of a taken minute: a second summary of it.
        acc.add("checkout", None, &parse(b"[[62000, 5000, 200]]").unwrap())
            .unwrap();
        let taken = acc.take_closed(180).unwrap();
        assert_eq!(
            taken["checkout"]
                .iter()
                .map(|s| (s.minute, s.count))
                .collect::<Vec<_>>(),
            [(60, 1), (120, 1)]
        );
        // Put back after a failed append: taken again, nothing lost.
        acc.restore(taken["checkout"].clone()).unwrap();
        assert_eq!(acc.pending_samples(), 2);
        assert_eq!(acc.take_closed(180).unwrap()["checkout"].len(), 2);
    }

    #[test]
    fn bad_messages_are_refused_whole() {
        let mut acc = Accumulator::default();
        assert!(parse(b"{\"at\": 1}")
            .unwrap_err()
            .0
            .contains("[unix_ms, latency_us, status]"));
        let e = acc.add("a", None, &[(1, 1, 200), (2, 1, 999)]).unwrap_err();
        assert!(e.0.contains("sample 1: status 999"), "{e}");
        assert_eq!(acc.pending_samples(), 0);
    }
}

mod encoded {
    use crate::sla::measure::{decode, encode, new_histogram, Merge};
    use proptest::prelude::*;

    proptest! {
        /// The fast path adds exactly what decoding and adding would.
        #[test]
        fn adding_encoded_equals_decoding_and_adding(
            a in proptest::collection::vec((1u64..3_600_000_000, 1u64..1000), 0..300),
            b in proptest::collection::vec((1u64..3_600_000_000, 1u64..1000), 1..300),
        ) {
            let mut base = new_histogram().unwrap();
            for (v, n) in &a { base.record_n(*v, *n).unwrap(); }
            let mut other = new_histogram().unwrap();
            for (v, n) in &b { other.record_n(*v, *n).unwrap(); }
            let text = encode(&other).unwrap();
            let mut merge = Merge::new().unwrap();
            merge.add_encoded(&encode(&base).unwrap()).unwrap();
            merge.add_encoded(&text).unwrap();
            let fast = merge.finish().unwrap();
            let mut slow = base.clone();
            slow.add(decode(&text).unwrap()).unwrap();
            prop_assert_eq!(fast.len(), slow.len());
            for q in [0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
                prop_assert_eq!(fast.value_at_quantile(q), slow.value_at_quantile(q));
            }
            prop_assert_eq!(
                fast.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect::<Vec<_>>(),
                slow.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect::<Vec<_>>()
            );
        }

        /// Damaged text is refused, never half added.
        #[test]
        fn damaged_histograms_are_refused_whole(cut in 0usize..200, flip in 0usize..200) {
            use base64::Engine as _;
            let mut h = new_histogram().unwrap();
            for v in 1..500u64 { h.record(v * 977).unwrap(); }
            let mut bytes = base64::engine::general_purpose::STANDARD.decode(encode(&h).unwrap()).unwrap();
            let i = flip % bytes.len();
            bytes[i] ^= 0xa5;
            bytes.truncate(bytes.len().saturating_sub(cut));
            let text = base64::engine::general_purpose::STANDARD.encode(&bytes);
            let mut five = new_histogram().unwrap();
            five.record(5).unwrap();
            let mut merge = Merge::new().unwrap();
            merge.add_encoded(&encode(&five).unwrap()).unwrap();
            if merge.add_encoded(&text).is_err() {
                prop_assert_eq!(merge.finish().unwrap().len(), 1);
            }
        }
    }
}

mod signals {
    use crate::approval::ApprovalEvent;
    use crate::gates::{Check, Evaluation, Gate, Outcome};
    use crate::promotion::{PromotionEvent, PromotionOutcome};
    use crate::sla::incident::{CauseState, IncidentReport, IncidentSeverity, IncidentType};
    use crate::sla::signals::{from_approval, from_promotion};

    fn gate(check: Check, outcome: Outcome) -> PromotionEvent {
        PromotionEvent::GateEvaluated {
            service: "checkout".into(),
            version: "1.2.0".into(),
            gate: Gate::EvidenceCollection,
            outcome,
            checks: vec![Evaluation {
                check,
                outcome,
                detail: "2 high (max 0)".into(),
                inputs: vec![],
            }],
        }
    }

    #[test]
    fn security_failures_failed_promotions_and_refusals_mean_incidents() {
        let s = from_promotion("p1", &gate(Check::SastResultsClean, Outcome::Fail)).unwrap();
        assert_eq!(
            (s.kind, s.severity),
            (IncidentType::SecurityFinding, IncidentSeverity::Error)
        );
        assert_eq!(s.cause, "security:checkout@1.2.0");
        assert_eq!(
            s.title,
            "checkout@1.2.0: sast_results_clean: 2 high (max 0)"
        );
        assert!(from_promotion("p1", &gate(Check::SastResultsClean, Outcome::Pass)).is_none());
        assert!(from_promotion("p1", &gate(Check::AllTestsPassing, Outcome::Fail)).is_none());
        let done = PromotionEvent::PromotionCompleted {
            outcome: PromotionOutcome::Failed,
            promoted: vec![],
            failed: vec!["checkout".into()],
            blocked: vec!["cart".into()],
        };
        let s = from_promotion("p1", &done).unwrap();
        assert_eq!(
            (s.kind, s.cause.as_str()),
            (IncidentType::PromotionFailure, "promotion:p1")
        );
        assert_eq!(
            s.title,
            "promotion p1 failed (failed: checkout; blocked: cart)"
        );
        let refused = ApprovalEvent::Refused {
            actor: "olga".into(),
            action: "grant".into(),
            reason: "x".repeat(600),
        };
        let s = from_approval("a1", &refused).unwrap();
        assert_eq!(s.kind, IncidentType::UnauthorizedAccess);
        assert!(
            s.title.chars().count() <= 500 && s.title.ends_with('…'),
            "{}",
            s.title
        );
    }

    #[test]
    fn an_occurrence_already_cited_is_not_recorded_twice() {
        let report = IncidentReport {
            kind: IncidentType::PromotionFailure,
            severity: IncidentSeverity::Warning,
            title: "promotion p1 failed".into(),
            service: None,
            caused_by: vec![42],
        };
        let mut c = CauseState::default();
        let first = c.occur("promotion:p1", "i1", &report, "goose-sla").unwrap();
        assert_eq!(first.len(), 1);
        c.apply(&first[0]);
        // Another replica decides on the same occurrence: nothing.
        assert!(c
            .occur("promotion:p1", "i2", &report, "goose-sla")
            .unwrap()
            .is_empty());
        let newer = IncidentReport {
            caused_by: vec![42, 57],
            ..report
        };
        assert_eq!(
            c.occur("promotion:p1", "i2", &newer, "goose-sla")
                .unwrap()
                .len(),
            1
        );
    }
}
