//! Criterion benchmarks of the evaluation engine over `MemDatastore`: Check on deep nesting
//! (folders 10 deep holding groups 6 deep), wide fan-out (a group of 100k members),
//! exclusion and intersection, caveats, LookupResources returning 10k resources, and
//! LookupSubjects over the 100k-member group.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and benchmarks report failure by panicking"
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use ostiary_engine::{Engine, EngineSchema, Permissionship};
use ostiary_store::{DatastoreExt, RelationshipUpdate, Snapshot};
use ostiary_store_mem::MemDatastore;
use ostiary_types::{ObjectRef, ObjectType, RelationName, SubjectRef, TenantId};
use serde_json::{Map, Value as Json, json};

const SCHEMA: &str = "
caveat within_limit(limit int, used int) {
    used < limit
}

definition user {}

definition group {
    relation member: user | group#member
}

definition folder {
    relation parent: folder
    relation viewer: user | group#member
    permission view = viewer + parent->view
}

definition doc {
    relation folder: folder
    relation viewer: user | group#member
    relation editor: user | group#member
    relation banned: user | group#member
    relation metered: user with within_limit
    permission view = viewer + editor + folder->view
    permission allowed = view - banned
    permission both = view & editor
    permission metered_view = metered & view
}
";

const N_WIDE: usize = 100_000;
const N_DOCS: usize = 10_000;

