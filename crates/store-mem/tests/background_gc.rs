//! The background collector ([`GcWorker`]) runs passes on its own and stops when dropped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ostiary_store::{
    Datastore, DatastoreExt, DatastoreOptions, GcOutcome, GcWorker, ManualClock,
    RelationshipUpdate, StoreError,
};
use ostiary_store_mem::MemDatastore;
use ostiary_types::{Revision, TenantId, Timestamp};

#[test]
fn background_worker_collects_old_revisions() {
    let clock = Arc::new(ManualClock::new(
        Timestamp::from_unix(1_700_000_000, 0).expect("valid time"),
    ));
    let options = DatastoreOptions {
        gc_window: Duration::from_secs(60),
        clock: clock.clone(),
        ..DatastoreOptions::default()
    };
    let store: Arc<dyn Datastore> = Arc::new(MemDatastore::new(options));
    let tenant = TenantId::default_tenant();
    let rel = "document:readme#viewer@user:alice"
        .parse()
        .expect("valid relationship");
    let first = store
        .write_relationships(&tenant, &[], &[RelationshipUpdate::Touch(rel)])
        .expect("write");
    let key = "document:readme#viewer@user:alice"
        .parse::<ostiary_types::Relationship>()
        .expect("valid relationship")
        .key()
        .clone();
    store
        .write_relationships(&tenant, &[], &[RelationshipUpdate::Delete(key)])
        .expect("delete");
    // Two minutes later the first revision is outside the 60 s window.
    clock.advance(Duration::from_secs(120));
    store
        .write_relationships(&tenant, &[], &[])
        .expect("a later revision");

    let worker = GcWorker::spawn(Arc::clone(&store), Duration::from_millis(10)).expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(10);
    while worker.n_passes() == 0 {
        assert!(Instant::now() < deadline, "no GC pass ran within 10 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Stop the worker before looking: with a 10 ms interval, another pass (which finds
    // nothing left) may already have replaced the first one's outcome.
    let outcome = worker.last_outcome();
    drop(worker);
    let Some(GcOutcome::Collected(stats)) = outcome else {
        panic!("the pass failed: {outcome:?}");
    };
    assert!(
        stats.horizon > first,
        "horizon {:?} should pass {first:?}",
        stats.horizon
    );
    // The worker's passes removed the deleted version: a pass now finds nothing.
    let again = store.collect_garbage().expect("a manual pass");
    assert_eq!(again.n_relationship_versions, 0, "{again:?}");
    assert!(matches!(
        store.check_revision(first),
        Err(StoreError::RevisionExpired(_))
    ));
    assert!(store.head_revision().expect("head") > Revision::ZERO);
}
