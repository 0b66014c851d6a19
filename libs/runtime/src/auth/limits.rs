//! Rate limits (429 + `Retry-After`): per client address on the public write routes (the
//! token exchange — guessing API keys), per user on every other write. GETs are not limited.
//! `governor`'s keyed GCRA limiters; 0 turns a limit off.

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// Metric: requests refused by a rate limit, by `limit` (`address`, `user`).
pub use goose_metrics::health::RATE_LIMITED;

/// How many requests are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Public writes (the token exchange) per client address and minute; bursts of the same.
    pub public_per_minute: u32,
    /// Writes per user and second; bursts of twice that.
    pub writes_per_second: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            public_per_minute: 60,
            writes_per_second: 200,
        }
    }
}

/// The limiters of one service.
pub(crate) struct Limiters {
    public: Option<DefaultKeyedRateLimiter<IpAddr>>,
    writes: Option<DefaultKeyedRateLimiter<String>>,
}

impl std::fmt::Debug for Limiters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiters").finish_non_exhaustive()
    }
}

impl Limiters {
    pub(crate) fn new(l: RateLimits) -> Self {
        Self {
            public: NonZeroU32::new(l.public_per_minute)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n).allow_burst(n))),
            writes: NonZeroU32::new(l.writes_per_second).map(|n| {
                let burst = n.saturating_mul(NonZeroU32::MIN.saturating_add(1));
                RateLimiter::keyed(Quota::per_second(n).allow_burst(burst))
            }),
        }
    }

    /// `Err(wait)` when `address` is over its public-write limit.
    pub(crate) fn public(&self, address: IpAddr) -> Result<(), Duration> {
        check(self.public.as_ref(), &address)
    }

    /// `Err(wait)` when `user` is over its write limit.
    pub(crate) fn write(&self, user: &str) -> Result<(), Duration> {
        check(self.writes.as_ref(), &user.to_owned())
    }
}

fn check<K: std::hash::Hash + Eq + Clone>(
    limiter: Option<&DefaultKeyedRateLimiter<K>>,
    key: &K,
) -> Result<(), Duration> {
    let Some(l) = limiter else { return Ok(()) };
    // Forget keys idle long enough to be full again, so the map stays small.
    if l.len() > 10_000 {
        l.retain_recent();
    }
    l.check_key(key)
        .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_pass_then_the_wait_is_named() {
        let l = Limiters::new(RateLimits {
            public_per_minute: 3,
            writes_per_second: 0,
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            l.public(a).unwrap();
        }
        let wait = l.public(a).unwrap_err();
        assert!(
            wait > Duration::from_secs(5) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        l.public(b).unwrap();
        for _ in 0..1000 {
            l.write("ada").unwrap();
        }
    }
}
