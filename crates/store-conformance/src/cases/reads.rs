//! Cases about reads: filter semantics, the forward and reverse indexes, ordering and
//! cursor pagination, and expiration.

use std::time::Duration;

use ostiary_store::{
    DatastoreExt, Page, Precondition, ReadOrder, ResourceQuery, Snapshot, SubjectQuery,
};
use ostiary_types::{
    ObjectId, RelationFilter, RelationName, Relationship, RelationshipFilter, SubjectFilter,
};

use crate::Factory;
use crate::cases::writes::subject_filter;
use crate::support::{Ctx, create, object_type, read_all, read_filter, texts, touch, type_filter};

/// The relationships the filter and query cases read.
const FIXTURE: &[&str] = &[
    "doc:a#viewer@user:alice",
    "doc:a#viewer@user:*",
    "doc:a#viewer@group:eng#member",
    "doc:a#viewer@group:eng",
    "doc:a#editor@user:bob",
    "doc:ab#viewer@user:alice",
    "doc:b#viewer@group:ops#admin",
    "doc/sub:a#viewer@user:alice",
    "docs:a#viewer@user:alice",
    "folder:a#viewer@user:alice",
];

fn id(text: &str) -> ObjectId {
    ObjectId::new(text).unwrap()
}

fn relation(text: &str) -> RelationName {
    RelationName::new(text).unwrap()
}

/// Every field of SpiceDB's relationship filter, alone and combined, including the subject
/// relation's three states and the wildcard matching only wildcard subjects.
pub fn filter_fields(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    let revision = ctx.touch_all(FIXTURE);
    let snapshot = ctx.snapshot(revision);
    let read = |filter: RelationshipFilter| read_filter(snapshot.as_ref(), &filter);

    assert_eq!(
        read(type_filter("doc")),
        [
            "doc:a#editor@user:bob",
            "doc:a#viewer@group:eng",
            "doc:a#viewer@group:eng#member",
            "doc:a#viewer@user:*",
            "doc:a#viewer@user:alice",
            "doc:ab#viewer@user:alice",
            "doc:b#viewer@group:ops#admin",
        ]
    );
    assert_eq!(
        read(RelationshipFilter {
            optional_resource_id: Some(id("ab")),
            ..type_filter("doc")
        }),
        ["doc:ab#viewer@user:alice"]
    );
    assert_eq!(
        read(RelationshipFilter {
            optional_resource_id_prefix: Some("a".to_owned()),
            optional_relation: Some(relation("viewer")),
            ..type_filter("doc")
        }),
        [
            "doc:a#viewer@group:eng",
            "doc:a#viewer@group:eng#member",
            "doc:a#viewer@user:*",
            "doc:a#viewer@user:alice",
            "doc:ab#viewer@user:alice",
        ]
    );
    assert_eq!(
        read(RelationshipFilter {
            optional_relation: Some(relation("editor")),
            ..RelationshipFilter::default()
        }),
        ["doc:a#editor@user:bob"]
    );
    let with_subject = |subject: SubjectFilter| {
        read(RelationshipFilter {
            optional_subject_filter: Some(subject),
            ..type_filter("doc")
        })
    };
    assert_eq!(
        with_subject(SubjectFilter {
            optional_subject_id: Some(id("alice")),
            ..subject_filter("user")
        }),
        ["doc:a#viewer@user:alice", "doc:ab#viewer@user:alice"]
    );
    assert_eq!(
        with_subject(SubjectFilter {
            optional_subject_id: Some(ObjectId::wildcard()),
            ..subject_filter("user")
        }),
        ["doc:a#viewer@user:*"]
    );
    assert_eq!(
        with_subject(subject_filter("group")),
        [
            "doc:a#viewer@group:eng",
            "doc:a#viewer@group:eng#member",
            "doc:b#viewer@group:ops#admin",
        ]
    );
    assert_eq!(
        with_subject(SubjectFilter {
            optional_relation: Some(RelationFilter { relation: None }),
            ..subject_filter("group")
        }),
        ["doc:a#viewer@group:eng"]
    );
    assert_eq!(
        with_subject(SubjectFilter {
            optional_relation: Some(RelationFilter {
                relation: Some(relation("member")),
            }),
            ..subject_filter("group")
        }),
        ["doc:a#viewer@group:eng#member"]
    );
    // Without a resource type: a subject-only filter spans types, in resource order.
    assert_eq!(
        read(RelationshipFilter {
            optional_subject_filter: Some(SubjectFilter {
                optional_subject_id: Some(id("alice")),
                ..subject_filter("user")
            }),
            ..RelationshipFilter::default()
        }),
        [
            "doc:a#viewer@user:alice",
            "doc:ab#viewer@user:alice",
            "doc/sub:a#viewer@user:alice",
            "docs:a#viewer@user:alice",
            "folder:a#viewer@user:alice",
        ]
    );
    assert!(read(type_filter("nothing")).is_empty());
    assert!(
        read(RelationshipFilter {
            optional_resource_id_prefix: Some("c".to_owned()),
            ..type_filter("doc")
        })
        .is_empty()
    );
}

