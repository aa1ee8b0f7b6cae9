//! Cases about records (unversioned per-tenant metadata): atomicity with relationship
//! writes, rollback, a transaction's own view, tenant and namespace isolation, scan order,
//! records-only commits and tenant deletion.

use ostiary_store::{
    Datastore, DatastoreExt, Record, RecordNamespace, StoreError, WriteTxn, record_key_successor,
};
use ostiary_types::{Revision, TenantId};

use crate::Factory;
use crate::support::{Ctx, assert_err, create, read_all, touch};

fn namespace(name: &str) -> RecordNamespace {
    RecordNamespace::new(name).unwrap()
}

fn read(store: &dyn Datastore, tenant: &TenantId, ns: &str, key: &[u8]) -> Option<Vec<u8>> {
    store.read_record(tenant, &namespace(ns), key).unwrap()
}

/// Every record of a namespace, read one at a time through the paging rule.
fn scan_all(store: &dyn Datastore, tenant: &TenantId, ns: &str) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    let mut start = Vec::new();
    loop {
        let page = store
            .scan_records(tenant, &namespace(ns), &start, 1)
            .unwrap();
        let Some(last) = page.last() else {
            return out;
        };
        start = record_key_successor(&last.key);
        out.extend(page);
    }
}

fn record(key: &[u8], value: &[u8]) -> Record {
    Record {
        key: key.to_vec(),
        value: value.to_vec(),
    }
}

/// Records written in a transaction commit with its relationships and schema, at the
/// same revision; overwriting and deleting work the same way.
pub fn records_commit_with_relationships(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    let store = ctx.store();
    let tokens = namespace("tokens");
    let revision = store
        .read_write(&ctx.tenant, &mut |txn| {
            txn.apply(&[create("doc:a#viewer@user:u1")])?;
            txn.write_schema("definition doc {}")?;
            txn.put_record(&tokens, b"t1", b"first")?;
            txn.put_record(&tokens, b"t2", b"second")
        })
        .unwrap();
    assert_eq!(ctx.head(), revision);
    assert_eq!(ctx.all_at(revision), ["doc:a#viewer@user:u1"]);
    assert_eq!(
        read(store, &ctx.tenant, "tokens", b"t1").as_deref(),
        Some(b"first".as_slice())
    );
    assert_eq!(
        scan_all(store, &ctx.tenant, "tokens"),
        [record(b"t1", b"first"), record(b"t2", b"second")]
    );

    // Overwrite one, delete the other (and an absent one: not an error).
    store
        .read_write(&ctx.tenant, &mut |txn| {
            txn.put_record(&tokens, b"t1", b"replaced")?;
            txn.delete_record(&tokens, b"t2")?;
            txn.delete_record(&tokens, b"never-written")
        })
        .unwrap();
    assert_eq!(
        scan_all(store, &ctx.tenant, "tokens"),
        [record(b"t1", b"replaced")]
    );
    assert_eq!(read(store, &ctx.tenant, "tokens", b"t2"), None);
    // Empty keys and values are records like any other.
    store
        .read_write(&ctx.tenant, &mut |txn| txn.put_record(&tokens, b"", b""))
        .unwrap();
    assert_eq!(
        read(store, &ctx.tenant, "tokens", b"").as_deref(),
        Some(b"".as_slice())
    );
}

