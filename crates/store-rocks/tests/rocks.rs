//! Backend-specific tests: persistence across reopen, store format checks on open, bulk
//! load and SST import, garbage collection on disk and group commit under concurrent writers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and benchmarks report failure by panicking"
)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ostiary_store::{
    Datastore, DatastoreExt, DatastoreOptions, ManualClock, Page, RecordNamespace,
    RelationshipUpdate, ResourceQuery, SubjectQuery,
};
use ostiary_store_rocks::{OpenError, RocksConfig, RocksDatastore};
use ostiary_types::{ObjectType, Relationship, Revision, TenantId};

fn open(path: &Path) -> RocksDatastore {
    RocksDatastore::open(&RocksConfig::new(path), DatastoreOptions::default()).unwrap()
}

fn open_err(path: &Path, create: bool) -> OpenError {
    let mut config = RocksConfig::new(path);
    config.create_if_missing = create;
    RocksDatastore::open(&config, DatastoreOptions::default()).unwrap_err()
}

fn touch(text: &str) -> RelationshipUpdate {
    RelationshipUpdate::Touch(text.parse().unwrap())
}

fn read_all(store: &dyn Datastore, resource_type: &str) -> Vec<String> {
    let tenant = TenantId::default_tenant();
    let snapshot = store.head_snapshot(&tenant).unwrap();
    let object_type = ObjectType::new(resource_type).unwrap();
    let mut out = Vec::new();
    snapshot
        .read_resources(&ResourceQuery::new(&object_type), Page::ALL, &mut out)
        .unwrap();
    out.iter().map(ToString::to_string).collect()
}

#[test]
fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let tenant = TenantId::default_tenant();
    let (first, second) = {
        let store = open(&path);
        let first = store
            .write_relationships(
                &tenant,
                &[],
                &[
                    touch("doc:a#viewer@user:alice"),
                    touch(r#"doc:b#viewer@user:bob[cav:{"n":1}][expiration:2999-01-01T00:00:00Z]"#),
                ],
            )
            .unwrap();
        store.write_schema(&tenant, "definition user {}").unwrap();
        let second = store
            .write_relationships(
                &tenant,
                &[],
                &[RelationshipUpdate::Delete(
                    "doc:a#viewer@user:alice".parse().unwrap(),
                )],
            )
            .unwrap();
        (first, second)
    };
    let store = open(&path);
    assert_eq!(store.head_revision().unwrap(), second);
    assert_eq!(
        read_all(&store, "doc"),
        [r#"doc:b#viewer@user:bob[cav:{"n":1}][expiration:2999-01-01T00:00:00Z]"#]
    );
    let old = store.snapshot(&tenant, first).unwrap();
    let mut out = Vec::new();
    let doc = ObjectType::new("doc").unwrap();
    old.read_resources(&ResourceQuery::new(&doc), Page::ALL, &mut out)
        .unwrap();
    assert_eq!(out.len(), 2);
    let schema = store
        .head_snapshot(&tenant)
        .unwrap()
        .read_schema()
        .unwrap()
        .unwrap();
    assert_eq!(&*schema.text, "definition user {}");
    let changes = store.changes_since(&tenant, Revision::ZERO, 10).unwrap();
    assert_eq!(changes.len(), 3);
    // Revisions keep increasing after a reopen.
    let third = store
        .write_relationships(&tenant, &[], &[touch("doc:c#viewer@user:carol")])
        .unwrap();
    assert!(third > second);
}

#[test]
fn missing_directory_is_an_error_unless_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent");
    let err = open_err(&path, false);
    assert!(matches!(err, OpenError::Missing(_)), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!path.exists());
    drop(open(&path));
    assert!(path.join("CURRENT").exists());
}

#[test]
fn foreign_directory_is_not_a_datastore() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    let err = open_err(dir.path(), true);
    assert!(matches!(err, OpenError::NotADatastore(_)), "{err}");
    assert!(
        err.to_string().contains("is not an ostiary datastore"),
        "{err}"
    );
}

