//! Abuse limits the server applies per token, per tenant and per client address: request
//! rates ([`RateLimiter`], a token bucket) and concurrent streams ([`StreamLimiter`]).
//!
//! Both are in-memory and per process. Time comes from the injected
//! [`Clock`](ostiary_store::Clock), so tests drive it.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use ostiary_store::Clock;
use ostiary_types::Timestamp;
use parking_lot::Mutex;

/// A rate: `per_second` requests per second on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The sustained rate (at least 1).
    pub per_second: u32,
    /// How many requests may arrive at once after a quiet period (at least 1).
    pub burst: u32,
}

impl Limit {
    /// A limit of `per_second` with a burst of the same size.
    pub fn per_second(per_second: u32) -> Self {
        Self {
            per_second,
            burst: per_second,
        }
    }

    /// Nanoseconds between two requests at the sustained rate.
    fn interval_nanos(self) -> i128 {
        1_000_000_000 / i128::from(self.per_second.max(1))
    }

    /// How far ahead of now the bucket's schedule may run: the burst minus one interval.
    fn tolerance_nanos(self) -> i128 {
        self.interval_nanos() * i128::from(self.burst.max(1) - 1)
    }
}

/// A request refused by a [`RateLimiter`]: retry after this long (the server sends it as
/// `retry-after` metadata with `ResourceExhausted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rate limit exceeded; retry after {} ms", retry_after.as_millis())]
pub struct RateLimited {
    /// How long until a request would be admitted.
    pub retry_after: Duration,
}

/// Token buckets by key (a token id, a tenant, a client address), each with the limit the
/// caller passes (so per-tenant quotas can differ). Implemented as GCRA: one timestamp per
/// key, the time the bucket is next empty.
pub struct RateLimiter<K> {
    clock: Arc<dyn Clock>,
    /// Per key, the theoretical arrival time of the next request, in Unix nanoseconds.
    schedule: Mutex<HashMap<K, i128>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// An empty limiter taking time from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            schedule: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one request of `key` under `limit`, or says how long to wait. A refused
    /// request consumes nothing.
    ///
    /// # Errors
    ///
    /// [`RateLimited`] when the bucket is empty.
    pub fn check(&self, key: &K, limit: Limit) -> Result<(), RateLimited> {
        let now = nanos(self.clock.now());
        let mut schedule = self.schedule.lock();
        let next = schedule.get(key).copied().unwrap_or(now).max(now);
        let ahead = next - now;
        if ahead > limit.tolerance_nanos() {
            return Err(RateLimited {
                retry_after: duration(ahead - limit.tolerance_nanos()),
            });
        }
        schedule.insert(key.clone(), next + limit.interval_nanos());
        Ok(())
    }

    /// Says whether a request of `key` would be refused now, without consuming anything
    /// (for a failure limit: check before verifying a credential, count only failures
    /// with [`RateLimiter::check`]).
    pub fn would_refuse(&self, key: &K, limit: Limit) -> Option<RateLimited> {
        let now = nanos(self.clock.now());
        let next = self.schedule.lock().get(key).copied()?.max(now);
        let ahead = next - now;
        (ahead > limit.tolerance_nanos()).then(|| RateLimited {
            retry_after: duration(ahead - limit.tolerance_nanos()),
        })
    }

    /// Forgets keys whose bucket has refilled completely (they behave as new), bounding
    /// memory; call it periodically. Returns how many it removed.
    pub fn prune(&self) -> usize {
        let now = nanos(self.clock.now());
        let mut schedule = self.schedule.lock();
        let n_before = schedule.len();
        schedule.retain(|_, next| *next > now);
        n_before - schedule.len()
    }

    /// How many keys are tracked.
    pub fn len(&self) -> usize {
        self.schedule.lock().len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K> fmt::Debug for RateLimiter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("n_keys", &self.schedule.lock().len())
            .finish_non_exhaustive()
    }
}

/// Caps the concurrent streams (Watch, exports) per key.
pub struct StreamLimiter<K> {
    max: usize,
    open: Mutex<HashMap<K, usize>>,
}

impl<K: Hash + Eq + Clone> StreamLimiter<K> {
    /// A limiter allowing `max` concurrent streams per key.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Opens a stream for `key` if it has fewer than the maximum open; the stream counts
    /// until the permit is dropped.
    pub fn try_open(self: &Arc<Self>, key: &K) -> Option<StreamPermit<K>> {
        let mut open = self.open.lock();
        let count = open.entry(key.clone()).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(StreamPermit {
            limiter: Arc::clone(self),
            key: key.clone(),
        })
    }

