//! Cases about garbage collection: the window, the old-revision error, removal of expired
//! relationships, and that collection never changes what readable revisions show.

use std::time::Duration;

use ostiary_store::{DatastoreExt, StoreError};
use ostiary_types::Revision;

use crate::Factory;
use crate::support::{Ctx, assert_err, create, delete, touch};

const HOUR: Duration = Duration::from_secs(60 * 60);

/// Revisions older than the window fail with `RevisionExpired` (snapshots, the feed and
/// `check_revision`), head stays readable however old, and the horizon never moves back.
pub fn gc_window_and_expired_revision(factory: Factory<'_>) {
    let ctx = Ctx::with(factory, |options| options.gc_window = HOUR);
    let r1 = ctx.touch_all(&["doc:a#viewer@user:u1"]);
    ctx.advance(Duration::from_secs(10 * 60));
    let r2 = ctx.touch_all(&["doc:b#viewer@user:u1"]);

    // Within the window, everything is readable.
    ctx.advance(Duration::from_secs(30 * 60));
    ctx.store().check_revision(Revision::ZERO).unwrap();
    ctx.store().check_revision(r1).unwrap();

    // One hour after r2: r2 is the horizon (and head); r1 and zero have expired.
    ctx.advance(2 * HOUR);
    ctx.store().check_revision(r2).unwrap();
    for old in [Revision::ZERO, r1] {
        assert_err!(
            ctx.store().check_revision(old),
            StoreError::RevisionExpired(revision) if revision == old
        );
        assert_err!(
            ctx.store().snapshot(&ctx.tenant, old),
            StoreError::RevisionExpired(_)
        );
        assert_err!(
            ctx.store().changes_since(&ctx.tenant, old, 10),
            StoreError::RevisionExpired(_)
        );
    }
    let err = ctx.store().check_revision(r1).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("revision `{r1}` is older than the garbage-collection window")
    );
    assert_eq!(
        ctx.all_at(r2),
        ["doc:a#viewer@user:u1", "doc:b#viewer@user:u1"]
    );
    assert!(
        ctx.store()
            .changes_since(&ctx.tenant, r2, 10)
            .unwrap()
            .is_empty()
    );

    let stats = ctx.store().collect_garbage().unwrap();
    assert_eq!(stats.horizon, r2);
    assert_eq!(stats.n_change_revisions, 2);

    // The horizon never moves backwards, even if the clock does.
    ctx.clock.set("2025-01-01T00:00:00Z".parse().unwrap());
    assert_err!(
        ctx.store().check_revision(r1),
        StoreError::RevisionExpired(_)
    );
    ctx.store().check_revision(r2).unwrap();
}

/// Expired relationships are removed by GC once they are older than the window, and can be
/// created again (before and after collection).
pub fn gc_removes_expired_relationships(factory: Factory<'_>) {
    let ctx = Ctx::with(factory, |options| options.gc_window = HOUR);
    ctx.touch_all(&[
        "doc:a#viewer@user:u1[expiration:2025-01-01T00:01:00Z]",
        "doc:b#viewer@user:u1[expiration:2025-01-01T00:02:00Z]",
        "doc:c#viewer@user:u1",
    ]);
    ctx.advance(Duration::from_secs(90));
    let recreated = ctx.write(&[create("doc:a#viewer@user:u1")]);
    assert_eq!(
        ctx.all_at(recreated),
        [
            "doc:a#viewer@user:u1",
            "doc:b#viewer@user:u1[expiration:2025-01-01T00:02:00Z]",
            "doc:c#viewer@user:u1",
        ]
    );

    // Not yet an hour past either expiration: nothing expired is collected.
    let stats = ctx.store().collect_garbage().unwrap();
    assert_eq!(stats.n_relationship_versions, 0);

    ctx.advance(2 * HOUR);
    let stats = ctx.store().collect_garbage().unwrap();
    assert_eq!(stats.horizon, recreated);
    // The expired doc:a version (also replaced at `recreated`) and the expired doc:b.
    assert_eq!(stats.n_relationship_versions, 2);
    let head = ctx.head();
    assert_eq!(
        ctx.all_at(head),
        ["doc:a#viewer@user:u1", "doc:c#viewer@user:u1"]
    );
    let again = ctx.write(&[create("doc:b#viewer@user:u1")]);
    assert_eq!(
        ctx.all_at(again),
        [
            "doc:a#viewer@user:u1",
            "doc:b#viewer@user:u1",
            "doc:c#viewer@user:u1",
        ]
    );
    let stats = ctx.store().collect_garbage().unwrap();
    assert_eq!(stats.n_relationship_versions, 0);
}