/// The data set: one of each shape, all in one store.
fn relationships() -> Vec<String> {
    let mut rels = Vec::new();
    // Folders 10 deep: f9 is the deepest, f0 the root; the root's viewers are a group
    // nested 6 deep (g0 contains g1 ... contains g5, which holds the user).
    for depth in 1..10 {
        rels.push(format!("folder:f{depth}#parent@folder:f{}", depth - 1));
    }
    rels.push("folder:f0#viewer@group:g0#member".to_owned());
    for depth in 0..5 {
        rels.push(format!("group:g{depth}#member@group:g{}#member", depth + 1));
    }
    rels.push("group:g5#member@user:deep".to_owned());
    rels.push("doc:deep#folder@folder:f9".to_owned());
    // Wide fan-out: one group of 100k users viewing one document.
    for member in 0..N_WIDE {
        rels.push(format!("group:big#member@user:u{member}"));
    }
    rels.push("doc:wide#viewer@group:big#member".to_owned());
    // Exclusion and intersection on the wide group.
    rels.push("doc:wide#banned@user:u7".to_owned());
    rels.push("doc:wide#editor@user:u8".to_owned());
    // Caveats.
    rels.push(r#"doc:wide#metered@user:u9[within_limit:{"limit":10}]"#.to_owned());
    // 10k documents in one folder that `reader` can view.
    rels.push("folder:shared#viewer@user:reader".to_owned());
    for doc in 0..N_DOCS {
        rels.push(format!("doc:d{doc}#folder@folder:shared"));
    }
    rels
}

struct Setup {
    engine: Engine,
    schema: EngineSchema,
    snapshot: Arc<dyn Snapshot>,
}

fn setup() -> Setup {
    let compiled = ostiary_schema::compile_str("bench.zed", SCHEMA)
        .unwrap()
        .schema;
    let schema = EngineSchema::new(Arc::new(compiled)).unwrap();
    let store = MemDatastore::default();
    let tenant = TenantId::default_tenant();
    let updates: Vec<RelationshipUpdate> = relationships()
        .iter()
        .map(|line| RelationshipUpdate::Touch(line.parse().unwrap()))
        .collect();
    for chunk in updates.chunks(10_000) {
        store.write_relationships(&tenant, &[], chunk).unwrap();
    }
    let snapshot = store.head_snapshot(&tenant).unwrap();
    Setup {
        engine: Engine::default(),
        schema,
        snapshot,
    }
}

fn object(text: &str) -> ObjectRef {
    text.parse().unwrap()
}

fn relation(text: &str) -> RelationName {
    text.parse().unwrap()
}

fn subject(text: &str) -> SubjectRef {
    text.parse().unwrap()
}

impl Setup {
    fn check(
        &self,
        resource: &str,
        permission: &str,
        who: &str,
        context: &Map<String, Json>,
    ) -> Permissionship {
        self.engine
            .check(
                self.snapshot.as_ref(),
                &self.schema,
                &object(resource),
                &relation(permission),
                &subject(who),
                context,
            )
            .unwrap()
            .permissionship
    }
}

fn benches(c: &mut Criterion) {
    let setup = setup();
    let empty = Map::new();
    let mut group = c.benchmark_group("engine");
    group.sample_size(20);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));

    // Sanity: the answers the benchmarks time.
    let cases: [(&str, &str, &str, Permissionship); 7] = [
        ("doc:deep", "view", "user:deep", Permissionship::Has),
        ("doc:deep", "view", "user:nobody", Permissionship::No),
        ("doc:wide", "view", "user:u54321", Permissionship::Has),
        ("doc:wide", "view", "user:nobody", Permissionship::No),
        ("doc:wide", "allowed", "user:u7", Permissionship::No),
        ("doc:wide", "allowed", "user:u6", Permissionship::Has),
        ("doc:wide", "both", "user:u8", Permissionship::Has),
    ];
    for (resource, permission, who, want) in &cases {
        assert_eq!(
            setup.check(resource, permission, who, &empty),
            *want,
            "{resource}#{permission}@{who}"
        );
    }

    group.bench_function("check/deep_folders10_groups6/allowed", |b| {
        b.iter(|| black_box(setup.check("doc:deep", "view", "user:deep", &empty)));
    });
    group.bench_function("check/deep_folders10_groups6/denied", |b| {
        b.iter(|| black_box(setup.check("doc:deep", "view", "user:nobody", &empty)));
    });
    group.bench_function("check/wide_group100k/allowed", |b| {
        b.iter(|| black_box(setup.check("doc:wide", "view", "user:u54321", &empty)));
    });
    group.bench_function("check/wide_group100k/denied", |b| {
        b.iter(|| black_box(setup.check("doc:wide", "view", "user:nobody", &empty)));
    });
    group.bench_function("check/exclusion/banned", |b| {
        b.iter(|| black_box(setup.check("doc:wide", "allowed", "user:u7", &empty)));
    });
    group.bench_function("check/exclusion/allowed", |b| {
        b.iter(|| black_box(setup.check("doc:wide", "allowed", "user:u6", &empty)));
    });
    group.bench_function("check/intersection/allowed", |b| {
        b.iter(|| black_box(setup.check("doc:wide", "both", "user:u8", &empty)));
    });
    group.bench_function("check/intersection/denied", |b| {
        b.iter(|| black_box(setup.check("doc:wide", "both", "user:u6", &empty)));
    });
    let used = json!({"used": 3}).as_object().unwrap().clone();
    assert_eq!(
        setup.check("doc:wide", "metered_view", "user:u9", &used),
        Permissionship::Has
    );
    group.bench_function("check/caveat/evaluated", |b| {
        b.iter(|| black_box(setup.check("doc:wide", "metered_view", "user:u9", &used)));
    });
    group.bench_function("check/caveat/missing_context", |b| {
        b.iter(|| black_box(setup.check("doc:wide", "metered_view", "user:u9", &empty)));
    });

    let doc_type: ObjectType = "doc".parse().unwrap();
    let reader = subject("user:reader");
    let view = relation("view");
    let n_found = setup
        .engine
        .lookup_resources(
            setup.snapshot.as_ref(),
            &setup.schema,
            &doc_type,
            &view,
            &reader,
            &empty,
            None,
            None,
        )
        .unwrap()
        .results
        .len();
    assert_eq!(n_found, N_DOCS);
    group.bench_function("lookup_resources/10k_results", |b| {
        b.iter(|| {
            black_box(
                setup
                    .engine
                    .lookup_resources(
                        setup.snapshot.as_ref(),
                        &setup.schema,
                        &doc_type,
                        &view,
                        &reader,
                        &empty,
                        None,
                        None,
                    )
                    .unwrap(),
            )
        });
    });

    let user_type: ObjectType = "user".parse().unwrap();
    let wide = object("doc:wide");
    let allowed = relation("allowed");
    let found = setup
        .engine
        .lookup_subjects(
            setup.snapshot.as_ref(),
            &setup.schema,
            &wide,
            &allowed,
            &user_type,
            None,
            &empty,
        )
        .unwrap();
    assert_eq!(found.len(), N_WIDE - 1);
    group.bench_function("lookup_subjects/wide_group100k_minus_banned", |b| {
        b.iter(|| {
            black_box(
                setup
                    .engine
                    .lookup_subjects(
                        setup.snapshot.as_ref(),
                        &setup.schema,
                        &wide,
                        &allowed,
                        &user_type,
                        None,
                        &empty,
                    )
                    .unwrap(),
            )
        });
    });
    let deep = object("doc:deep");
    group.bench_function("lookup_subjects/deep_folders10_groups6", |b| {
        b.iter(|| {
            black_box(
                setup
                    .engine
                    .lookup_subjects(
                        setup.snapshot.as_ref(),
                        &setup.schema,
                        &deep,
                        &view,
                        &user_type,
                        None,
                        &empty,
                    )
                    .unwrap(),
            )
        });
    });
    group.finish();
}

criterion_group!(engine, benches);
criterion_main!(engine);