#[test]
fn newer_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    drop(open(&path));
    {
        // Rewrite the format version with plain RocksDB, as a newer build would.
        let mut options = rocksdb::Options::default();
        options.create_if_missing(false);
        let families = rocksdb::DB::list_cf(&options, &path).unwrap();
        let db = rocksdb::DB::open_cf(&options, &path, &families).unwrap();
        let meta = db.cf_handle("meta").unwrap();
        db.put_cf(meta, b"format", 99u32.to_be_bytes()).unwrap();
        db.put_cf(meta, b"other", b"x").unwrap();
    }
    let err = open_err(&path, true);
    assert!(
        matches!(
            err,
            OpenError::NewerFormat {
                found: 99,
                supported: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("newer than the supported format 3"),
        "{err}"
    );
}

#[test]
fn corrupted_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    {
        let store = open(&path);
        store
            .write_relationships(
                &TenantId::default_tenant(),
                &[],
                &[touch("doc:a#viewer@user:b")],
            )
            .unwrap();
    }
    // Damage every manifest.
    for entry in std::fs::read_dir(&path).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().starts_with("MANIFEST") {
            std::fs::write(entry.path(), b"garbage, not a manifest").unwrap();
        }
    }
    // RocksDB may read a garbage manifest as one without our column families.
    let err = open_err(&path, true);
    assert!(
        matches!(
            err,
            OpenError::Corrupted { .. } | OpenError::Io { .. } | OpenError::NotADatastore(_)
        ),
        "{err}"
    );
    assert!(err.to_string().contains("data"), "{err}");

    // A CURRENT file naming a missing manifest.
    let other = dir.path().join("other");
    drop(open(&other));
    std::fs::write(other.join("CURRENT"), b"MANIFEST-999999\n").unwrap();
    let err = open_err(&other, true);
    assert!(
        matches!(err, OpenError::Corrupted { .. } | OpenError::Io { .. }),
        "{err}"
    );
}

#[test]
fn bulk_load_is_readable_from_both_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("data"));
    let tenant = TenantId::default_tenant();
    let rels = (0..2_500).map(|idx| {
        format!("doc:d{}#viewer@user:u{}", idx % 100, idx / 100)
            .parse::<Relationship>()
            .unwrap()
    });
    // A duplicate in another batch is a later version of the same relationship.
    let rels = rels.chain(["doc:d0#viewer@user:u0".parse().unwrap()]);
    let stats = store.bulk_load(&tenant, rels, 1_000).unwrap();
    assert_eq!(stats.n_relationships, 2_501);
    assert_eq!(stats.last_revision, Revision::new(3));
    assert_eq!(store.head_revision().unwrap(), Revision::new(3));
    assert_eq!(read_all(&store, "doc").len(), 2_500);
    let user = ObjectType::new("user").unwrap();
    let ids = ["u7".parse().unwrap()];
    let query = SubjectQuery {
        subject_ids: &ids,
        ..SubjectQuery::new(&user)
    };
    let mut out = Vec::new();
    store
        .head_snapshot(&tenant)
        .unwrap()
        .read_subjects(&query, Page::ALL, &mut out)
        .unwrap();
    assert_eq!(out.len(), 100);
    let changes = store.changes_since(&tenant, Revision::ZERO, 10).unwrap();
    assert_eq!(
        changes
            .iter()
            .map(|group| group.changes.len())
            .sum::<usize>(),
        2_501
    );
    // A duplicate within one batch is written once, the last value winning.
    let stats = store
        .bulk_load(
            &tenant,
            [
                "doc:x#viewer@user:u0[expiration:2999-01-01T00:00:00Z]"
                    .parse()
                    .unwrap(),
                "doc:x#viewer@user:u0".parse().unwrap(),
            ],
            10,
        )
        .unwrap();
    assert_eq!(stats.n_relationships, 1);
    assert!(read_all(&store, "doc").contains(&"doc:x#viewer@user:u0".to_owned()));
}

