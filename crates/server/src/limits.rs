//! Rate limits and abuse prevention: token buckets per API token and per tenant, a cap on
//! concurrent streams per token, and a per-source limit on failed authentications.
//!
//! The buckets are `governor`'s GCRA limiters (a token bucket without a refill task). A
//! tenant's bucket follows its `max_requests_per_second` quota and is rebuilt when the quota
//! changes; 0 means unlimited.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use http_body::{Body, Frame, SizeHint};
use ostiary_types::TenantId;
use parking_lot::Mutex;
use pin_project_lite::pin_project;

/// The limits' configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Requests per second per token (a burst of the same size); 0: unlimited.
    pub per_token_rps: u32,
    /// Concurrent streaming calls per token; 0: unlimited.
    pub max_streams_per_token: usize,
    /// Failed authentications per minute from one client address before it is refused
    /// for a while; 0: unlimited.
    pub auth_failures_per_minute: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            per_token_rps: 0,
            max_streams_per_token: 100,
            auth_failures_per_minute: 30,
        }
    }
}

/// The server's limiters.
pub(crate) struct Limits {
    config: LimitsConfig,
    clock: DefaultClock,
    per_token: Option<DefaultKeyedRateLimiter<String>>,
    /// Each tenant's bucket and the quota it was built for.
    tenants: Mutex<HashMap<TenantId, (u32, Arc<DefaultDirectRateLimiter>)>>,
    /// Open streams per token.
    streams: Arc<Mutex<HashMap<String, usize>>>,
    auth_failures: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Client addresses refused until the given instant.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    /// Failed authentications counted, to prune the per-address state now and then.
    n_auth_failures: AtomicU64,
}

/// How many failed authentications pass between two prunings of the per-address state:
/// without it, every address that ever failed (an attacker cycling through an IPv6
/// prefix) would stay in memory for good.
const PRUNE_AUTH_FAILURES_EVERY: u64 = 1024;

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Limits {
    /// Limiters for `config`.
    pub(crate) fn new(config: LimitsConfig) -> Self {
        let per_second = |n: u32| NonZeroU32::new(n).map(Quota::per_second);
        Self {
            config,
            clock: DefaultClock::default(),
            per_token: per_second(config.per_token_rps).map(RateLimiter::keyed),
            tenants: Mutex::new(HashMap::new()),
            streams: Arc::new(Mutex::new(HashMap::new())),
            auth_failures: NonZeroU32::new(config.auth_failures_per_minute)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            blocked: Mutex::new(HashMap::new()),
            n_auth_failures: AtomicU64::new(0),
        }
    }

    /// Takes one request from the token's and the tenant's buckets (`tenant_rps` is the
    /// tenant's quota, 0 for none); on refusal, how long to wait.
    pub(crate) fn admit(
        &self,
        token: &str,
        tenant: &TenantId,
        tenant_rps: u32,
    ) -> Result<(), Duration> {
        if let Some(limiter) = &self.per_token
            && let Err(not_until) = limiter.check_key(&token.to_owned())
        {
            return Err(not_until.wait_time_from(self.clock.now()));
        }
        let Some(rps) = NonZeroU32::new(tenant_rps) else {
            return Ok(());
        };
        let limiter = {
            let mut tenants = self.tenants.lock();
            match tenants.get(tenant) {
                Some((quota, limiter)) if *quota == tenant_rps => Arc::clone(limiter),
                _ => {
                    let limiter = Arc::new(RateLimiter::direct(Quota::per_second(rps)));
                    tenants.insert(tenant.clone(), (tenant_rps, Arc::clone(&limiter)));
                    limiter
                }
            }
        };
        limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Takes a stream slot of `token`, released when the guard drops; `None` when the token
    /// has all its slots in use.
    pub(crate) fn open_stream(&self, token: &str) -> Option<StreamGuard> {
        let max = self.config.max_streams_per_token;
        let mut streams = self.streams.lock();
        let open = streams.entry(token.to_owned()).or_insert(0);
        if max != 0 && *open >= max {
            return None;
        }
        *open += 1;
        Some(StreamGuard {
            streams: Arc::clone(&self.streams),
            token: token.to_owned(),
        })
    }

    /// Reports whether `client` is refused for too many failed authentications.
    pub(crate) fn auth_failures_exceeded(&self, client: IpAddr) -> bool {
        let mut blocked = self.blocked.lock();
        match blocked.get(&client) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                blocked.remove(&client);
                false
            }
            None => false,
        }
    }

    /// Counts a failed authentication from `client`, refusing it for a while past the limit.
    pub(crate) fn record_auth_failure(&self, client: IpAddr) {
        let Some(limiter) = &self.auth_failures else {
            return;
        };
        if let Err(not_until) = limiter.check_key(&client) {
            let wait = not_until.wait_time_from(self.clock.now());
            self.blocked.lock().insert(client, Instant::now() + wait);
        }
        let n_failures = self.n_auth_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if n_failures.is_multiple_of(PRUNE_AUTH_FAILURES_EVERY) {
            self.prune_auth_failures();
        }
    }

    /// Forgets the addresses whose block has expired and whose failure bucket is full
    /// again (they would be treated as new anyway).
    fn prune_auth_failures(&self) {
        if let Some(limiter) = &self.auth_failures {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        let now = Instant::now();
        let mut blocked = self.blocked.lock();
        blocked.retain(|_, until| *until > now);
        blocked.shrink_to_fit();
    }
}

