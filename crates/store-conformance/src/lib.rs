//! The conformance suite every Ostiary datastore backend runs.
//!
//! A backend's `tests/conformance.rs` calls [`suite!`] with a factory that builds a fresh,
//! empty datastore from [`DatastoreOptions`]; the macro emits one `#[test]` per case:
//!
//! ```text
//! use std::sync::Arc;
//! use ostiary_store_conformance::Instance;
//! use ostiary_store_mem::MemDatastore;
//!
//! ostiary_store_conformance::suite!(|options| Instance::new(Arc::new(MemDatastore::new(options))));
//! ```
//!
//! A backend that needs to keep something alive beside the datastore (a temporary
//! directory) uses [`Instance::with_guard`]. A backend may exclude cases only by declaring
//! a [`Capability`] it lacks: `suite!(factory, lacks: [DeleteTenant])`. Each excluded case
//! still runs as a test and says on stderr why it did nothing.
//!
//! Every case drives time through a [`ManualClock`](ostiary_store::ManualClock) passed in
//! the options, so backends must take all time (commit times, expiration, the GC window)
//! from [`DatastoreOptions::clock`].

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test suite reports failure by panicking"
)]

use std::any::Any;
use std::sync::Arc;

use ostiary_store::{Datastore, DatastoreOptions};

#[doc(hidden)]
pub mod cases;
mod support;

/// A datastore built by a backend's factory, with anything that must outlive it.
pub struct Instance {
    // Fields drop in order: the datastore closes before its guard (say, a temporary
    // directory) goes away.
    store: Arc<dyn Datastore>,
    _guard: Option<Box<dyn Any + Send + Sync>>,
}

impl Instance {
    /// Wraps a datastore that needs nothing else kept alive.
    pub fn new(store: Arc<dyn Datastore>) -> Self {
        Self {
            store,
            _guard: None,
        }
    }

    /// Wraps a datastore together with `guard`, dropped after the datastore.
    pub fn with_guard(store: Arc<dyn Datastore>, guard: Box<dyn Any + Send + Sync>) -> Self {
        Self {
            store,
            _guard: Some(guard),
        }
    }

    /// The datastore.
    pub fn store(&self) -> &Arc<dyn Datastore> {
        &self.store
    }
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// An optional feature a case needs. A backend lists the ones it lacks in [`suite!`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Capability {
    /// [`Datastore::delete_tenant`] removes a tenant's data.
    DeleteTenant,
}

/// The factory a backend hands to the suite.
pub type Factory<'a> = &'a dyn Fn(DatastoreOptions) -> Instance;

/// Runs the case `name` against `factory`, unless it needs a capability in `lacks`.
///
/// Called by the tests [`suite!`] emits.
pub fn run<F>(name: &str, case: fn(Factory<'_>), lacks: &[Capability], factory: F)
where
    F: Fn(DatastoreOptions) -> Instance,
{
    let missing: Vec<Capability> = cases::requirements(name)
        .iter()
        .copied()
        .filter(|capability| lacks.contains(capability))
        .collect();
    if !missing.is_empty() {
        eprintln!("conformance case `{name}` excluded: the backend lacks {missing:?}");
        return;
    }
    case(&factory);
}

/// Emits one `#[test]` per conformance case, each building its datastores with the given
/// factory (`Fn(DatastoreOptions) -> Instance`).
///
/// `suite!(factory)` runs every case; `suite!(factory, lacks: [Capability, ...])` excludes
/// the cases that need a listed [`Capability`].
#[macro_export]
macro_rules! suite {
    ($factory:expr $(, lacks: [$($lack:ident),* $(,)?])? $(,)?) => {
        $crate::__emit_cases! {
            ($factory) [$($($crate::Capability::$lack),*)?]
            read_your_write,
            revisions_strictly_increase,
            snapshot_isolation,
            create_semantics,
            touch_semantics,
            delete_semantics,
            batch_is_all_or_nothing,
            transaction_reads_own_writes,
            preconditions,
            delete_by_filter_with_limit,
            filter_fields,
            resource_reads,
            subject_reads,
            pagination_order_and_cursors,
            pagination_across_concurrent_writes,
            expired_relationships_invisible,
            change_feed_order_and_grouping,
            change_feed_resume_and_limits,
            change_feed_notifies,
            schema_versioning,
            tenant_isolation,
            delete_tenant,
            gc_window_and_expired_revision,
            gc_removes_expired_relationships,
            gc_preserves_readable_state,
            optimized_revision_is_quantized,
            concurrent_writers_lose_no_update,
            concurrent_preconditions_are_race_free,
            concurrent_readers_see_atomic_commits,
            records_commit_with_relationships,
            records_roll_back_with_the_transaction,
            transaction_reads_own_records,
            records_isolated_by_tenant_and_namespace,
            record_scan_order_and_limits,
            records_only_transaction_takes_a_revision,
            records_never_read_as_relationships,
            delete_tenant_removes_records,
        }
    };
}

/// Implementation detail of [`suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __emit_cases {
    (($factory:expr) $lacks:tt $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::run(
                    stringify!($case),
                    $crate::cases::$case,
                    &$lacks,
                    $factory,
                );
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    /// Every case in `cases` is listed in `suite!`, and the reverse holds by compilation.
    #[test]
    fn suite_lists_every_case() {
        let lib = include_str!("lib.rs");
        let macro_body = lib
            .split("macro_rules! suite")
            .nth(1)
            .and_then(|rest| rest.split("macro_rules! __emit_cases").next())
            .unwrap();
        let sources = [
            include_str!("cases/reads.rs"),
            include_str!("cases/writes.rs"),
            include_str!("cases/feed.rs"),
            include_str!("cases/gc.rs"),
            include_str!("cases/concurrency.rs"),
            include_str!("cases/records.rs"),
        ];
        let mut n_cases = 0;
        for source in sources {
            for line in source.lines() {
                if let Some(rest) = line.strip_prefix("pub fn ") {
                    let name = rest.split('(').next().unwrap();
                    assert!(
                        macro_body.contains(&format!("{name},")),
                        "case `{name}` missing from suite!"
                    );
                    n_cases += 1;
                }
            }
        }
        assert!(n_cases >= 37, "found only {n_cases} cases");
    }
}
