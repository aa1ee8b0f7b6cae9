//! Cases about writes: revisions, snapshot isolation, CREATE/TOUCH/DELETE, atomicity,
//! preconditions, delete-by-filter, schema versions and tenants.

use std::time::Duration;

use ostiary_store::{
    Clock, DatastoreExt, Page, Precondition, ResourceQuery, StoreError, SubjectQuery,
};
use ostiary_types::{ObjectId, RelationshipFilter, Revision, SubjectFilter, TenantId};

use crate::Factory;
use crate::support::{
    Ctx, assert_err, create, delete, key, object_type, read_all, read_filter, rel, texts, touch,
    type_filter, unwrap_err,
};

/// A write is visible at the revision it returns, through every read path, with its caveat
/// and expiration intact.
pub fn read_your_write(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    let text = r#"doc:readme#viewer@user:alice[only_on:{"day":"mon","n":[1,2]}][expiration:2025-06-01T00:00:00.5Z]"#;
    let revision = ctx.write(&[create(text)]);
    assert!(revision > Revision::ZERO);
    assert_eq!(ctx.head(), revision);
    ctx.store().check_revision(revision).unwrap();

    let snapshot = ctx.snapshot(revision);
    assert_eq!(snapshot.revision(), revision);
    assert_eq!(snapshot.tenant(), &ctx.tenant);
    assert_eq!(snapshot.now(), ctx.clock.now());
    assert_eq!(read_all(snapshot.as_ref()), [text]);

    let doc = object_type("doc");
    let mut out = Vec::new();
    let n_read = snapshot
        .read_resources(&ResourceQuery::new(&doc), Page::ALL, &mut out)
        .unwrap();
    assert_eq!((n_read, texts(&out)), (1, vec![text.to_owned()]));
    assert_eq!(out[0], rel(text));

    let user = object_type("user");
    out.clear();
    snapshot
        .read_subjects(&SubjectQuery::new(&user), Page::ALL, &mut out)
        .unwrap();
    assert_eq!(texts(&out), [text]);
}

/// Revisions start after zero and strictly increase, even for transactions that change
/// nothing; head is readable and anything after it is in the future.
pub fn revisions_strictly_increase(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    assert_eq!(ctx.head(), Revision::ZERO);
    ctx.store().check_revision(Revision::ZERO).unwrap();
    assert!(ctx.all_at(Revision::ZERO).is_empty());

    let first = ctx.touch_all(&["doc:a#viewer@user:u1"]);
    let second = ctx.write(&[delete("doc:zzz#viewer@user:nobody")]);
    let third = ctx
        .store()
        .read_write(&ctx.tenant, &mut |_| Ok(()))
        .unwrap();
    let fourth = ctx.touch_all(&["doc:a#viewer@user:u1"]);
    assert!(Revision::ZERO < first && first < second && second < third && third < fourth);
    assert_eq!(ctx.head(), fourth);

    let future = fourth.checked_next().unwrap();
    assert_err!(
        ctx.store().check_revision(future),
        StoreError::RevisionInFuture(revision) if revision == future
    );
    assert_err!(
        ctx.store().snapshot(&ctx.tenant, future),
        StoreError::RevisionInFuture(_)
    );
    let head_snapshot = ctx.store().head_snapshot(&ctx.tenant).unwrap();
    assert_eq!(head_snapshot.revision(), fourth);
}