/// The forward index: many ids in one call (unsorted, duplicated), relation and subject
/// constraints, no bleeding into types that share a prefix, resource order.
pub fn resource_reads(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    let revision = ctx.touch_all(FIXTURE);
    let snapshot = ctx.snapshot(revision);
    let doc = object_type("doc");
    let viewer = relation("viewer");
    let read = |query: ResourceQuery<'_>, page: Page<'_>| {
        let mut out = Vec::new();
        let n_read = snapshot.read_resources(&query, page, &mut out).unwrap();
        assert_eq!(n_read, out.len());
        texts(&out)
    };

    let ids = [id("b"), id("a"), id("zzz"), id("b")];
    assert_eq!(
        read(
            ResourceQuery {
                resource_ids: &ids,
                relation: Some(&viewer),
                ..ResourceQuery::new(&doc)
            },
            Page::ALL
        ),
        [
            "doc:a#viewer@group:eng",
            "doc:a#viewer@group:eng#member",
            "doc:a#viewer@user:*",
            "doc:a#viewer@user:alice",
            "doc:b#viewer@group:ops#admin",
        ]
    );
    let alice = SubjectFilter {
        optional_subject_id: Some(id("alice")),
        ..subject_filter("user")
    };
    assert_eq!(
        read(
            ResourceQuery {
                subject: Some(&alice),
                ..ResourceQuery::new(&doc)
            },
            Page::ALL
        ),
        ["doc:a#viewer@user:alice", "doc:ab#viewer@user:alice"]
    );
    let ids = [id("a")];
    assert_eq!(
        read(
            ResourceQuery {
                resource_ids: &ids,
                ..ResourceQuery::new(&doc)
            },
            Page::first(2)
        ),
        ["doc:a#editor@user:bob", "doc:a#viewer@group:eng"]
    );
    let docs = object_type("docs");
    assert_eq!(
        read(ResourceQuery::new(&docs), Page::ALL),
        ["docs:a#viewer@user:alice"]
    );
    assert!(read(ResourceQuery::new(&doc), Page::first(0)).is_empty());

    // Appending: the buffer keeps what it had.
    let mut out: Vec<Relationship> = vec!["doc:keep#viewer@user:me".parse().unwrap()];
    let n_read = snapshot
        .read_resources(&ResourceQuery::new(&docs), Page::ALL, &mut out)
        .unwrap();
    assert_eq!(n_read, 1);
    assert_eq!(
        texts(&out),
        ["doc:keep#viewer@user:me", "docs:a#viewer@user:alice"]
    );
}

/// The reverse index: by subject type and ids (the wildcard only as itself), subject
/// relation, resource type and relation, in subject order.
pub fn subject_reads(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    let revision = ctx.touch_all(FIXTURE);
    let snapshot = ctx.snapshot(revision);
    let user = object_type("user");
    let group = object_type("group");
    let doc = object_type("doc");
    let viewer = relation("viewer");
    let read = |query: SubjectQuery<'_>, page: Page<'_>| {
        let mut out = Vec::new();
        snapshot.read_subjects(&query, page, &mut out).unwrap();
        texts(&out)
    };

    assert_eq!(
        read(SubjectQuery::new(&user), Page::ALL),
        [
            "doc:a#viewer@user:*",
            "doc:a#viewer@user:alice",
            "doc:ab#viewer@user:alice",
            "doc/sub:a#viewer@user:alice",
            "docs:a#viewer@user:alice",
            "folder:a#viewer@user:alice",
            "doc:a#editor@user:bob",
        ]
    );
    let ids = [id("bob"), id("*"), id("bob")];
    assert_eq!(
        read(
            SubjectQuery {
                subject_ids: &ids,
                ..SubjectQuery::new(&user)
            },
            Page::ALL
        ),
        ["doc:a#viewer@user:*", "doc:a#editor@user:bob"]
    );
    let ids = [id("alice")];
    assert_eq!(
        read(
            SubjectQuery {
                subject_ids: &ids,
                resource_type: Some(&doc),
                relation: Some(&viewer),
                ..SubjectQuery::new(&user)
            },
            Page::ALL
        ),
        ["doc:a#viewer@user:alice", "doc:ab#viewer@user:alice"]
    );
    let member = RelationFilter {
        relation: Some(relation("member")),
    };
    let ellipsis = RelationFilter { relation: None };
    assert_eq!(
        read(
            SubjectQuery {
                subject_relation: Some(&member),
                ..SubjectQuery::new(&group)
            },
            Page::ALL
        ),
        ["doc:a#viewer@group:eng#member"]
    );
    assert_eq!(
        read(
            SubjectQuery {
                subject_relation: Some(&ellipsis),
                ..SubjectQuery::new(&group)
            },
            Page::ALL
        ),
        ["doc:a#viewer@group:eng"]
    );
    assert_eq!(
        read(SubjectQuery::new(&group), Page::first(2)),
        ["doc:a#viewer@group:eng", "doc:a#viewer@group:eng#member"]
    );
}