    /// How many streams `key` has open.
    pub fn open_streams(&self, key: &K) -> usize {
        self.open.lock().get(key).copied().unwrap_or(0)
    }
}

impl<K> fmt::Debug for StreamLimiter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamLimiter")
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

/// One open stream; dropping it closes the stream's slot.
pub struct StreamPermit<K: Hash + Eq + Clone> {
    limiter: Arc<StreamLimiter<K>>,
    key: K,
}

impl<K: Hash + Eq + Clone> Drop for StreamPermit<K> {
    fn drop(&mut self) {
        let mut open = self.limiter.open.lock();
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

impl<K: Hash + Eq + Clone> fmt::Debug for StreamPermit<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamPermit").finish_non_exhaustive()
    }
}

fn nanos(timestamp: Timestamp) -> i128 {
    i128::from(timestamp.unix_seconds()) * 1_000_000_000 + i128::from(timestamp.subsec_nanos())
}

fn duration(nanos: i128) -> Duration {
    Duration::from_nanos(u64::try_from(nanos.max(0)).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use ostiary_store::ManualClock;

    use super::*;

    fn limiter() -> (Arc<ManualClock>, RateLimiter<&'static str>) {
        let clock = Arc::new(ManualClock::new("2025-01-01T00:00:00Z".parse().unwrap()));
        (clock.clone(), RateLimiter::new(clock))
    }

    #[test]
    fn bursts_then_the_sustained_rate() {
        let (clock, limiter) = limiter();
        let limit = Limit {
            per_second: 10,
            burst: 3,
        };
        for _ in 0..3 {
            limiter.check(&"tok", limit).unwrap();
        }
        let refused = limiter.check(&"tok", limit).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_millis(100));
        assert_eq!(
            refused.to_string(),
            "rate limit exceeded; retry after 100 ms"
        );
        // Refusals consume nothing: still 100 ms.
        assert_eq!(
            limiter.check(&"tok", limit).unwrap_err().retry_after,
            Duration::from_millis(100)
        );
        // Other keys are unaffected.
        limiter.check(&"other", limit).unwrap();
        clock.advance(Duration::from_millis(100));
        limiter.check(&"tok", limit).unwrap();
        assert!(limiter.check(&"tok", limit).is_err());
        // Over one second, ten requests get through at the sustained rate.
        let mut n_admitted = 0;
        for _ in 0..100 {
            clock.advance(Duration::from_millis(10));
            if limiter.check(&"tok", limit).is_ok() {
                n_admitted += 1;
            }
        }
        assert_eq!(n_admitted, 10);
    }

    #[test]
    fn failure_limit_and_pruning() {
        let (clock, limiter) = limiter();
        let limit = Limit::per_second(2);
        assert_eq!(limiter.would_refuse(&"10.0.0.1", limit), None);
        limiter.check(&"10.0.0.1", limit).unwrap();
        assert_eq!(limiter.would_refuse(&"10.0.0.1", limit), None);
        limiter.check(&"10.0.0.1", limit).unwrap();
        let refused = limiter.would_refuse(&"10.0.0.1", limit).unwrap();
        assert_eq!(refused.retry_after, Duration::from_millis(500));
        assert_eq!(limiter.len(), 1);
        clock.advance(Duration::from_millis(999));
        assert_eq!(limiter.prune(), 0);
        clock.advance(Duration::from_millis(1));
        assert_eq!(limiter.prune(), 1);
        assert!(limiter.is_empty());
    }

    #[test]
    fn streams_are_capped_per_key() {
        let limiter: Arc<StreamLimiter<&'static str>> = StreamLimiter::new(2);
        let first = limiter.try_open(&"tok").unwrap();
        let second = limiter.try_open(&"tok").unwrap();
        assert!(limiter.try_open(&"tok").is_none());
        assert!(limiter.try_open(&"other").is_some());
        assert_eq!(limiter.open_streams(&"tok"), 2);
        drop(first);
        assert_eq!(limiter.open_streams(&"tok"), 1);
        let third = limiter.try_open(&"tok").unwrap();
        drop((second, third));
        assert_eq!(limiter.open_streams(&"tok"), 0);
    }
}