/// A stream slot of a token; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct StreamGuard {
    streams: Arc<Mutex<HashMap<String, usize>>>,
    token: String,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let mut streams = self.streams.lock();
        if let Some(open) = streams.get_mut(&self.token) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                streams.remove(&self.token);
            }
        }
    }
}

pin_project! {
    /// A response body holding a stream slot until it ends or is dropped.
    pub(crate) struct GuardedBody<B> {
        #[pin]
        inner: B,
        guard: Option<StreamGuard>,
    }
}

impl<B> GuardedBody<B> {
    /// Holds `guard` for as long as `inner` streams.
    pub(crate) fn new(inner: B, guard: StreamGuard) -> Self {
        Self {
            inner,
            guard: Some(guard),
        }
    }
}

impl<B> Body for GuardedBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) {
            // The stream is over: free the slot now rather than when the body is dropped.
            this.guard.take();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> TenantId {
        name.parse().unwrap()
    }

    #[test]
    fn token_buckets_refuse_past_the_burst_and_say_how_long_to_wait() {
        let limits = Limits::new(LimitsConfig {
            per_token_rps: 5,
            ..LimitsConfig::default()
        });
        let a = tenant("a");
        let admitted = (0..20)
            .filter(|_| limits.admit("t1", &a, 0).is_ok())
            .count();
        assert_eq!(admitted, 5);
        let wait = limits.admit("t1", &a, 0).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        // Another token has its own bucket.
        assert!(limits.admit("t2", &a, 0).is_ok());
    }

    #[test]
    fn tenant_buckets_follow_the_quota_and_do_not_touch_other_tenants() {
        let limits = Limits::new(LimitsConfig::default());
        let (a, b) = (tenant("a"), tenant("b"));
        let admitted = (0..50)
            .filter(|_| limits.admit("t", &a, 10).is_ok())
            .count();
        assert_eq!(admitted, 10);
        assert!(limits.admit("t", &b, 10).is_ok());
        // A raised quota takes effect with a fresh bucket.
        assert!(limits.admit("t", &a, 100).is_ok());
        // No quota: unlimited.
        assert!((0..1000).all(|_| limits.admit("t", &b, 0).is_ok()));
    }

    #[test]
    fn stream_slots_are_capped_and_freed() {
        let limits = Limits::new(LimitsConfig {
            max_streams_per_token: 2,
            ..LimitsConfig::default()
        });
        let first = limits.open_stream("t").unwrap();
        let _second = limits.open_stream("t").unwrap();
        assert!(limits.open_stream("t").is_none());
        assert!(limits.open_stream("u").is_some());
        drop(first);
        assert!(limits.open_stream("t").is_some());
    }

    #[test]
    fn repeated_authentication_failures_block_the_source() {
        let limits = Limits::new(LimitsConfig {
            auth_failures_per_minute: 3,
            ..LimitsConfig::default()
        });
        let client: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            limits.record_auth_failure(client);
            assert!(!limits.auth_failures_exceeded(client));
        }
        limits.record_auth_failure(client);
        assert!(limits.auth_failures_exceeded(client));
        assert!(!limits.auth_failures_exceeded(other));
    }

    #[test]
    fn addresses_that_failed_once_are_forgotten_in_time() {
        // 6000 per minute: a bucket refills in 10 ms per failure.
        let limits = Limits::new(LimitsConfig {
            auth_failures_per_minute: 6000,
            ..LimitsConfig::default()
        });
        let n_addresses = u32::try_from(PRUNE_AUTH_FAILURES_EVERY).unwrap() - 1;
        for idx in 0..n_addresses {
            limits.record_auth_failure(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000_u32 + idx)));
        }
        let tracked = |limits: &Limits| limits.auth_failures.as_ref().unwrap().len();
        assert_eq!(tracked(&limits), usize::try_from(n_addresses).unwrap());
        // An expired block is dropped at the pruning too; a current one is kept.
        let (expired, current): (IpAddr, IpAddr) =
            ("10.9.9.1".parse().unwrap(), "10.9.9.2".parse().unwrap());
        limits
            .blocked
            .lock()
            .insert(expired, Instant::now() - Duration::from_secs(1));
        limits
            .blocked
            .lock()
            .insert(current, Instant::now() + Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(50));
        // The failure that makes the count a multiple prunes.
        let last: IpAddr = "10.9.9.3".parse().unwrap();
        limits.record_auth_failure(last);
        assert!(tracked(&limits) <= 1, "{} addresses kept", tracked(&limits));
        let blocked = limits.blocked.lock();
        assert!(!blocked.contains_key(&expired));
        assert!(blocked.contains_key(&current));
    }
}