/// Collection removes superseded versions, old feed entries and schemas, yet every
/// readable revision reads exactly as before, and writes continue normally.
pub fn gc_preserves_readable_state(factory: Factory<'_>) {
    let ctx = Ctx::with(factory, |options| options.gc_window = HOUR);
    ctx.store()
        .write_schema(&ctx.tenant, "definition v1 {}")
        .unwrap();
    ctx.touch_all(&["doc:a#viewer@user:u1", "doc:b#viewer@user:u1"]);
    ctx.store()
        .write_schema(&ctx.tenant, "definition v2 {}")
        .unwrap();
    ctx.write(&[
        touch("doc:a#viewer@user:u1[cav]"),
        delete("doc:b#viewer@user:u1"),
    ]);
    ctx.advance(2 * HOUR);
    let horizon = ctx.head();
    ctx.advance(Duration::from_secs(60));
    let after_1 = ctx.write(&[
        delete("doc:a#viewer@user:u1"),
        touch("doc:c#viewer@user:u1"),
    ]);
    ctx.advance(Duration::from_secs(60));
    let after_2 = ctx
        .store()
        .write_schema(&ctx.tenant, "definition v3 {}")
        .unwrap();

    let observe = |revision| {
        let snapshot = ctx.snapshot(revision);
        (
            crate::support::read_all(snapshot.as_ref()),
            snapshot.read_schema().unwrap(),
        )
    };
    let before: Vec<_> = [horizon, after_1, after_2]
        .into_iter()
        .map(observe)
        .collect();
    let feed_before = ctx
        .store()
        .changes_since(&ctx.tenant, horizon, 100)
        .unwrap();

    let stats = ctx.store().collect_garbage().unwrap();
    assert_eq!(stats.horizon, horizon);
    // doc:a's first version (replaced) and doc:b's (deleted), both before the horizon.
    assert_eq!(stats.n_relationship_versions, 2);
    assert_eq!(stats.n_change_revisions, 4);
    assert_eq!(stats.n_schema_versions, 1);

    let after: Vec<_> = [horizon, after_1, after_2]
        .into_iter()
        .map(observe)
        .collect();
    assert_eq!(before, after);
    assert_eq!(
        before[0].0,
        ["doc:a#viewer@user:u1[cav]"],
        "the horizon reads its own state"
    );
    assert_eq!(
        before[0].1.as_ref().map(|schema| &*schema.text),
        Some("definition v2 {}")
    );
    assert_eq!(
        ctx.store()
            .changes_since(&ctx.tenant, horizon, 100)
            .unwrap(),
        feed_before
    );
    assert_eq!(feed_before.len(), 2);

    let later = ctx.touch_all(&["doc:d#viewer@user:u1"]);
    assert_eq!(
        ctx.all_at(later),
        ["doc:c#viewer@user:u1", "doc:d#viewer@user:u1"]
    );
    let stats = ctx.store().collect_garbage().unwrap();
    assert_eq!(stats.horizon, horizon);
    assert_eq!(stats.n_relationship_versions, 0);
}

/// `optimized_revision` is the newest revision committed by the last quantum boundary, and
/// head when the quantization is zero.
pub fn optimized_revision_is_quantized(factory: Factory<'_>) {
    let ctx = Ctx::with(factory, |options| {
        options.quantization = Duration::from_secs(10);
    });
    let store = ctx.store();
    assert_eq!(store.optimized_revision().unwrap(), Revision::ZERO);
    ctx.advance(Duration::from_secs(1));
    let r1 = ctx.touch_all(&["doc:a#viewer@user:u1"]);
    assert_eq!(store.optimized_revision().unwrap(), Revision::ZERO);
    ctx.advance(Duration::from_secs(11));
    let r2 = ctx.touch_all(&["doc:b#viewer@user:u1"]);
    // Now 00:00:12: the boundary is 00:00:10, after r1 (00:00:01) and before r2.
    assert_eq!(store.optimized_revision().unwrap(), r1);
    ctx.advance(Duration::from_secs(8));
    assert_eq!(store.optimized_revision().unwrap(), r2);
    store
        .check_revision(store.optimized_revision().unwrap())
        .unwrap();

    let head_ctx = Ctx::with(factory, |options| options.quantization = Duration::ZERO);
    let head = head_ctx.touch_all(&["doc:a#viewer@user:u1"]);
    assert_eq!(head_ctx.store().optimized_revision().unwrap(), head);
}
