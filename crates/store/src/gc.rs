//! Background garbage collection: a thread that runs [`Datastore::collect_garbage`] on a
//! timer, so that old versions and expired relationships go away without any request
//! waiting for it.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::datastore::{Datastore, GcStats};
use crate::error::StoreError;

/// What the last background pass did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GcOutcome {
    /// The pass finished.
    Collected(GcStats),
    /// The pass failed; the next one is tried at the next tick.
    Failed(String),
}

#[derive(Debug, Default)]
struct Shared {
    stopping: Mutex<bool>,
    wake: Condvar,
    last: Mutex<Option<GcOutcome>>,
    n_passes: Mutex<u64>,
}

/// A running background collector. Dropping it stops the thread and waits for the pass in
/// progress, if any, to finish.
#[derive(Debug)]
pub struct GcWorker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl GcWorker {
    /// Starts a thread that runs one pass every `interval` (the first one after `interval`).
    ///
    /// # Errors
    ///
    /// Returns [`StoreError::Unavailable`] when the thread cannot be started.
    pub fn spawn(store: Arc<dyn Datastore>, interval: Duration) -> Result<Self, StoreError> {
        let shared = Arc::new(Shared::default());
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("ostiary-gc".to_owned())
            .spawn(move || run(store.as_ref(), &thread_shared, interval))
            .map_err(|err| StoreError::Unavailable(Box::new(err)))?;
        Ok(GcWorker {
            shared,
            thread: Some(thread),
        })
    }

    /// What the last pass did, if one has run.
    pub fn last_outcome(&self) -> Option<GcOutcome> {
        self.shared.last.lock().clone()
    }

    /// How many passes have run.
    pub fn n_passes(&self) -> u64 {
        *self.shared.n_passes.lock()
    }
}

fn run(store: &dyn Datastore, shared: &Shared, interval: Duration) {
    loop {
        {
            let mut stopping = shared.stopping.lock();
            if !*stopping {
                let _timed_out = shared.wake.wait_for(&mut stopping, interval);
            }
            if *stopping {
                return;
            }
        }
        let outcome = match store.collect_garbage() {
            Ok(stats) => GcOutcome::Collected(stats),
            Err(err) => GcOutcome::Failed(err.to_string()),
        };
        *shared.last.lock() = Some(outcome);
        *shared.n_passes.lock() += 1;
    }
}

impl Drop for GcWorker {
    fn drop(&mut self) {
        *self.shared.stopping.lock() = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            // A panicking pass has already been reported by the panic hook.
            let _joined = thread.join();
        }
    }
}