/// A snapshot at an old revision never sees later writes, deletes or replacements, even
/// when it was opened before them.
pub fn snapshot_isolation(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    let r1 = ctx.touch_all(&["doc:a#viewer@user:u1", "doc:b#viewer@user:u1"]);
    let open_at_r1 = ctx.snapshot(r1);

    let r2 = ctx.write(&[
        delete("doc:a#viewer@user:u1"),
        touch("doc:b#viewer@user:u1[cav]"),
        create("doc:c#viewer@user:u1"),
    ]);
    let r3 = ctx.write(&[delete("doc:c#viewer@user:u1")]);

    let at_r1 = ["doc:a#viewer@user:u1", "doc:b#viewer@user:u1"];
    assert_eq!(read_all(open_at_r1.as_ref()), at_r1);
    assert_eq!(ctx.all_at(r1), at_r1);
    assert_eq!(
        ctx.all_at(r2),
        ["doc:b#viewer@user:u1[cav]", "doc:c#viewer@user:u1"]
    );
    assert_eq!(ctx.all_at(r3), ["doc:b#viewer@user:u1[cav]"]);
    assert!(ctx.all_at(Revision::ZERO).is_empty());

    let user = object_type("user");
    let mut out = Vec::new();
    open_at_r1
        .read_subjects(&SubjectQuery::new(&user), Page::ALL, &mut out)
        .unwrap();
    assert_eq!(texts(&out), at_r1);
}

/// CREATE fails on a live relationship with an error naming it, and succeeds on one that
/// never existed, was deleted, or has expired.
pub fn create_semantics(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    let r1 = ctx.write(&[create("doc:a#viewer@user:u1")]);

    let err = unwrap_err(ctx.store().write_relationships(
        &ctx.tenant,
        &[],
        &[create("doc:a#viewer@user:u1[cav]")],
    ));
    assert_err!(Err::<(), _>(err), StoreError::AlreadyExists(existing) if existing == key("doc:a#viewer@user:u1"));
    let err = unwrap_err(ctx.store().write_relationships(
        &ctx.tenant,
        &[],
        &[create("doc:a#viewer@user:u1")],
    ));
    assert_eq!(
        err.to_string(),
        "relationship `doc:a#viewer@user:u1` already exists"
    );
    assert_eq!(ctx.head(), r1, "a failed write commits nothing");

    // The same key with another subject relation is another relationship.
    ctx.write(&[create("doc:a#viewer@user:u1#member")]);

    ctx.write(&[delete("doc:a#viewer@user:u1")]);
    ctx.write(&[create("doc:a#viewer@user:u1")]);

    ctx.write(&[create(
        "doc:e#viewer@user:u1[expiration:2025-01-01T00:01:00Z]",
    )]);
    ctx.advance(Duration::from_secs(60));
    ctx.write(&[create("doc:e#viewer@user:u1[cav]")]);
    let head = ctx.head();
    assert_eq!(
        ctx.all_at(head),
        [
            "doc:a#viewer@user:u1",
            "doc:a#viewer@user:u1#member",
            "doc:e#viewer@user:u1[cav]",
        ]
    );
}

