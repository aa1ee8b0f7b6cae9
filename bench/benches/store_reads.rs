//! Criterion benchmarks of `RocksDatastore` reads on a seeded data set: point reads (a
//! Check-style lookup of one relationship), 1k-subject userset range scans and reverse
//! lookups by subject.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and benchmarks report failure by panicking"
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ostiary_store::{DatastoreExt, DatastoreOptions, Page, ResourceQuery, SubjectQuery};
use ostiary_store_rocks::{RocksConfig, RocksDatastore};
use ostiary_types::{ObjectId, ObjectType, RelationName, Relationship, SubjectFilter, TenantId};

const N_DOCS: u64 = 20_000;
const N_USERS: u64 = 10_000;
const VIEWERS_PER_DOC: u64 = 5;
const N_GROUPS: u64 = 100;
const MEMBERS_PER_GROUP: u64 = 1_000;

/// xorshift64*: a seeded, dependency-free generator.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % bound
    }
}

fn dataset() -> Vec<Relationship> {
    let mut rng = Rng(42);
    let mut rels = Vec::new();
    for doc in 0..N_DOCS {
        for _ in 0..VIEWERS_PER_DOC {
            let user = rng.below(N_USERS);
            rels.push(format!("doc:d{doc}#viewer@user:u{user}").parse().unwrap());
        }
        let group = rng.below(N_GROUPS);
        rels.push(
            format!("doc:d{doc}#viewer@group:g{group}#member")
                .parse()
                .unwrap(),
        );
    }
    for group in 0..N_GROUPS {
        for member in 0..MEMBERS_PER_GROUP {
            let user = (group * 37 + member * 7) % N_USERS;
            rels.push(
                format!("group:g{group}#member@user:u{user}")
                    .parse()
                    .unwrap(),
            );
        }
    }
    rels
}

fn reads(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksDatastore::open(
        &RocksConfig::new(dir.path().join("data")),
        DatastoreOptions::default(),
    )
    .unwrap();
    let tenant = TenantId::default_tenant();
    store
        .bulk_load(&tenant, dataset(), RocksDatastore::DEFAULT_BULK_BATCH)
        .unwrap();
    store.compact().unwrap();
    let snapshot = store.head_snapshot(&tenant).unwrap();
    let doc = ObjectType::new("doc").unwrap();
    let group = ObjectType::new("group").unwrap();
    let user = ObjectType::new("user").unwrap();
    let viewer = RelationName::new("viewer").unwrap();
    let member = RelationName::new("member").unwrap();
    let mut rng = Rng(7);
    let mut out = Vec::with_capacity(1_024);

    c.bench_function("rocks/point_read", |b| {
        b.iter(|| {
            let ids = [ObjectId::new(&format!("d{}", rng.below(N_DOCS))).unwrap()];
            let subject = SubjectFilter {
                optional_subject_id: Some(
                    ObjectId::new(&format!("u{}", rng.below(N_USERS))).unwrap(),
                ),
                ..SubjectFilter::new(user.clone())
            };
            let query = ResourceQuery {
                resource_ids: &ids,
                relation: Some(&viewer),
                subject: Some(&subject),
                ..ResourceQuery::new(&doc)
            };
            out.clear();
            black_box(
                snapshot
                    .read_resources(&query, Page::ALL, &mut out)
                    .unwrap(),
            );
        });
    });

    c.bench_function("rocks/userset_scan_1k", |b| {
        b.iter(|| {
            let ids = [ObjectId::new(&format!("g{}", rng.below(N_GROUPS))).unwrap()];
            let query = ResourceQuery {
                resource_ids: &ids,
                relation: Some(&member),
                ..ResourceQuery::new(&group)
            };
            out.clear();
            let n = snapshot
                .read_resources(&query, Page::ALL, &mut out)
                .unwrap();
            assert_eq!(n, MEMBERS_PER_GROUP as usize);
        });
    });

    c.bench_function("rocks/reverse_lookup", |b| {
        b.iter(|| {
            let ids = [ObjectId::new(&format!("u{}", rng.below(N_USERS))).unwrap()];
            let query = SubjectQuery {
                subject_ids: &ids,
                ..SubjectQuery::new(&user)
            };
            out.clear();
            black_box(snapshot.read_subjects(&query, Page::ALL, &mut out).unwrap());
        });
    });
    drop(snapshot);
    drop(store);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = reads
}
criterion_main!(benches);
