//! Parallel promotion efficiency (seed 003's KPI): how close a promotion's wall time came to
//! the least its dependencies allow. The same definition as the analytics KPI view
//! `parallel_efficiency`: over the targets that started, the critical path (the longest chain
//! of target durations along dependencies inside the promotion) divided by the wall time
//! (first start to last end). 1.0: as parallel as the graph allows; lower: targets that could
//! have run together ran one after another.

use time::OffsetDateTime;

/// One target's run: when it started and ended, and what it waited for.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub service: String,
    /// Services of the same promotion this target depends on.
    pub dependencies: Vec<String>,
    pub started: OffsetDateTime,
    pub ended: OffsetDateTime,
}

/// `critical_path / wall` for a promotion of two or more started targets (`None` for fewer,
/// or when the wall time is zero). Targets must come in promotion order (dependencies
/// first), as the promotion lists them; a dependency listed later is ignored.
pub fn efficiency(spans: &[Span]) -> Option<f64> {
    if spans.len() < 2 {
        return None;
    }
    let first = spans.iter().map(|s| s.started).min()?;
    let last = spans.iter().map(|s| s.ended).max()?;
    let wall = (last - first).as_seconds_f64();
    if wall <= 0.0 {
        return None;
    }
    // Longest chain ending at each target, in order: dependencies were computed before.
    let mut chain: Vec<f64> = Vec::with_capacity(spans.len());
    for (i, s) in spans.iter().enumerate() {
        let own = (s.ended - s.started).as_seconds_f64().max(0.0);
        let before = spans[..i]
            .iter()
            .zip(&chain)
            .filter(|(d, _)| s.dependencies.contains(&d.service))
            .map(|(_, c)| *c)
            .fold(0.0, f64::max);
        chain.push(before + own);
    }
    let critical = chain.iter().copied().fold(0.0, f64::max);
    Some((critical / wall).min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::Duration;

    fn span(service: &str, deps: &[&str], start: i64, end: i64) -> Span {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        Span {
            service: service.into(),
            dependencies: deps.iter().map(|d| (*d).to_owned()).collect(),
            started: t0 + Duration::seconds(start),
            ended: t0 + Duration::seconds(end),
        }
    }

    #[test]
    fn independent_targets_run_together_or_one_after_another() {
        // b and c both need a: run together after it, the wall time is the critical path.
        let parallel = [
            span("a", &[], 0, 10),
            span("b", &["a"], 10, 30),
            span("c", &["a"], 10, 20),
        ];
        assert_eq!(efficiency(&parallel), Some(1.0));
        // The same targets one after another: 40 s of wall for a 30 s critical path.
        let serial = [
            span("a", &[], 0, 10),
            span("b", &["a"], 10, 30),
            span("c", &["a"], 30, 40),
        ];
        assert_eq!(efficiency(&serial), Some(0.75));
    }

    #[test]
    fn a_single_target_or_no_time_says_nothing() {
        assert_eq!(efficiency(&[span("a", &[], 0, 10)]), None);
        assert_eq!(
            efficiency(&[span("a", &[], 5, 5), span("b", &[], 5, 5)]),
            None
        );
    }

    proptest! {
        #[test]
        fn efficiency_is_a_ratio_and_a_chain_run_in_order_is_perfect(
            durations in proptest::collection::vec(1i64..100, 2..8),
            gaps in proptest::collection::vec(0i64..50, 2..8),
        ) {
            // Any schedule: within (0, 1].
            let mut spans = Vec::new();
            let mut t = 0;
            for (i, (d, g)) in durations.iter().zip(&gaps).enumerate() {
                let name = format!("s{i}");
                spans.push(span(&name, &[], t, t + d));
                t += d + g;
            }
            let e = efficiency(&spans);
            prop_assert!(e.is_some_and(|e| e > 0.0 && e <= 1.0), "{e:?}");
            // A chain (each needs the one before) run back to back: exactly 1.
            let mut chain = Vec::new();
            let mut t = 0;
            for (i, d) in durations.iter().enumerate() {
                let deps = if i == 0 { vec![] } else { vec![format!("s{}", i - 1)] };
                let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
                chain.push(span(&format!("s{i}"), &deps, t, t + d));
                t += d;
            }
            prop_assert_eq!(efficiency(&chain), Some(1.0));
        }
    }
}