#[test]
fn gc_shrinks_versions_and_keeps_state() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new("2025-01-01T00:00:00Z".parse().unwrap()));
    let options = DatastoreOptions {
        clock: clock.clone(),
        gc_window: Duration::from_secs(60),
        ..DatastoreOptions::default()
    };
    let path = dir.path().join("data");
    let tenant = TenantId::default_tenant();
    let store = RocksDatastore::open(&RocksConfig::new(&path), options.clone()).unwrap();
    for round in 0..5 {
        let caveat = format!(r#"doc:a#viewer@user:alice[cav:{{"round":{round}}}]"#);
        store
            .write_relationships(
                &tenant,
                &[],
                &[touch(&caveat), touch("doc:b#viewer@user:bob")],
            )
            .unwrap();
        clock.advance(Duration::from_secs(1));
    }
    store
        .write_relationships(
            &tenant,
            &[],
            &[RelationshipUpdate::Delete(
                "doc:b#viewer@user:bob".parse().unwrap(),
            )],
        )
        .unwrap();
    clock.advance(Duration::from_secs(120));
    let stats = store.collect_garbage().unwrap();
    assert_eq!(stats.horizon, Revision::new(6));
    // doc:a keeps its newest version; doc:b's five versions go, and its tombstone too
    // (not counted: it is no relationship version).
    assert_eq!(stats.n_relationship_versions, 4 + 5);
    assert_eq!(stats.n_change_revisions, 6);
    assert_eq!(
        read_all(&store, "doc"),
        [r#"doc:a#viewer@user:alice[cav:{"round":4}]"#]
    );
    drop(store);
    let store = RocksDatastore::open(&RocksConfig::new(&path), options).unwrap();
    assert_eq!(store.head_revision().unwrap(), Revision::new(6));
    assert!(store.check_revision(Revision::new(5)).is_err());
    assert_eq!(store.collect_garbage().unwrap().n_relationship_versions, 0);
}

#[test]
fn concurrent_writers_share_fsyncs_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir.path().join("data")));
    let tenant = TenantId::default_tenant();
    let threads: Vec<_> = (0..8)
        .map(|thread_idx| {
            let store = Arc::clone(&store);
            let tenant = tenant.clone();
            std::thread::spawn(move || {
                let mut revisions = Vec::new();
                for write_idx in 0..50 {
                    let text = format!("doc:t{thread_idx}#viewer@user:u{write_idx}");
                    revisions.push(
                        store
                            .write_relationships(&tenant, &[], &[touch(&text)])
                            .unwrap(),
                    );
                }
                revisions
            })
        })
        .collect();
    let mut all: Vec<Revision> = threads
        .into_iter()
        .flat_map(|thread| thread.join().unwrap())
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 400);
    assert_eq!(store.head_revision().unwrap(), Revision::new(400));
    assert_eq!(read_all(store.as_ref(), "doc").len(), 400);
}

/// A TOUCH reads no before-image; a later CREATE or DELETE of the same key in the same
/// transaction must still see the stored value (for the conflict, the tombstone and the
/// change feed's deleted value).
#[test]
fn later_updates_of_a_touched_key_see_the_stored_value() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("data"));
    let tenant = TenantId::default_tenant();
    let stored: Relationship = r#"doc:a#viewer@user:x[cav:{"n":1}]"#.parse().unwrap();
    let first = store
        .write_relationships(&tenant, &[], &[RelationshipUpdate::Touch(stored.clone())])
        .unwrap();
    let run = |updates: Vec<RelationshipUpdate>| {
        store.read_write(&tenant, &mut |txn: &mut dyn ostiary_store::WriteTxn| {
            txn.apply(&updates)
        })
    };
    // TOUCH then DELETE of a stored relationship: deleted, and the feed names the stored
    // value.
    let deleted = run(vec![
        touch("doc:a#viewer@user:x"),
        RelationshipUpdate::Delete(stored.key().clone()),
    ])
    .unwrap();
    assert!(read_all(&store, "doc").is_empty());
    let changes = store.changes_since(&tenant, first, 10).unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].revision, deleted);
    assert_eq!(
        changes[0].changes,
        [ostiary_store::Change::Delete(stored.clone())]
    );
    // TOUCH then CREATE of the same key conflicts; nothing is written.
    let err = run(vec![
        touch("doc:b#viewer@user:y"),
        RelationshipUpdate::Create("doc:b#viewer@user:y".parse().unwrap()),
    ])
    .unwrap_err();
    assert!(
        matches!(err, ostiary_store::StoreError::AlreadyExists(_)),
        "{err}"
    );
    // TOUCH then DELETE of a key never stored: no version, no change.
    let nothing = run(vec![
        touch("doc:c#viewer@user:z"),
        RelationshipUpdate::Delete(
            "doc:c#viewer@user:z"
                .parse::<Relationship>()
                .unwrap()
                .key()
                .clone(),
        ),
    ])
    .unwrap();
    assert!(read_all(&store, "doc").is_empty());
    assert!(
        store
            .changes_since(&tenant, deleted, 10)
            .unwrap()
            .iter()
            .all(|revision| revision.revision != nothing || revision.changes.is_empty())
    );
    // Re-creating the deleted relationship works.
    run(vec![RelationshipUpdate::Create(stored.clone())]).unwrap();
    assert_eq!(read_all(&store, "doc"), [stored.to_string()]);
}

