//! The decision log: a sample of Check decisions (who asked what about which tenant, and the
//! answer), written as `tracing` events with target `ostiary::decisions` so that a log
//! pipeline can route them apart. Off by default; `decision-log-every = N` logs one decision
//! in every N.

use std::sync::atomic::{AtomicU64, Ordering};

use ostiary_engine::{CheckItem, Permissionship};
use ostiary_types::Revision;

use crate::auth::Caller;

/// Decides which decisions are logged: every `every`-th one (a counter, not a random draw,
/// so the rate is exact and costs one atomic add).
#[derive(Debug)]
pub(crate) struct DecisionLog {
    every: u64,
    seen: AtomicU64,
}

impl DecisionLog {
    /// Logs one decision in `every` (0: none).
    pub(crate) fn new(every: u64) -> Self {
        Self {
            every,
            seen: AtomicU64::new(0),
        }
    }

    /// Whether the next decision is logged.
    fn sample(&self) -> bool {
        self.every != 0
            && self
                .seen
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(self.every)
    }

    /// Logs `item`'s answer if it is sampled.
    pub(crate) fn record(
        &self,
        caller: &Caller,
        item: &CheckItem,
        answer: &Permissionship,
        revision: Revision,
    ) {
        if !self.sample() {
            return;
        }
        let result = match answer {
            Permissionship::Has => "HAS_PERMISSION",
            Permissionship::No => "NO_PERMISSION",
            Permissionship::Conditional { .. } => "CONDITIONAL_PERMISSION",
        };
        tracing::info!(
            target: "ostiary::decisions",
            tenant = %caller.tenant,
            actor = %caller.principal.token_id(),
            on_behalf_of = caller.context.on_behalf_of.as_deref().unwrap_or(""),
            resource = %item.resource,
            permission = %item.permission,
            subject = %item.subject,
            result,
            revision = %revision,
            "check decision"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_one_in_every_n_and_none_when_off() {
        let log = DecisionLog::new(4);
        let sampled = (0..100).filter(|_| log.sample()).count();
        assert_eq!(sampled, 25);
        let off = DecisionLog::new(0);
        assert!((0..100).all(|_| !off.sample()));
    }
}