/// A body that fails, or an operation that fails, leaves no record change behind.
pub fn records_roll_back_with_the_transaction(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    let store = ctx.store();
    let audit = namespace("audit");
    store
        .read_write(&ctx.tenant, &mut |txn| {
            txn.put_record(&audit, b"kept", b"1")
        })
        .unwrap();
    let before = ctx.head();

    let res = store.read_write(&ctx.tenant, &mut |txn| {
        txn.put_record(&audit, b"new", b"x")?;
        txn.put_record(&audit, b"kept", b"changed")?;
        txn.delete_record(&audit, b"kept")?;
        txn.apply(&[touch("doc:a#viewer@user:u1")])?;
        Err(StoreError::PreconditionFailed(
            "the body gave up".to_owned(),
        ))
    });
    assert_err!(res, StoreError::PreconditionFailed(_));

    // An operation failing after the record writes aborts them too.
    ctx.write(&[create("doc:b#viewer@user:u1")]);
    let res = store.read_write(&ctx.tenant, &mut |txn| {
        txn.put_record(&audit, b"new", b"y")?;
        txn.apply(&[create("doc:b#viewer@user:u1")])
    });
    assert_err!(res, StoreError::AlreadyExists(_));

    // `read_write_with` rolls back on the caller's own error type.
    let res: Result<_, StoreError> = store.read_write_with(&ctx.tenant, |txn| {
        txn.put_record(&audit, b"new", b"z")?;
        Err::<(), _>(StoreError::Conflict)
    });
    assert_err!(res, StoreError::Conflict);

    assert_eq!(ctx.head(), before.checked_next().unwrap());
    assert_eq!(
        scan_all(store, &ctx.tenant, "audit"),
        [record(b"kept", b"1")]
    );
    assert_eq!(ctx.all_at(ctx.head()), ["doc:b#viewer@user:u1"]);
}

/// Inside a transaction, record reads and scans see its own writes on top of the committed
/// values; nobody outside sees them before the commit.
pub fn transaction_reads_own_records(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    let store = ctx.store();
    let meta = namespace("meta");
    store
        .read_write(&ctx.tenant, &mut |txn| {
            for key in [b"a", b"b", b"c", b"d"] {
                txn.put_record(&meta, key, b"old")?;
            }
            Ok(())
        })
        .unwrap();
    let tenant = ctx.tenant.clone();
    let mut inside: Vec<Vec<Record>> = Vec::new();
    let mut outside_during: Option<Vec<Record>> = None;
    let mut reads: Vec<Option<Vec<u8>>> = Vec::new();
    store
        .read_write(&ctx.tenant, &mut |txn| {
            inside.clear();
            reads.clear();
            txn.put_record(&meta, b"b", b"new")?;
            txn.delete_record(&meta, b"c")?;
            txn.put_record(&meta, b"bb", b"added")?;
            txn.put_record(&meta, b"e", b"added")?;
            reads.push(txn.read_record(&meta, b"a")?);
            reads.push(txn.read_record(&meta, b"b")?);
            reads.push(txn.read_record(&meta, b"c")?);
            reads.push(txn.read_record(&meta, b"zz")?);
            inside.push(txn.scan_records(&meta, b"", 100)?);
            inside.push(txn.scan_records(&meta, b"b", 3)?);
            inside.push(txn.scan_records(&meta, b"bc", 100)?);
            inside.push(txn.scan_records(&meta, b"", 0)?);
            outside_during = Some(store.scan_records(&tenant, &meta, b"", 100).unwrap());
            Ok(())
        })
        .unwrap();
    assert_eq!(
        reads,
        [Some(b"old".to_vec()), Some(b"new".to_vec()), None, None]
    );
    assert_eq!(
        inside[0],
        [
            record(b"a", b"old"),
            record(b"b", b"new"),
            record(b"bb", b"added"),
            record(b"d", b"old"),
            record(b"e", b"added"),
        ]
    );
    assert_eq!(
        inside[1],
        [
            record(b"b", b"new"),
            record(b"bb", b"added"),
            record(b"d", b"old")
        ]
    );
    assert_eq!(inside[2], [record(b"d", b"old"), record(b"e", b"added")]);
    assert!(inside[3].is_empty());
    assert_eq!(
        outside_during.unwrap(),
        [
            record(b"a", b"old"),
            record(b"b", b"old"),
            record(b"c", b"old"),
            record(b"d", b"old"),
        ]
    );
    assert_eq!(scan_all(store, &ctx.tenant, "meta"), inside[0]);
}