/// Reads every relationship in both indexes at `revision`: (forward order, reverse order
/// re-sorted), as text.
fn read_both_at(
    store: &RocksDatastore,
    revision: Revision,
    resource_type: &str,
    subject_type: &str,
) -> (Vec<String>, Vec<String>) {
    let tenant = TenantId::default_tenant();
    let snapshot = store.snapshot(&tenant, revision).unwrap();
    let resource_type = ObjectType::new(resource_type).unwrap();
    let mut forward = Vec::new();
    snapshot
        .read_resources(&ResourceQuery::new(&resource_type), Page::ALL, &mut forward)
        .unwrap();
    let subject_type = ObjectType::new(subject_type).unwrap();
    let mut reverse = Vec::new();
    snapshot
        .read_subjects(&SubjectQuery::new(&subject_type), Page::ALL, &mut reverse)
        .unwrap();
    let mut forward: Vec<String> = forward.iter().map(ToString::to_string).collect();
    let mut reverse: Vec<String> = reverse.iter().map(ToString::to_string).collect();
    forward.sort();
    reverse.sort();
    (forward, reverse)
}

#[test]
fn bulk_import_commits_one_revision_in_both_indexes_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let tenant = TenantId::default_tenant();
    let store = open(&path);
    // Existing data: one relationship the import replaces, one it leaves alone.
    let before = store
        .write_relationships(
            &tenant,
            &[],
            &[
                touch("doc:d0#viewer@user:u0"),
                touch("doc:keep#viewer@user:u1"),
            ],
        )
        .unwrap();
    // More than one change-log chunk (65,536 changes), a caveated and an expiring
    // relationship, and a duplicate whose last occurrence wins.
    let n_docs = 7_000;
    let rels = (0..n_docs * 10).map(|idx| {
        format!("doc:d{}#viewer@user:u{}", idx / 10, (idx * 7) % 1_000)
            .parse::<Relationship>()
            .unwrap()
    });
    let extra: Vec<Relationship> = [
        r#"doc:d0#viewer@user:u0[cav:{"n":1}]"#,
        "doc:x#viewer@group:g#member[expiration:2999-01-01T00:00:00Z]",
        "doc:y#viewer@user:u5",
        "doc:y#viewer@user:u5[expiration:2998-01-01T00:00:00Z]",
    ]
    .iter()
    .map(|text| text.parse().unwrap())
    .collect();
    let mut input: Vec<Relationship> = rels.collect();
    let mut expected: std::collections::BTreeSet<String> =
        input.iter().map(ToString::to_string).collect();
    expected.remove("doc:d0#viewer@user:u0");
    expected.extend([
        r#"doc:d0#viewer@user:u0[cav:{"n":1}]"#.to_owned(),
        "doc:x#viewer@group:g#member[expiration:2999-01-01T00:00:00Z]".to_owned(),
        "doc:y#viewer@user:u5[expiration:2998-01-01T00:00:00Z]".to_owned(),
    ]);
    input.extend(extra);
    let stats = store.bulk_import(&tenant, input).unwrap();
    assert_eq!(stats.n_relationships, n_docs * 10 + 2);
    assert_eq!(stats.revision, before.checked_next().unwrap());
    assert_eq!(store.head_revision().unwrap(), stats.revision);

    // Nothing of the import is visible before its revision.
    let (forward, reverse) = read_both_at(&store, before, "doc", "user");
    assert_eq!(
        forward,
        ["doc:d0#viewer@user:u0", "doc:keep#viewer@user:u1"]
    );
    assert_eq!(reverse, forward);

    let check = |store: &RocksDatastore| {
        let (forward, reverse) = read_both_at(store, stats.revision, "doc", "user");
        let mut all = expected.clone();
        all.insert("doc:keep#viewer@user:u1".to_owned());
        assert_eq!(forward.len(), all.len());
        assert_eq!(
            forward
                .iter()
                .cloned()
                .collect::<std::collections::BTreeSet<_>>(),
            all
        );
        // The reverse index holds the same relationships (minus the group subject, which
        // this query for `user` subjects does not cover).
        let users: Vec<&String> = forward
            .iter()
            .filter(|text| !text.contains("@group:"))
            .collect();
        assert_eq!(reverse.iter().collect::<Vec<_>>(), users);
        // A reverse lookup of one subject.
        let user = ObjectType::new("user").unwrap();
        let ids = ["u7".parse().unwrap()];
        let query = SubjectQuery {
            subject_ids: &ids,
            ..SubjectQuery::new(&user)
        };
        let mut out = Vec::new();
        store
            .snapshot(&tenant, stats.revision)
            .unwrap()
            .read_subjects(&query, Page::ALL, &mut out)
            .unwrap();
        assert_eq!(
            out.len(),
            all.iter().filter(|text| text.ends_with("@user:u7")).count()
        );
        assert!(!out.is_empty());
    };
    check(&store);

    // The change log: one revision with every imported relationship as a touch, even
    // across chunks and with a later revision after it.
    let later = store
        .write_relationships(&tenant, &[], &[touch("doc:later#viewer@user:u1")])
        .unwrap();
    let changes = store.changes_since(&tenant, before, 1).unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].revision, stats.revision);
    assert_eq!(changes[0].changes.len(), n_docs * 10 + 2);
    assert!(
        changes[0]
            .changes
            .iter()
            .all(|change| matches!(change, ostiary_store::Change::Touch(_)))
    );
    let changes = store.changes_since(&tenant, before, 10).unwrap();
    assert_eq!(
        changes
            .iter()
            .map(|group| group.revision)
            .collect::<Vec<_>>(),
        [stats.revision, later]
    );

    // Empty input commits nothing.
    let empty = store.bulk_import(&tenant, Vec::new()).unwrap();
    assert_eq!(empty.revision, Revision::ZERO);
    assert_eq!(store.head_revision().unwrap(), later);

    drop(store);
    let store = open(&path);
    assert_eq!(store.head_revision().unwrap(), later);
    check(&store);
    assert!(!path.join("import.tmp").exists());
    // GC keeps everything inside the window; compaction keeps the data readable.
    store.collect_garbage().unwrap();
    store.compact().unwrap();
    check(&store);
}