/// One of the read paths, as a function of a snapshot and a page.
type ReadFn<'a> = &'a dyn Fn(&dyn Snapshot, Page<'_>, &mut Vec<Relationship>) -> usize;

/// Reads all pages of size `page_size` with cursors at one snapshot, for every read path;
/// returns the concatenation in order.
fn paginate(snapshot: &dyn Snapshot, page_size: usize, read: ReadFn<'_>) -> Vec<Relationship> {
    let mut all: Vec<Relationship> = Vec::new();
    loop {
        let mut page_rels = Vec::new();
        let cursor = all.last().map(|rel| rel.key().clone());
        let page = Page {
            after: cursor.as_ref(),
            limit: Some(page_size),
        };
        let n_read = read(snapshot, page, &mut page_rels);
        assert!(n_read <= page_size);
        assert_eq!(n_read, page_rels.len());
        if let (Some(cursor), Some(first)) = (&cursor, page_rels.first()) {
            assert_ne!(first.key(), cursor, "a page repeated its cursor");
        }
        all.extend(page_rels);
        if n_read < page_size {
            return all;
        }
    }
}

/// Pages concatenate to the full result in the documented order, for every read path and
/// page size, and a cursor need not name an existing relationship.
pub fn pagination_order_and_cursors(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    let mut texts_in: Vec<String> = Vec::new();
    for doc_idx in [3, 1, 4, 0, 2] {
        for relation_name in ["viewer", "editor"] {
            for user_idx in [2, 0, 1] {
                texts_in.push(format!("doc:d{doc_idx}#{relation_name}@user:u{user_idx}"));
            }
        }
    }
    texts_in.push("doc:d1#viewer@group:g#member".to_owned());
    texts_in.push("doc:d1#viewer@group:g".to_owned());
    let refs: Vec<&str> = texts_in.iter().map(String::as_str).collect();
    let revision = ctx.touch_all(&refs);
    let snapshot = ctx.snapshot(revision);
    let doc = object_type("doc");
    let user = object_type("user");
    let ids = [id("d4"), id("d1"), id("d2")];

    let by_filter = |snapshot: &dyn Snapshot, page: Page<'_>, out: &mut Vec<Relationship>| {
        snapshot
            .read_filtered(&type_filter("doc"), page, out)
            .unwrap()
    };
    let by_resource = |snapshot: &dyn Snapshot, page: Page<'_>, out: &mut Vec<Relationship>| {
        let query = ResourceQuery {
            resource_ids: &ids,
            ..ResourceQuery::new(&doc)
        };
        snapshot.read_resources(&query, page, out).unwrap()
    };
    let by_subject = |snapshot: &dyn Snapshot, page: Page<'_>, out: &mut Vec<Relationship>| {
        snapshot
            .read_subjects(&SubjectQuery::new(&user), page, out)
            .unwrap()
    };
    let cases: [(ReadFn<'_>, ReadOrder, usize); 3] = [
        (&by_filter, ReadOrder::Resource, 32),
        (&by_resource, ReadOrder::Resource, 20),
        (&by_subject, ReadOrder::Subject, 30),
    ];
    for (read, order, n_expected) in cases {
        let full = paginate(snapshot.as_ref(), usize::MAX, read);
        assert_eq!(full.len(), n_expected);
        assert!(
            full.windows(2)
                .all(|pair| order.compare(pair[0].key(), pair[1].key()).is_lt()),
            "not in {order:?} order: {:?}",
            texts(&full)
        );
        for page_size in [1, 3, 7, n_expected, n_expected + 1] {
            assert_eq!(
                paginate(snapshot.as_ref(), page_size, read),
                full,
                "page size {page_size}"
            );
        }
    }
    // A cursor between existing keys resumes at the next key.
    let cursor = "doc:d1#viewer@user:a".parse().unwrap();
    let mut out = Vec::new();
    by_filter(snapshot.as_ref(), Page::after(&cursor, Some(2)), &mut out);
    assert_eq!(
        texts(&out),
        ["doc:d1#viewer@user:u0", "doc:d1#viewer@user:u1"]
    );
}