/// The same namespace and key in two tenants, or in two namespaces of one tenant, are
/// different records; the system tenant is a tenant like the others for the store.
pub fn records_isolated_by_tenant_and_namespace(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    let store = ctx.store();
    let first = TenantId::new("first").unwrap();
    let first_longer = TenantId::new("first2").unwrap();
    let system = TenantId::system();
    let tokens = namespace("tokens");
    let tokens_2 = namespace("tokens2");
    for (tenant, value) in [
        (&first, b"of first".as_slice()),
        (&first_longer, b"of first2"),
        (&system, b"of system"),
    ] {
        store
            .read_write(tenant, &mut |txn| txn.put_record(&tokens, b"k", value))
            .unwrap();
    }
    store
        .read_write(&first, &mut |txn| {
            txn.put_record(&tokens_2, b"k", b"other namespace")?;
            // A key that starts like another namespace's encoding stays in its own.
            txn.put_record(&tokens, b"2\0k", b"tricky key")
        })
        .unwrap();
    assert_eq!(
        scan_all(store, &first, "tokens"),
        [record(b"2\0k", b"tricky key"), record(b"k", b"of first")]
    );
    assert_eq!(
        scan_all(store, &first, "tokens2"),
        [record(b"k", b"other namespace")]
    );
    assert_eq!(
        scan_all(store, &first_longer, "tokens"),
        [record(b"k", b"of first2")]
    );
    assert_eq!(
        scan_all(store, &system, "tokens"),
        [record(b"k", b"of system")]
    );
    assert!(scan_all(store, &ctx.tenant, "tokens").is_empty());
    assert_eq!(read(store, &ctx.tenant, "tokens", b"k"), None);

    // Deleting in one tenant leaves the others alone.
    store
        .read_write(&first, &mut |txn| txn.delete_record(&tokens, b"k"))
        .unwrap();
    assert_eq!(read(store, &first, "tokens", b"k"), None);
    assert_eq!(
        read(store, &first_longer, "tokens", b"k").as_deref(),
        Some(b"of first2".as_slice())
    );
    assert_eq!(
        read(store, &first, "tokens2", b"k").as_deref(),
        Some(b"other namespace".as_slice())
    );
}

/// Scans return keys in bytewise order from `start` (inclusive), at most `limit`; keys may
/// hold any byte.
pub fn record_scan_order_and_limits(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    let store = ctx.store();
    let audit = namespace("audit");
    let keys: [&[u8]; 8] = [
        b"\xff\xff",
        b"b",
        b"",
        b"a\0",
        b"a",
        b"\0",
        b"ab",
        &[0, 0, 0, 0, 0, 0, 1, 0],
    ];
    store
        .read_write(&ctx.tenant, &mut |txn| {
            for (key_idx, key) in keys.iter().enumerate() {
                txn.put_record(&audit, key, &[u8::try_from(key_idx).unwrap()])?;
            }
            Ok(())
        })
        .unwrap();
    let mut sorted: Vec<&[u8]> = keys.to_vec();
    sorted.sort();
    let all = store
        .scan_records(&ctx.tenant, &audit, b"", usize::MAX)
        .unwrap();
    let all_keys: Vec<&[u8]> = all.iter().map(|record| record.key.as_slice()).collect();
    assert_eq!(all_keys, sorted);
    // Paging one at a time gives the same list.
    assert_eq!(scan_all(store, &ctx.tenant, "audit"), all);

    let keys_from = |start: &[u8], limit: usize| -> Vec<Vec<u8>> {
        store
            .scan_records(&ctx.tenant, &audit, start, limit)
            .unwrap()
            .into_iter()
            .map(|record| record.key)
            .collect()
    };
    assert_eq!(keys_from(b"a", 2), [b"a".to_vec(), b"a\0".to_vec()]);
    assert_eq!(
        keys_from(b"a\x01", 10),
        [b"ab".to_vec(), b"b".to_vec(), vec![255, 255]]
    );
    assert_eq!(keys_from(b"\xff\xff\x00", 10), Vec::<Vec<u8>>::new());
    assert!(keys_from(b"", 0).is_empty());
    assert_eq!(keys_from(b"", 1), [Vec::<u8>::new()]);
    // A missing namespace or tenant scans empty.
    assert!(scan_all(store, &ctx.tenant, "absent").is_empty());
    assert!(scan_all(store, &TenantId::new("nobody").unwrap(), "audit").is_empty());
}