#[test]
fn records_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let tenant = TenantId::default_tenant();
    let system = TenantId::system();
    let tokens = RecordNamespace::new("tokens").unwrap();
    let written = {
        let store = open(&path);
        store
            .read_write(&tenant, &mut |txn| {
                txn.apply(&[touch("doc:a#viewer@user:alice")])?;
                txn.put_record(&tokens, b"t1", b"one")?;
                txn.put_record(&tokens, b"t2", b"two")
            })
            .unwrap();
        store
            .read_write(&system, &mut |txn| txn.put_record(&tokens, b"root", b"r"))
            .unwrap();
        store
            .read_write(&tenant, &mut |txn| txn.delete_record(&tokens, b"t2"))
            .unwrap()
    };
    let store = open(&path);
    assert_eq!(store.head_revision().unwrap(), written);
    let records = store.scan_records(&tenant, &tokens, b"", 10).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(
        (records[0].key.as_slice(), records[0].value.as_slice()),
        (b"t1".as_slice(), b"one".as_slice())
    );
    assert_eq!(
        store.read_record(&system, &tokens, b"root").unwrap(),
        Some(b"r".to_vec())
    );
    assert_eq!(read_all(&store, "doc"), ["doc:a#viewer@user:alice"]);
}

#[test]
fn format_2_directory_gains_the_records_family() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let tenant = TenantId::default_tenant();
    open(&path)
        .write_relationships(&tenant, &[], &[touch("doc:a#viewer@user:alice")])
        .unwrap();
    let rewrite = |drop_records: bool, format: u32| {
        // Make the directory look like one a format-2 build wrote.
        let mut options = rocksdb::Options::default();
        options.create_if_missing(false);
        let families = rocksdb::DB::list_cf(&options, &path).unwrap();
        let mut db = rocksdb::DB::open_cf(&options, &path, &families).unwrap();
        if drop_records {
            db.drop_cf("records").unwrap();
        }
        let meta = db.cf_handle("meta").unwrap();
        db.put_cf(meta, b"format", format.to_be_bytes()).unwrap();
    };
    rewrite(true, 2);
    {
        let store = open(&path);
        assert_eq!(read_all(&store, "doc"), ["doc:a#viewer@user:alice"]);
        let tokens = RecordNamespace::new("tokens").unwrap();
        store
            .read_write(&tenant, &mut |txn| txn.put_record(&tokens, b"k", b"v"))
            .unwrap();
        assert_eq!(
            store.read_record(&tenant, &tokens, b"k").unwrap(),
            Some(b"v".to_vec())
        );
    }
    {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(false);
        let families = rocksdb::DB::list_cf(&options, &path).unwrap();
        assert!(
            families.iter().any(|name| name == "records"),
            "{families:?}"
        );
        let db = rocksdb::DB::open_cf(&options, &path, &families).unwrap();
        let meta = db.cf_handle("meta").unwrap();
        assert_eq!(
            db.get_cf(meta, b"format").unwrap().unwrap(),
            3u32.to_be_bytes()
        );
    }
    // A format-3 directory without the family is damaged, not upgraded.
    rewrite(true, 3);
    let err = open_err(&path, false);
    assert!(matches!(err, OpenError::Corrupted { .. }), "{err}");
    assert!(err.to_string().contains("`records` column family"), "{err}");
}
