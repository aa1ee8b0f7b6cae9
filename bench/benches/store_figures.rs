//! One-shot storage figures for `RocksDatastore` (not criterion: each is one long run):
//! bulk import rate, bytes on disk per relationship after compaction, durable
//! single-relationship writes per second with 1 and 8 writers, and RSS.
//!
//! `OSTIARY_BENCH_BULK` sets the number of imported relationships (default 1,000,000).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and benchmarks report failure by panicking"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ostiary_store::{Datastore, DatastoreExt, DatastoreOptions, RelationshipUpdate};
use ostiary_store_rocks::{RocksConfig, RocksDatastore};
use ostiary_types::{Relationship, TenantId};

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

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with(field))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

fn durable_writes(store: &Arc<RocksDatastore>, n_writers: usize, duration: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let n_writes = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..n_writers)
        .map(|writer_idx| {
            let store = Arc::clone(store);
            let stop = Arc::clone(&stop);
            let n_writes = Arc::clone(&n_writes);
            std::thread::spawn(move || {
                let tenant = TenantId::default_tenant();
                let mut write_idx = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let rel: Relationship = format!(
                        "wdoc:w{n_writers}_{writer_idx}_{write_idx}#viewer@user:u{write_idx}"
                    )
                    .parse()
                    .unwrap();
                    store
                        .write_relationships(&tenant, &[], &[RelationshipUpdate::Touch(rel)])
                        .unwrap();
                    write_idx += 1;
                    n_writes.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().unwrap();
    }
    n_writes.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is understood.
    let n_bulk: u64 = std::env::var("OSTIARY_BENCH_BULK")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        RocksDatastore::open(
            &RocksConfig::new(dir.path().join("data")),
            DatastoreOptions::default(),
        )
        .unwrap(),
    );
    let tenant = TenantId::default_tenant();

    // Bulk import: documents with 10 viewers each, drawn from 1M users.
    let mut rng = Rng(42);
    let rels = (0..n_bulk).map(move |idx| {
        let user = rng.below(1_000_000);
        format!("document:doc{}#viewer@user:user{user}", idx / 10)
            .parse::<Relationship>()
            .unwrap()
    });
    let started = Instant::now();
    let stats = store
        .bulk_load(&tenant, rels, RocksDatastore::DEFAULT_BULK_BATCH)
        .unwrap();
    let elapsed = started.elapsed();
    eprintln!(
        "bulk import: {} relationships in {:.2?} = {:.0} relationships/s (parsing included)",
        stats.n_relationships,
        elapsed,
        stats.n_relationships as f64 / elapsed.as_secs_f64()
    );
    eprintln!("rss after import: {} MiB", rss_kib("VmRSS:") / 1024);

    let started = Instant::now();
    store.compact().unwrap();
    let sizes = store.sst_bytes().unwrap();
    eprintln!("compaction: {:.2?}", started.elapsed());
    let per_rel = |bytes: u64| bytes as f64 / stats.n_relationships as f64;
    let mut total = 0;
    let mut indexes = 0;
    for (name, bytes) in &sizes {
        eprintln!(
            "  {name}: {bytes} bytes = {:.1} bytes/relationship",
            per_rel(*bytes)
        );
        total += bytes;
        if matches!(*name, "forward" | "reverse") {
            indexes += bytes;
        }
    }
    eprintln!(
        "bytes on disk per relationship: {:.1} for both indexes, {:.1} with the change log",
        per_rel(indexes),
        per_rel(total)
    );

    for n_writers in [1, 8] {
        let rate = durable_writes(&store, n_writers, Duration::from_secs(3));
        eprintln!("durable single-relationship writes, {n_writers} writer(s): {rate:.0}/s");
    }
    eprintln!(
        "rss: {} MiB (peak {} MiB)",
        rss_kib("VmRSS:") / 1024,
        rss_kib("VmHWM:") / 1024
    );
    let head = store.head_revision().unwrap();
    eprintln!("head revision: {head}");
}