/// A transaction that only writes records commits at a new revision like any other, adds
/// nothing to the change feed and changes no relationship or schema.
pub fn records_only_transaction_takes_a_revision(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    let store = ctx.store();
    let first = ctx.touch_all(&["doc:a#viewer@user:u1"]);
    let meta = namespace("meta");
    let mut seen_inside = Revision::ZERO;
    let records_only = store
        .read_write(&ctx.tenant, &mut |txn| {
            seen_inside = txn.revision();
            txn.put_record(&meta, b"k", b"v")
        })
        .unwrap();
    assert_eq!(records_only, first.checked_next().unwrap());
    // The transaction knew its revision before committing.
    assert_eq!(seen_inside, records_only);
    assert_eq!(ctx.head(), records_only);
    store.check_revision(records_only).unwrap();
    assert_eq!(ctx.all_at(records_only), ["doc:a#viewer@user:u1"]);
    assert_eq!(ctx.snapshot(records_only).read_schema().unwrap(), None);
    let feed = store
        .changes_since(&ctx.tenant, Revision::ZERO, 10)
        .unwrap();
    assert_eq!(
        feed.iter().map(|group| group.revision).collect::<Vec<_>>(),
        [first]
    );
    let third = ctx.touch_all(&["doc:b#viewer@user:u1"]);
    assert_eq!(third, records_only.checked_next().unwrap());
}

/// Records never show up as relationships, schemas or changes, even when their namespace
/// and key bytes spell a relationship's key.
pub fn records_never_read_as_relationships(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    let store = ctx.store();
    let doc = namespace("doc");
    let revision = store
        .read_write(&ctx.tenant, &mut |txn| {
            txn.put_record(&doc, b"a\0viewer\0user\0u1\0\0", b"x")?;
            txn.put_record(&doc, b"", b"y")
        })
        .unwrap();
    assert!(ctx.all_at(revision).is_empty());
    assert_eq!(ctx.snapshot(revision).read_schema().unwrap(), None);
    // And relationships are not records.
    ctx.touch_all(&["doc:a#viewer@user:u1"]);
    assert_eq!(scan_all(store, &ctx.tenant, "doc").len(), 2);
    assert!(scan_all(store, &ctx.tenant, "forward").is_empty());
}

/// Deleting a tenant removes its records and no one else's.
pub fn delete_tenant_removes_records(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    let store = ctx.store();
    let doomed = TenantId::new("doomed").unwrap();
    let tokens = namespace("tokens");
    let audit = namespace("audit");
    for tenant in [&doomed, &ctx.tenant] {
        store
            .read_write(tenant, &mut |txn| {
                txn.apply(&[touch("doc:a#viewer@user:u1")])?;
                txn.put_record(&tokens, b"t", b"token")?;
                txn.put_record(&audit, b"1", b"entry")
            })
            .unwrap();
    }
    store.delete_tenant(&doomed).unwrap();
    assert!(scan_all(store, &doomed, "tokens").is_empty());
    assert!(scan_all(store, &doomed, "audit").is_empty());
    let snapshot = store.snapshot(&doomed, ctx.head()).unwrap();
    assert!(read_all(snapshot.as_ref()).is_empty());
    assert_eq!(
        read(store, &ctx.tenant, "tokens", b"t").as_deref(),
        Some(b"token".as_slice())
    );
    assert_eq!(scan_all(store, &ctx.tenant, "audit").len(), 1);
    // A transaction on the deleted tenant starts from nothing.
    let mut seen = None;
    store
        .read_write(&doomed, &mut |txn: &mut dyn WriteTxn| {
            seen = Some(txn.read_record(&tokens, b"t")?);
            Ok(())
        })
        .unwrap();
    assert_eq!(seen, Some(None));
}