/// A cursor taken at one revision resumes correctly at a later one: writes before the
/// cursor are not returned again, writes after it appear, deleted ones vanish, and the old
/// revision still pages exactly as before.
pub fn pagination_across_concurrent_writes(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    let initial: Vec<String> = (0..20)
        .map(|idx| format!("doc:d{idx:02}#viewer@user:u"))
        .collect();
    let refs: Vec<&str> = initial.iter().map(String::as_str).collect();
    let r1 = ctx.touch_all(&refs);
    let old = ctx.snapshot(r1);

    let mut first_page = Vec::new();
    old.read_filtered(&type_filter("doc"), Page::first(5), &mut first_page)
        .unwrap();
    let cursor = first_page.last().unwrap().key().clone();
    assert_eq!(cursor.to_string(), "doc:d04#viewer@user:u");

    let r2 = ctx.write(&[
        create("doc:d00a#viewer@user:u"),
        create("doc:d04a#viewer@user:u"),
        create("doc:d99#viewer@user:u"),
        ostiary_store::RelationshipUpdate::Delete("doc:d05#viewer@user:u".parse().unwrap()),
        touch("doc:d06#viewer@user:u[cav]"),
    ]);
    let new = ctx.snapshot(r2);
    let mut rest_new = Vec::new();
    new.read_filtered(
        &type_filter("doc"),
        Page::after(&cursor, None),
        &mut rest_new,
    )
    .unwrap();
    let mut expected: Vec<String> = vec![
        "doc:d04a#viewer@user:u".to_owned(),
        "doc:d06#viewer@user:u[cav]".to_owned(),
    ];
    expected.extend((7..20).map(|idx| format!("doc:d{idx:02}#viewer@user:u")));
    expected.push("doc:d99#viewer@user:u".to_owned());
    assert_eq!(texts(&rest_new), expected);

    let mut rest_old = Vec::new();
    old.read_filtered(
        &type_filter("doc"),
        Page::after(&cursor, None),
        &mut rest_old,
    )
    .unwrap();
    assert_eq!(texts(&rest_old), initial[5..]);
    assert_eq!(read_all(old.as_ref()), initial);
}

/// A relationship is invisible from its expiration on (at any revision, through every read
/// and to preconditions); a snapshot keeps the time it was opened at.
pub fn expired_relationships_invisible(factory: Factory<'_>) {
    let ctx = Ctx::new(factory);
    let revision = ctx.touch_all(&[
        "doc:a#viewer@user:u1[expiration:2025-01-01T00:00:10Z]",
        "doc:a#viewer@user:u2[expiration:2025-01-01T00:00:20Z]",
        "doc:a#viewer@user:u3",
    ]);
    let doc = object_type("doc");
    let user = object_type("user");
    let visible = |snapshot: &dyn Snapshot| {
        let mut by_resource = Vec::new();
        snapshot
            .read_resources(&ResourceQuery::new(&doc), Page::ALL, &mut by_resource)
            .unwrap();
        let mut by_subject = Vec::new();
        snapshot
            .read_subjects(&SubjectQuery::new(&user), Page::ALL, &mut by_subject)
            .unwrap();
        let by_filter = read_all(snapshot);
        assert_eq!(texts(&by_resource), by_filter);
        assert_eq!(texts(&by_subject), by_filter);
        by_filter
    };
    let opened_early = ctx.snapshot(revision);
    assert_eq!(visible(opened_early.as_ref()).len(), 3);

    ctx.advance(Duration::from_secs(10));
    let at_expiry = ctx.snapshot(revision);
    assert_eq!(
        visible(at_expiry.as_ref()),
        [
            "doc:a#viewer@user:u2[expiration:2025-01-01T00:00:20Z]",
            "doc:a#viewer@user:u3",
        ]
    );
    assert_eq!(
        visible(opened_early.as_ref()).len(),
        3,
        "a snapshot keeps its now"
    );

    ctx.advance(Duration::from_secs(15));
    let later = ctx.touch_all(&["doc:b#viewer@user:u4"]);
    assert_eq!(
        visible(ctx.snapshot(revision).as_ref()),
        ["doc:a#viewer@user:u3"]
    );
    assert_eq!(
        visible(ctx.snapshot(later).as_ref()),
        ["doc:a#viewer@user:u3", "doc:b#viewer@user:u4"]
    );
    let must_match_u1 = Precondition::MustMatch(RelationshipFilter {
        optional_subject_filter: Some(SubjectFilter {
            optional_subject_id: Some(id("u1")),
            ..subject_filter("user")
        }),
        ..type_filter("doc")
    });
    let res = ctx
        .store()
        .write_relationships(&ctx.tenant, &[must_match_u1], &[]);
    assert!(res.is_err());
}
