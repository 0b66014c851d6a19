//! Bursts of refused requests (403s): every service reports the requests its access rules
//! refused (who, what, when — not chain events: an attacker could flood the ledger with them);
//! the sla service counts them per user in a sliding window and, when a user reaches the
//! threshold, records an `unauthorized_access` incident. One incident per burst: refusals
//! already counted into a reported burst never count again.

use std::collections::{BTreeMap, VecDeque};

/// One refused request, as a service reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Refusal {
    /// The service that refused it.
    pub service: String,
    pub user: String,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// `METHOD /route` (the route's template, not the concrete path).
    pub request: String,
    /// Why (the permission missing).
    pub reason: String,
}

/// A burst found: `refusals` refusals of `user` between `first_ms` and `last_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Burst {
    pub user: String,
    pub refusals: usize,
    pub first_ms: i64,
    pub last_ms: i64,
    /// The services that refused, and a few distinct requests as examples.
    pub services: Vec<String>,
    pub examples: Vec<String>,
}

/// Counts refusals per user over a sliding window.
#[derive(Debug, Clone)]
pub struct BurstDetector {
    threshold: usize,
    window_ms: i64,
    /// Per user, the refusals inside the window not yet reported, oldest first.
    recent: BTreeMap<String, VecDeque<Refusal>>,
}

impl BurstDetector {
    /// A burst is `threshold` refusals of one user within `window_seconds`.
    pub fn new(threshold: usize, window_seconds: u64) -> Self {
        Self {
            threshold: threshold.max(1),
            window_ms: i64::try_from(window_seconds.max(1) * 1000).unwrap_or(i64::MAX),
            recent: BTreeMap::new(),
        }
    }

    /// Adds a refusal; returns the burst it completes, if it does. The refusals of a burst
    /// are then forgotten, so the next burst needs `threshold` new ones.
    pub fn refused(&mut self, r: Refusal) -> Option<Burst> {
        let window = self.window_ms;
        let q = self.recent.entry(r.user.clone()).or_default();
        // Out-of-order arrivals are placed by time (reports from several services interleave).
        let at = q.partition_point(|x| x.at_ms <= r.at_ms);
        q.insert(at, r);
        let newest = q.back().map_or(0, |x| x.at_ms);
        while q.front().is_some_and(|x| x.at_ms < newest - window) {
            q.pop_front();
        }
        if q.len() < self.threshold {
            return None;
        }
        let taken: Vec<Refusal> = q.drain(..).collect();
        let mut services: Vec<String> = taken.iter().map(|x| x.service.clone()).collect();
        services.sort();
        services.dedup();
        let mut examples: Vec<String> = Vec::new();
        for x in &taken {
            let e = format!("{} ({})", x.request, x.reason);
            if !examples.contains(&e) && examples.len() < 3 {
                examples.push(e);
            }
        }
        Some(Burst {
            user: taken[0].user.clone(),
            refusals: taken.len(),
            first_ms: taken[0].at_ms,
            last_ms: taken[taken.len() - 1].at_ms,
            services,
            examples,
        })
    }

    /// Forgets users with nothing inside the window before `now_ms` (bounded memory).
    pub fn expire(&mut self, now_ms: i64) {
        let window = self.window_ms;
        self.recent.retain(|_, q| {
            while q.front().is_some_and(|x| x.at_ms < now_ms - window) {
                q.pop_front();
            }
            !q.is_empty()
        });
    }

    /// Users with refusals inside the window (for tests and metrics).
    pub fn users(&self) -> usize {
        self.recent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn refusal(user: &str, at_ms: i64) -> Refusal {
        Refusal {
            service: "registry".into(),
            user: user.into(),
            at_ms,
            request: "POST /v1/services".into(),
            reason: "lacks service.onboard".into(),
        }
    }

    #[test]
    fn a_burst_is_threshold_refusals_inside_the_window_and_is_reported_once() {
        let mut d = BurstDetector::new(5, 60);
        for k in 0..4 {
            assert_eq!(d.refused(refusal("mallory", k * 1000)), None);
        }
        // Another user's refusals do not add up with hers.
        assert_eq!(d.refused(refusal("ana", 4_000)), None);
        let b = d.refused(refusal("mallory", 5_000)).unwrap();
        assert_eq!((b.refusals, b.first_ms, b.last_ms), (5, 0, 5_000));
        assert_eq!(
            b.examples,
            vec!["POST /v1/services (lacks service.onboard)"]
        );
        // Counted refusals never count again: four more are not a burst.
        for k in 6..10 {
            assert_eq!(d.refused(refusal("mallory", k * 1000)), None);
        }
        assert!(d.refused(refusal("mallory", 10_000)).is_some());
    }

    #[test]
    fn refusals_spread_wider_than_the_window_are_not_a_burst() {
        let mut d = BurstDetector::new(3, 10);
        for k in 0..10 {
            assert_eq!(d.refused(refusal("ana", k * 6_000)), None);
        }
        d.expire(1_000_000);
        assert_eq!(d.users(), 0);
    }

    proptest! {
        #[test]
        fn every_burst_fits_the_window_and_reaches_the_threshold(
            times in proptest::collection::vec(0i64..600_000, 1..300),
            threshold in 1usize..20,
        ) {
            let mut d = BurstDetector::new(threshold, 60);
            let mut reported = 0;
            for t in &times {
                if let Some(b) = d.refused(refusal("u", *t)) {
                    prop_assert!(b.refusals >= threshold);
                    prop_assert!(b.last_ms - b.first_ms <= 60_000);
                    reported += b.refusals;
                }
            }
            prop_assert!(reported <= times.len());
        }
    }
}
