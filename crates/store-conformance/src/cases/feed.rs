//! Cases about the change feed: order, grouping, net changes, resuming and notification.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use ostiary_store::{Change, DatastoreExt, RevisionChanges, StoreError};
use ostiary_types::Revision;

use crate::Factory;
use crate::support::{Ctx, START, assert_err, create, delete, rel, touch, ts};

/// Renders a feed as `revision: change, change` lines with revisions relative to `base`.
fn render(feed: &[RevisionChanges], base: Revision) -> Vec<String> {
    feed.iter()
        .map(|group| {
            let changes: Vec<String> = group
                .changes
                .iter()
                .map(|change| match change {
                    Change::Touch(rel) => format!("touch {rel}"),
                    Change::Delete(rel) => format!("delete {rel}"),
                    Change::Schema(text) => format!("schema {text}"),
                })
                .collect();
            format!(
                "+{}: {}",
                group.revision.as_u64() - base.as_u64(),
                changes.join(", ")
            )
        })
        .collect()
}

/// The feed lists each revision's net changes together, in revision order: a schema first,
/// then one change per key in resource order, deletes carrying the old value, and nothing
/// for no-op deletes or for keys created and deleted in one transaction.
pub fn change_feed_order_and_grouping(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    let base = ctx.head();
    ctx.touch_all(&["doc:b#viewer@user:u1[cav]", "doc:a#viewer@user:u1"]);
    ctx.advance(Duration::from_secs(1));
    ctx.write(&[
        delete("doc:b#viewer@user:u1"),
        touch("doc:a#viewer@user:u1"),
        delete("doc:none#viewer@user:u1"),
    ]);
    ctx.write(&[delete("doc:none#viewer@user:u1")]);
    ctx.write(&[
        create("doc:c#viewer@user:u1"),
        delete("doc:c#viewer@user:u1"),
        touch("doc:d#viewer@user:u1[first]"),
        touch("doc:d#viewer@user:u1[second]"),
    ]);
    ctx.store()
        .read_write(&ctx.tenant, &mut |txn| {
            txn.apply(&[touch("doc:e#viewer@user:u1")])?;
            txn.write_schema("definition doc {}")
        })
        .unwrap();
    let head = ctx.head();

    let feed = ctx.store().changes_since(&ctx.tenant, base, 100).unwrap();
    assert_eq!(
        render(&feed, base),
        [
            "+1: touch doc:a#viewer@user:u1, touch doc:b#viewer@user:u1[cav]",
            "+2: touch doc:a#viewer@user:u1, delete doc:b#viewer@user:u1[cav]",
            "+4: touch doc:d#viewer@user:u1[second]",
            "+5: schema definition doc {}, touch doc:e#viewer@user:u1",
        ]
    );
    assert_eq!(feed.last().unwrap().revision, head);
    assert_eq!(feed[0].committed_at, ts(START));
    assert!(
        feed.windows(2)
            .all(|pair| pair[0].committed_at <= pair[1].committed_at)
    );
    assert_eq!(feed[1].committed_at, ts("2025-01-01T00:00:01Z"));
    assert_eq!(
        feed[1].changes[1],
        Change::Delete(rel("doc:b#viewer@user:u1[cav]"))
    );
}

/// The feed resumes after any readable revision, honours its revision limit, is empty at
/// head, and refuses revisions after head.
pub fn change_feed_resume_and_limits(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    let revisions: Vec<Revision> = (0..6)
        .map(|idx| ctx.touch_all(&[&format!("doc:d{idx}#viewer@user:u")]))
        .collect();
    let store = ctx.store();
    let all = store
        .changes_since(&ctx.tenant, Revision::ZERO, 100)
        .unwrap();
    assert_eq!(
        all.iter().map(|group| group.revision).collect::<Vec<_>>(),
        revisions
    );
    let page = store.changes_since(&ctx.tenant, revisions[1], 2).unwrap();
    assert_eq!(page.as_slice(), &all[2..4]);
    let resumed = store
        .changes_since(&ctx.tenant, page.last().unwrap().revision, 100)
        .unwrap();
    assert_eq!(resumed.as_slice(), &all[4..]);
    assert!(
        store
            .changes_since(&ctx.tenant, revisions[5], 100)
            .unwrap()
            .is_empty()
    );
    let future = revisions[5].checked_next().unwrap();
    assert_err!(
        store.changes_since(&ctx.tenant, future, 100),
        StoreError::RevisionInFuture(_)
    );
}

/// Subscribers learn of every commit without polling: the receiver is marked changed and
/// holds the new head, also for commits from other threads.
pub fn change_feed_notifies(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    let mut receiver = ctx.store().subscribe();
    assert!(!receiver.has_changed().unwrap());
    let revision = ctx.touch_all(&["doc:a#viewer@user:u"]);
    assert!(receiver.has_changed().unwrap());
    assert_eq!(*receiver.borrow_and_update(), revision);
    assert!(!receiver.has_changed().unwrap());

    let store = ctx.shared_store();
    let tenant = ctx.tenant.clone();
    let writer = thread::spawn(move || {
        let store = Arc::clone(&store);
        store
            .write_relationships(&tenant, &[], &[touch("doc:b#viewer@user:u")])
            .unwrap()
    });
    let written = writer.join().unwrap();
    assert!(receiver.has_changed().unwrap());
    assert_eq!(*receiver.borrow_and_update(), written);
    let feed = ctx
        .store()
        .changes_since(&ctx.tenant, revision, 10)
        .unwrap();
    assert_eq!(feed.len(), 1);
    assert_eq!(feed[0].revision, written);
}