/// TOUCH inserts or replaces the whole value (caveat, context, expiration); the last of
/// several updates to a key in one batch wins.
pub fn touch_semantics(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    let r1 = ctx.touch_all(&["doc:a#viewer@user:u1"]);
    let r2 =
        ctx.touch_all(&[r#"doc:a#viewer@user:u1[cav:{"k":1}][expiration:2026-01-01T00:00:00Z]"#]);
    let r3 = ctx.touch_all(&[r#"doc:a#viewer@user:u1[cav:{"k":2}]"#]);
    let r4 = ctx.touch_all(&["doc:a#viewer@user:u1"]);
    let r5 = ctx.write(&[
        touch("doc:b#viewer@user:u1[first]"),
        touch("doc:b#viewer@user:u1[second]"),
    ]);
    assert_eq!(ctx.all_at(r1), ["doc:a#viewer@user:u1"]);
    assert_eq!(
        ctx.all_at(r2),
        [r#"doc:a#viewer@user:u1[cav:{"k":1}][expiration:2026-01-01T00:00:00Z]"#]
    );
    assert_eq!(ctx.all_at(r3), [r#"doc:a#viewer@user:u1[cav:{"k":2}]"#]);
    assert_eq!(ctx.all_at(r4), ["doc:a#viewer@user:u1"]);
    assert_eq!(
        ctx.all_at(r5),
        ["doc:a#viewer@user:u1", "doc:b#viewer@user:u1[second]"]
    );
}

/// DELETE removes a relationship whatever its caveat, and deleting an absent one is not an
/// error (it still commits a revision).
pub fn delete_semantics(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    let r1 = ctx.touch_all(&[
        "doc:a#viewer@user:u1[cav]",
        "doc:a#viewer@user:u2",
        "doc:a#viewer@group:g#member",
    ]);
    let r2 = ctx.write(&[delete("doc:a#viewer@user:u1")]);
    assert!(r2 > r1);
    assert_eq!(
        ctx.all_at(r2),
        ["doc:a#viewer@group:g#member", "doc:a#viewer@user:u2"]
    );
    let r3 = ctx.write(&[
        delete("doc:a#viewer@user:u1"),
        delete("doc:a#viewer@group:g"),
        delete("doc:never#viewer@user:u9"),
    ]);
    assert!(r3 > r2);
    assert_eq!(ctx.all_at(r3), ctx.all_at(r2));
}

/// A batch that fails anywhere writes nothing: not its earlier updates, not its schema, and
/// not when the body returns its own error after successful operations.
pub fn batch_is_all_or_nothing(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    let r1 = ctx.touch_all(&["doc:a#viewer@user:u1"]);
    let err = unwrap_err(ctx.store().write_relationships(
        &ctx.tenant,
        &[],
        &[
            touch("doc:b#viewer@user:u1"),
            delete("doc:a#viewer@user:u1"),
            create("doc:c#viewer@user:u1"),
            create("doc:c#viewer@user:u1"),
        ],
    ));
    assert_err!(Err::<(), _>(err), StoreError::AlreadyExists(_));
    assert_eq!(ctx.head(), r1);
    assert_eq!(ctx.all_at(r1), ["doc:a#viewer@user:u1"]);

    #[derive(Debug, PartialEq)]
    enum BodyError {
        Store(String),
        Refused,
    }
    impl From<StoreError> for BodyError {
        fn from(err: StoreError) -> Self {
            Self::Store(err.to_string())
        }
    }
    let res = ctx.store().read_write_with(&ctx.tenant, |txn| {
        txn.apply(&[touch("doc:d#viewer@user:u1")])?;
        txn.write_schema("definition doc {}")?;
        Err::<(), _>(BodyError::Refused)
    });
    assert_eq!(res.unwrap_err(), BodyError::Refused);
    assert_eq!(ctx.head(), r1);
    let snapshot = ctx.snapshot(r1);
    assert_eq!(read_all(snapshot.as_ref()), ["doc:a#viewer@user:u1"]);
    assert_eq!(snapshot.read_schema().unwrap(), None);

    // A body that swallows a failed operation and returns Ok must not commit half a batch.
    let res = ctx.store().read_write(&ctx.tenant, &mut |txn| {
        let failed = txn.apply(&[
            touch("doc:e#viewer@user:u1"),
            create("doc:a#viewer@user:u1"),
        ]);
        assert!(failed.is_err());
        Ok(())
    });
    assert!(res.is_err());
    assert_eq!(ctx.head(), r1);
    assert_eq!(ctx.all_at(r1), ["doc:a#viewer@user:u1"]);

    let committed = ctx
        .store()
        .read_write_with(&ctx.tenant, |txn| {
            txn.apply(&[touch("doc:f#viewer@user:u1")])?;
            Ok::<_, StoreError>(42)
        })
        .unwrap();
    assert_eq!(committed.value, 42);
    assert_eq!(
        ctx.all_at(committed.revision),
        ["doc:a#viewer@user:u1", "doc:f#viewer@user:u1"]
    );
}

/// Reads inside a transaction see its own earlier writes; delete-by-filter does too.
pub fn transaction_reads_own_writes(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    ctx.touch_all(&["doc:a#viewer@user:u1"]);
    let committed = ctx
        .store()
        .read_write_with(&ctx.tenant, |txn| {
            let mut seen = Vec::new();
            txn.apply(&[
                touch("doc:b#viewer@user:u2"),
                delete("doc:a#viewer@user:u1"),
            ])?;
            txn.read_filtered(&type_filter("doc"), Page::ALL, &mut seen)?;
            let after_apply = texts(&seen);
            txn.apply(&[touch("doc:c#viewer@user:u3")])?;
            let outcome = txn.delete_filtered(&type_filter("doc"), Some(1))?;
            seen.clear();
            txn.read_filtered(&type_filter("doc"), Page::ALL, &mut seen)?;
            Ok::<_, StoreError>((after_apply, outcome, texts(&seen), txn.now()))
        })
        .unwrap();
    let (after_apply, outcome, after_delete, now) = committed.value;
    assert_eq!(after_apply, ["doc:b#viewer@user:u2"]);
    assert_eq!((outcome.n_deleted, outcome.more_remain), (1, true));
    assert_eq!(after_delete, ["doc:c#viewer@user:u3"]);
    assert_eq!(now, ctx.clock.now());
    assert_eq!(ctx.all_at(committed.revision), ["doc:c#viewer@user:u3"]);
}

/// Must-match and must-not-match preconditions are checked against live data (expired
/// relationships do not match), and a failed one writes nothing.
pub fn preconditions(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    ctx.touch_all(&[
        "doc:a#viewer@user:u1",
        "doc:b#viewer@user:u2[expiration:2025-01-01T00:00:30Z]",
    ]);
    ctx.advance(Duration::from_secs(30));
    let filter_for = |id: &str| RelationshipFilter {
        optional_resource_id: Some(ObjectId::new(id).unwrap()),
        ..type_filter("doc")
    };
    let head = ctx.head();

    let ok = ctx
        .store()
        .write_relationships(
            &ctx.tenant,
            &[
                Precondition::MustMatch(filter_for("a")),
                Precondition::MustNotMatch(filter_for("b")),
                Precondition::MustNotMatch(filter_for("zzz")),
            ],
            &[touch("doc:c#viewer@user:u3")],
        )
        .unwrap();
    assert!(ok > head);

    let failures = [
        Precondition::MustMatch(filter_for("b")),
        Precondition::MustMatch(filter_for("zzz")),
        Precondition::MustNotMatch(filter_for("a")),
    ];
    for precondition in failures {
        let res = ctx.store().write_relationships(
            &ctx.tenant,
            &[
                Precondition::MustMatch(filter_for("a")),
                precondition.clone(),
            ],
            &[touch("doc:d#viewer@user:u4")],
        );
        match res {
            Err(StoreError::PreconditionFailed(text)) => {
                assert_eq!(text, precondition.to_string());
            }
            other => panic!("expected a failed precondition for {precondition}, got {other:?}"),
        }
    }
    assert_eq!(ctx.head(), ok);
    assert_eq!(
        ctx.all_at(ok),
        ["doc:a#viewer@user:u1", "doc:c#viewer@user:u3"]
    );

    // Delete-by-filter honours preconditions too.
    let res = ctx.store().delete_relationships(
        &ctx.tenant,
        &[Precondition::MustMatch(filter_for("zzz"))],
        &type_filter("doc"),
        None,
    );
    assert_err!(res, StoreError::PreconditionFailed(_));
    assert_eq!(ctx.head(), ok);
}

/// Delete-by-filter deletes matching live relationships in resource order, at most the
/// limit, and says whether more remain.
pub fn delete_by_filter_with_limit(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    ctx.touch_all(&[
        "doc:e#viewer@user:u1",
        "doc:a#viewer@user:u1",
        "doc:d#viewer@user:u1",
        "doc:b#viewer@user:u1",
        "doc:c#viewer@user:u1",
        "doc:a#editor@user:u1",
        "folder:a#viewer@user:u1",
    ]);
    let viewers = RelationshipFilter {
        optional_relation: Some("viewer".parse().unwrap()),
        ..type_filter("doc")
    };
    let store = ctx.store();
    let first = store
        .delete_relationships(&ctx.tenant, &[], &viewers, Some(2))
        .unwrap();
    assert_eq!((first.value.n_deleted, first.value.more_remain), (2, true));
    assert_eq!(
        read_filter(ctx.snapshot(first.revision).as_ref(), &viewers),
        [
            "doc:c#viewer@user:u1",
            "doc:d#viewer@user:u1",
            "doc:e#viewer@user:u1",
        ]
    );
    let exact = store
        .delete_relationships(&ctx.tenant, &[], &viewers, Some(3))
        .unwrap();
    assert_eq!((exact.value.n_deleted, exact.value.more_remain), (3, false));
    let none_left = store
        .delete_relationships(&ctx.tenant, &[], &viewers, Some(3))
        .unwrap();
    assert_eq!(
        (none_left.value.n_deleted, none_left.value.more_remain),
        (0, false)
    );
    let zero_limit = store
        .delete_relationships(&ctx.tenant, &[], &type_filter("doc"), Some(0))
        .unwrap();
    assert_eq!(
        (zero_limit.value.n_deleted, zero_limit.value.more_remain),
        (0, true)
    );
    let unlimited = store
        .delete_relationships(&ctx.tenant, &[], &type_filter("doc"), None)
        .unwrap();
    assert_eq!(
        (unlimited.value.n_deleted, unlimited.value.more_remain),
        (1, false)
    );
    assert_eq!(ctx.all_at(unlimited.revision), ["folder:a#viewer@user:u1"]);
}

/// The schema text is versioned with the revisions: each snapshot reads the schema in
/// force at its revision, tagged with the revision that wrote it, and a schema written with
/// relationships in one transaction commits with them.
pub fn schema_versioning(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    let r0 = ctx.touch_all(&["doc:a#viewer@user:u1"]);
    assert_eq!(ctx.snapshot(r0).read_schema().unwrap(), None);

    let r1 = ctx
        .store()
        .write_schema(&ctx.tenant, "definition v1 {}")
        .unwrap();
    let r2 = ctx.touch_all(&["doc:b#viewer@user:u1"]);
    let committed = ctx
        .store()
        .read_write_with(&ctx.tenant, |txn| {
            let before = txn.read_schema()?.map(|schema| schema.text.to_string());
            txn.write_schema("definition v2 {}")?;
            let after = txn.read_schema()?;
            txn.apply(&[touch("doc:c#viewer@user:u1")])?;
            Ok::<_, StoreError>((before, after))
        })
        .unwrap();
    let r3 = committed.revision;
    let (before, after) = committed.value;
    assert_eq!(before.as_deref(), Some("definition v1 {}"));
    let after = after.unwrap();
    assert_eq!((&*after.text, after.revision), ("definition v2 {}", r3));

    let schema_at = |revision| {
        ctx.snapshot(revision)
            .read_schema()
            .unwrap()
            .map(|schema| (schema.text.to_string(), schema.revision))
    };
    assert_eq!(schema_at(r0), None);
    assert_eq!(schema_at(r1), Some(("definition v1 {}".to_owned(), r1)));
    assert_eq!(schema_at(r2), Some(("definition v1 {}".to_owned(), r1)));
    assert_eq!(schema_at(r3), Some(("definition v2 {}".to_owned(), r3)));
    assert_eq!(
        ctx.all_at(r3),
        [
            "doc:a#viewer@user:u1",
            "doc:b#viewer@user:u1",
            "doc:c#viewer@user:u1",
        ]
    );
}

/// Tenants share nothing: a write in one is invisible in another through every read, the
/// schema and the change feed, and the same key lives independently in both.
pub fn tenant_isolation(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    let tenant_a = TenantId::new("tenant-a").unwrap();
    let tenant_b = TenantId::new("tenant-b").unwrap();
    let store = ctx.store();
    let r1 = store
        .write_relationships(&tenant_a, &[], &[touch("doc:a#viewer@user:u1[cav]")])
        .unwrap();
    store.write_schema(&tenant_a, "definition doc {}").unwrap();
    let r2 = store
        .write_relationships(&tenant_b, &[], &[touch("doc:a#viewer@user:u1")])
        .unwrap();
    assert!(r2 > r1);

    let snapshot_a = store.snapshot(&tenant_a, r2).unwrap();
    let snapshot_b = store.snapshot(&tenant_b, r2).unwrap();
    assert_eq!(read_all(snapshot_a.as_ref()), ["doc:a#viewer@user:u1[cav]"]);
    assert_eq!(read_all(snapshot_b.as_ref()), ["doc:a#viewer@user:u1"]);
    assert!(snapshot_a.read_schema().unwrap().is_some());
    assert_eq!(snapshot_b.read_schema().unwrap(), None);
    let user = object_type("user");
    let mut out = Vec::new();
    snapshot_b
        .read_subjects(&SubjectQuery::new(&user), Page::ALL, &mut out)
        .unwrap();
    assert_eq!(texts(&out), ["doc:a#viewer@user:u1"]);

    let feed_b = store.changes_since(&tenant_b, Revision::ZERO, 100).unwrap();
    assert_eq!(feed_b.len(), 1);
    assert_eq!(feed_b[0].revision, r2);
    let unknown = TenantId::new("tenant-c").unwrap();
    assert!(read_all(store.snapshot(&unknown, r2).unwrap().as_ref()).is_empty());
    assert!(
        store
            .changes_since(&unknown, Revision::ZERO, 100)
            .unwrap()
            .is_empty()
    );

    // A delete and a precondition in B do not reach A.
    let err = store.write_relationships(
        &tenant_b,
        &[Precondition::MustMatch(type_filter("folder"))],
        &[],
    );
    assert_err!(err, StoreError::PreconditionFailed(_));
    let r3 = store
        .write_relationships(&tenant_b, &[], &[delete("doc:a#viewer@user:u1")])
        .unwrap();
    assert_eq!(
        read_all(store.snapshot(&tenant_a, r3).unwrap().as_ref()),
        ["doc:a#viewer@user:u1[cav]"]
    );
    assert!(read_all(store.snapshot(&tenant_b, r3).unwrap().as_ref()).is_empty());
}

/// Deleting a tenant removes its relationships, schema and feed, and nothing of others.
pub fn delete_tenant(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    let doomed = TenantId::new("doomed").unwrap();
    let store = ctx.store();
    store
        .write_relationships(&doomed, &[], &[touch("doc:a#viewer@user:u1")])
        .unwrap();
    store.write_schema(&doomed, "definition doc {}").unwrap();
    let kept = ctx.touch_all(&["doc:a#viewer@user:u1"]);
    store.delete_tenant(&doomed).unwrap();
    let head = ctx.head();
    assert!(head >= kept);
    let snapshot = store.snapshot(&doomed, head).unwrap();
    assert!(read_all(snapshot.as_ref()).is_empty());
    assert_eq!(snapshot.read_schema().unwrap(), None);
    assert!(
        store
            .changes_since(&doomed, Revision::ZERO, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(ctx.all_at(head), ["doc:a#viewer@user:u1"]);
    // The tenant can be written again from scratch.
    store
        .write_relationships(&doomed, &[], &[create("doc:a#viewer@user:u1")])
        .unwrap();
}

/// The subject filter used by several read cases.
pub(crate) fn subject_filter(subject_type: &str) -> SubjectFilter {
    SubjectFilter::new(object_type(subject_type))
}
