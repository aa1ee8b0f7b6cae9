//! Clocks: where a datastore gets "now" for commit times, expiration and the GC window.
//!
//! Backends never call the system clock directly; they ask the [`Clock`] in their
//! [`DatastoreOptions`](crate::DatastoreOptions). Production uses [`SystemClock`]; tests
//! use [`ManualClock`] to make expiration and garbage collection deterministic.

use std::fmt;
use std::time::Duration;

use ostiary_types::Timestamp;
use parking_lot::Mutex;

/// A source of wall-clock time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Returns the current time.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    /// Builds a clock stopped at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Sets the time.
    pub fn set(&self, now: Timestamp) {
        *self.now.lock() = now;
    }

    /// Moves the time forward by `duration` (saturating at the largest timestamp).
    pub fn advance(&self, duration: Duration) {
        let mut now = self.now.lock();
        *now = add_duration(*now, duration);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock()
    }
}

/// Returns `timestamp + duration`, saturating at the largest representable timestamp.
pub fn add_duration(timestamp: Timestamp, duration: Duration) -> Timestamp {
    from_nanos(to_nanos(timestamp).saturating_add(duration_nanos(duration)))
        .unwrap_or(timestamp_max())
}

/// Returns `timestamp - duration`, saturating at the smallest representable timestamp.
pub fn sub_duration(timestamp: Timestamp, duration: Duration) -> Timestamp {
    from_nanos(to_nanos(timestamp).saturating_sub(duration_nanos(duration)))
        .unwrap_or(timestamp_min())
}

/// Rounds `timestamp` down to a multiple of `quantum` since the Unix epoch (for
/// [`Datastore::optimized_revision`](crate::Datastore::optimized_revision)). A zero quantum
/// returns `timestamp` unchanged.
pub fn quantize_down(timestamp: Timestamp, quantum: Duration) -> Timestamp {
    let quantum_nanos = duration_nanos(quantum);
    if quantum_nanos == 0 {
        return timestamp;
    }
    let nanos = to_nanos(timestamp);
    from_nanos(nanos - nanos.rem_euclid(quantum_nanos)).unwrap_or(timestamp)
}

fn duration_nanos(duration: Duration) -> i128 {
    i128::try_from(duration.as_nanos()).unwrap_or(i128::MAX)
}

fn to_nanos(timestamp: Timestamp) -> i128 {
    i128::from(timestamp.unix_seconds()) * 1_000_000_000 + i128::from(timestamp.subsec_nanos())
}

fn from_nanos(nanos: i128) -> Option<Timestamp> {
    let seconds = i64::try_from(nanos.div_euclid(1_000_000_000)).ok()?;
    let subsec = u32::try_from(nanos.rem_euclid(1_000_000_000)).ok()?;
    Timestamp::from_unix(seconds, subsec).ok()
}

fn timestamp_max() -> Timestamp {
    // 9999-12-31T23:59:59.999999999Z, the last instant with a four-digit year.
    Timestamp::from_unix(253_402_300_799, 999_999_999).unwrap_or_else(|_| Timestamp::now())
}

fn timestamp_min() -> Timestamp {
    // 0000-01-01T00:00:00Z.
    Timestamp::from_unix(-62_167_219_200, 0).unwrap_or_else(|_| Timestamp::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn arithmetic() {
        let start = ts("2025-01-01T00:00:00Z");
        assert_eq!(
            add_duration(start, Duration::from_millis(1500)),
            ts("2025-01-01T00:00:01.5Z")
        );
        assert_eq!(
            sub_duration(start, Duration::from_secs(86_400)),
            ts("2024-12-31T00:00:00Z")
        );
        assert_eq!(
            quantize_down(ts("2025-01-01T00:00:07.3Z"), Duration::from_secs(5)),
            ts("2025-01-01T00:00:05Z")
        );
        assert_eq!(
            quantize_down(ts("1969-12-31T23:59:58Z"), Duration::from_secs(5)),
            ts("1969-12-31T23:59:55Z")
        );
        assert_eq!(quantize_down(start, Duration::ZERO), start);
        assert_eq!(
            add_duration(start, Duration::MAX),
            ts("9999-12-31T23:59:59.999999999Z")
        );
        assert_eq!(
            sub_duration(start, Duration::MAX),
            ts("0000-01-01T00:00:00Z")
        );
    }

    #[test]
    fn manual_clock() {
        let clock = ManualClock::new(ts("2025-01-01T00:00:00Z"));
        clock.advance(Duration::from_secs(60));
        assert_eq!(clock.now(), ts("2025-01-01T00:01:00Z"));
        clock.set(ts("2030-01-01T00:00:00Z"));
        assert_eq!(clock.now(), ts("2030-01-01T00:00:00Z"));
        assert!(SystemClock.now() > ts("2024-01-01T00:00:00Z"));
    }
}
