//! Cases with threads: concurrent writers lose no update and get strictly increasing
//! revisions, preconditions are race-free, and readers see commits atomically.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use ostiary_store::{DatastoreExt, Page, Precondition, RelationshipUpdate, StoreError};
use ostiary_types::{ObjectId, Relationship, RelationshipFilter, Revision};

use crate::Factory;
use crate::support::{Ctx, read_all, rel, type_filter};

const N_THREADS: usize = 4;

/// Read-modify-write increments from several threads all land: the counter ends at the
/// number of increments, every revision is distinct, and each thread's revisions increase.
pub fn concurrent_writers_lose_no_update(factory: Factory<'_>) {
    const N_INCREMENTS: usize = 25;
    let ctx = Ctx::new(factory);
    ctx.touch_all(&["counter:c#value@number:0"]);
    let mut handles = Vec::new();
    for _ in 0..N_THREADS {
        let store = ctx.shared_store();
        let tenant = ctx.tenant.clone();
        handles.push(thread::spawn(move || {
            let mut revisions = Vec::new();
            for _ in 0..N_INCREMENTS {
                let committed = store
                    .read_write_with(&tenant, |txn| {
                        let mut current: Vec<Relationship> = Vec::new();
                        txn.read_filtered(&type_filter("counter"), Page::ALL, &mut current)?;
                        let [counter] = current.as_slice() else {
                            panic!("expected one counter, found {current:?}");
                        };
                        let value: usize = counter.subject().object_id().as_str().parse().unwrap();
                        txn.apply(&[
                            RelationshipUpdate::Delete(counter.key().clone()),
                            RelationshipUpdate::Create(rel(&format!(
                                "counter:c#value@number:{}",
                                value + 1
                            ))),
                        ])?;
                        Ok::<_, StoreError>(())
                    })
                    .unwrap();
                revisions.push(committed.revision);
            }
            revisions
        }));
    }
    let mut all_revisions = BTreeSet::new();
    for handle in handles {
        let revisions = handle.join().unwrap();
        assert!(revisions.windows(2).all(|pair| pair[0] < pair[1]));
        all_revisions.extend(revisions);
    }
    assert_eq!(all_revisions.len(), N_THREADS * N_INCREMENTS);
    let head = ctx.head();
    assert_eq!(all_revisions.last(), Some(&head));
    assert_eq!(
        ctx.all_at(head),
        [format!(
            "counter:c#value@number:{}",
            N_THREADS * N_INCREMENTS
        )]
    );
}

/// Many threads race to take a lock guarded by a must-not-match precondition: in every
/// round exactly one wins and the others fail the precondition.
pub fn concurrent_preconditions_are_race_free(factory: Factory<'_>) {
    const N_ROUNDS: usize = 10;
    let ctx = Ctx::new(factory);
    for round in 0..N_ROUNDS {
        let lock_filter = RelationshipFilter {
            optional_resource_id: Some(ObjectId::new(&format!("l{round}")).unwrap()),
            ..type_filter("lock")
        };
        let mut handles = Vec::new();
        for thread_idx in 0..N_THREADS {
            let store = ctx.shared_store();
            let tenant = ctx.tenant.clone();
            let lock_filter = lock_filter.clone();
            handles.push(thread::spawn(move || {
                store.write_relationships(
                    &tenant,
                    &[Precondition::MustNotMatch(lock_filter)],
                    &[RelationshipUpdate::Create(rel(&format!(
                        "lock:l{round}#holder@user:t{thread_idx}"
                    )))],
                )
            }));
        }
        let mut n_won = 0;
        for handle in handles {
            match handle.join().unwrap() {
                Ok(_) => n_won += 1,
                Err(StoreError::PreconditionFailed(_)) => {}
                Err(other) => panic!("unexpected error {other:?}"),
            }
        }
        assert_eq!(n_won, 1, "round {round}");
    }
    let head = ctx.head();
    assert_eq!(ctx.all_at(head).len(), N_ROUNDS);
}

/// A writer moves a token between documents in single transactions while readers open
/// snapshots at head: every snapshot sees exactly one token, and revisions never go back.
pub fn concurrent_readers_see_atomic_commits(factory: Factory<'_>) {
    const N_MOVES: usize = 60;
    let ctx = Ctx::new(factory);
    ctx.touch_all(&["doc:d0#owner@user:token"]);
    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..2 {
        let store = ctx.shared_store();
        let tenant = ctx.tenant.clone();
        let done = Arc::clone(&done);
        readers.push(thread::spawn(move || {
            let mut last = Revision::ZERO;
            let mut n_reads = 0;
            while !done.load(Ordering::Acquire) || n_reads == 0 {
                let snapshot = store.head_snapshot(&tenant).unwrap();
                assert!(snapshot.revision() >= last);
                last = snapshot.revision();
                let owners = read_all(snapshot.as_ref());
                assert_eq!(owners.len(), 1, "at {last}: {owners:?}");
                n_reads += 1;
            }
            n_reads
        }));
    }
    let mut position = 0;
    for move_idx in 1..=N_MOVES {
        let next = move_idx % 7;
        ctx.write(&[
            RelationshipUpdate::Delete(
                rel(&format!("doc:d{position}#owner@user:token"))
                    .key()
                    .clone(),
            ),
            RelationshipUpdate::Create(rel(&format!("doc:d{next}#owner@user:token"))),
        ]);
        position = next;
    }
    done.store(true, Ordering::Release);
    for reader in readers {
        assert!(reader.join().unwrap() > 0);
    }
    let head = ctx.head();
    assert_eq!(
        ctx.all_at(head),
        [format!("doc:d{position}#owner@user:token")]
    );
}
