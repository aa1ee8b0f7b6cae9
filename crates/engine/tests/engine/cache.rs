//! The cross-request Check cache: hits repeat answers at one revision, a new revision is
//! evaluated afresh, and answers that may change at one revision (request caveat context,
//! expiring relationships) are never cached.

use std::sync::Arc;

use ostiary_engine::{CheckItem, Engine, EngineSchema, Permissionship};
use ostiary_store::{DatastoreExt, RelationshipUpdate};
use ostiary_store_mem::MemDatastore;
use ostiary_types::{Relationship, TenantId};
use serde_json::{Map, json};

fn schema(text: &str) -> EngineSchema {
    let compiled = ostiary_schema::compile_str("s.zed", text).unwrap().schema;
    EngineSchema::new(Arc::new(compiled)).unwrap()
}

fn touch(store: &MemDatastore, rel: &str) {
    let rel: Relationship = rel.parse().unwrap();
    store
        .write_relationships(
            &TenantId::default_tenant(),
            &[],
            &[RelationshipUpdate::Touch(rel)],
        )
        .unwrap();
}

fn check(
    engine: &Engine,
    store: &MemDatastore,
    schema: &EngineSchema,
    text: &str,
) -> Permissionship {
    check_with(engine, store, schema, text, &Map::new())
}

fn check_with(
    engine: &Engine,
    store: &MemDatastore,
    schema: &EngineSchema,
    text: &str,
    context: &Map<String, serde_json::Value>,
) -> Permissionship {
    let key: ostiary_types::RelationshipKey = text.parse().unwrap();
    let snapshot = store.head_snapshot(&TenantId::default_tenant()).unwrap();
    engine
        .check(
            snapshot.as_ref(),
            schema,
            key.resource(),
            key.relation(),
            key.subject(),
            context,
        )
        .unwrap()
        .permissionship
}

const DOCS: &str = "caveat small(n int) { n < 10 }
    definition user {}
    definition group {
        relation member: user | group#member
    }
    definition doc {
        relation viewer: user | group#member | user with small
        permission view = viewer
    }";

#[test]
fn repeated_checks_hit_and_new_revisions_miss() {
    let schema = schema(DOCS);
    let store = MemDatastore::default();
    let engine = Engine::default().with_check_cache(1 << 20);
    touch(&store, "group:eng#member@user:alice");
    touch(&store, "doc:readme#viewer@group:eng#member");
    for _ in 0..3 {
        assert_eq!(
            check(&engine, &store, &schema, "doc:readme#view@user:alice"),
            Permissionship::Has
        );
        assert_eq!(
            check(&engine, &store, &schema, "doc:readme#view@user:bob"),
            Permissionship::No
        );
    }
    let stats = engine.cache_stats().unwrap();
    assert_eq!((stats.misses, stats.hits, stats.entries), (2, 4, 2));
    // A cached answer costs no dispatch; an evaluated one reports the nodes it walked.
    let snapshot = store.head_snapshot(&TenantId::default_tenant()).unwrap();
    let key: ostiary_types::RelationshipKey = "doc:readme#view@user:alice".parse().unwrap();
    let cached = engine
        .check(
            snapshot.as_ref(),
            &schema,
            key.resource(),
            key.relation(),
            key.subject(),
            &Map::new(),
        )
        .unwrap();
    assert_eq!(cached.dispatch_count, 0);
    let fresh = Engine::default()
        .check(
            snapshot.as_ref(),
            &schema,
            key.resource(),
            key.relation(),
            key.subject(),
            &Map::new(),
        )
        .unwrap();
    // view, viewer, group:eng#member.
    assert_eq!(fresh.dispatch_count, 3);
    // A write makes a new revision: the answer is evaluated again and sees it.
    touch(&store, "group:eng#member@user:bob");
    assert_eq!(
        check(&engine, &store, &schema, "doc:readme#view@user:bob"),
        Permissionship::Has
    );
    assert_eq!(engine.cache_stats().unwrap().misses, 3);
    // Clones share the cache.
    let clone = engine.clone();
    assert_eq!(
        check(&clone, &store, &schema, "doc:readme#view@user:bob"),
        Permissionship::Has
    );
    assert_eq!(engine.cache_stats().unwrap().hits, 6);
    // CheckBulk uses it too.
    let snapshot = store.head_snapshot(&TenantId::default_tenant()).unwrap();
    let item = CheckItem {
        resource: "doc:readme".parse().unwrap(),
        permission: "view".parse().unwrap(),
        subject: "user:alice".parse().unwrap(),
        context: Map::new(),
    };
    let results = engine.check_bulk(snapshot.as_ref(), &schema, &[item.clone(), item]);
    assert!(
        results
            .iter()
            .all(|res| res.as_ref().unwrap().permissionship == Permissionship::Has)
    );
    let stats = engine.cache_stats().unwrap();
    assert_eq!((stats.misses, stats.hits), (4, 7));
}

#[test]
fn context_dependent_and_expiring_answers_are_not_cached() {
    let schema_text = DOCS;
    let schema_caveats = schema(schema_text);
    let store = MemDatastore::default();
    let engine = Engine::default().with_check_cache(1 << 20);
    touch(&store, "doc:readme#viewer@user:carol[small]");
    let context = json!({"n": 3}).as_object().unwrap().clone();
    for _ in 0..2 {
        assert_eq!(
            check_with(
                &engine,
                &store,
                &schema_caveats,
                "doc:readme#view@user:carol",
                &context
            ),
            Permissionship::Has
        );
    }
    assert_eq!(engine.cache_stats().unwrap().entries, 0);
    // Without context the conditional answer is fixed at the revision: cached.
    let conditional = check(
        &engine,
        &store,
        &schema_caveats,
        "doc:readme#view@user:carol",
    );
    assert!(matches!(conditional, Permissionship::Conditional { .. }));
    assert_eq!(engine.cache_stats().unwrap().entries, 1);

    let expiring = schema(
        "use expiration
         definition user {}
         definition doc {
             relation viewer: user with expiration
             permission view = viewer
         }",
    );
    let store = MemDatastore::default();
    let engine = Engine::default().with_check_cache(1 << 20);
    touch(&store, "doc:readme#viewer@user:dave");
    assert_eq!(
        check(&engine, &store, &expiring, "doc:readme#view@user:dave"),
        Permissionship::Has
    );
    let stats = engine.cache_stats().unwrap();
    assert_eq!((stats.entries, stats.hits, stats.misses), (0, 0, 0));
}

#[test]
fn an_engine_without_a_cache_reports_none() {
    assert!(Engine::default().cache_stats().is_none());
    assert!(
        Engine::default()
            .with_check_cache(0)
            .cache_stats()
            .is_none()
    );
}
