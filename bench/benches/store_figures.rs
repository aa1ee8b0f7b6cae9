//! One-shot storage figures for `RocksDatastore` (not criterion: each is one long run):
//! bulk import rate through the SST path (`bulk_import`) and the write-batch path
//! (`bulk_load`) with a phase breakdown, bytes on disk per relationship after compaction,
//! durable single-relationship writes per second with 1, 8, 64 and 256 concurrent writers
//! (with the group-commit figures: fsyncs, their latency, the group size), the raw fsync
//! latency of the disk, and RSS.
//!
//! Environment: `OSTIARY_BENCH_BULK` sets the number of imported relationships (default
//! 1,000,000); `OSTIARY_BENCH_BATCH_PATH=0` skips the write-batch path;
//! `OSTIARY_BENCH_WRITERS` lists the writer counts (default `1,8,64,256`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and benchmarks report failure by panicking"
)]

use std::io::Write;
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

/// The CPU time (user and system) this process used so far, all threads included (from
/// `/proc/self/stat`, in clock ticks of 10 ms). The machine is shared, so CPU per operation
/// is a steadier figure than wall-clock rates.
fn cpu_time() -> Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // Fields after the parenthesised command name: state is field 3, utime 14,
            // stime 15.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: u64 = fields.get(11)?.parse().ok()?;
            let stime: u64 = fields.get(12)?.parse().ok()?;
            Some(utime + stime)
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
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

/// The latency of appending 64 bytes to a file and `fdatasync`ing it, in the data
/// directory's file system: what one group commit costs at least.
fn raw_fsync_latency(dir: &std::path::Path) -> Duration {
    let mut file = std::fs::File::create(dir.join("fsync-probe")).unwrap();
    let n_syncs = 200;
    let started = Instant::now();
    for _ in 0..n_syncs {
        file.write_all(&[7u8; 64]).unwrap();
        file.sync_data().unwrap();
    }
    started.elapsed() / n_syncs
}

/// The import data set: documents with 10 viewers each, drawn from 1M users.
fn generate(n_rels: u64) -> Vec<Relationship> {
    let mut rng = Rng(42);
    (0..n_rels)
        .map(|idx| {
            let user = rng.below(1_000_000);
            format!("document:doc{}#viewer@user:user{user}", idx / 10)
                .parse::<Relationship>()
                .unwrap()
        })
        .collect()
}

fn open(path: &std::path::Path) -> Arc<RocksDatastore> {
    Arc::new(RocksDatastore::open(&RocksConfig::new(path), DatastoreOptions::default()).unwrap())
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is understood.
    let env = |name: &str| std::env::var(name).ok();
    let n_bulk: u64 = env("OSTIARY_BENCH_BULK")
        .and_then(|text| text.parse().ok())
        .unwrap_or(1_000_000);
    let batch_path = env("OSTIARY_BENCH_BATCH_PATH").is_none_or(|text| text != "0");
    let writer_counts: Vec<usize> = env("OSTIARY_BENCH_WRITERS")
        .unwrap_or_else(|| "1,8,64,256".to_owned())
        .split(',')
        .filter_map(|text| text.trim().parse().ok())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let tenant = TenantId::default_tenant();
    eprintln!(
        "raw fsync latency (64-byte append + fdatasync): {:.2?}",
        raw_fsync_latency(dir.path())
    );

    let started = Instant::now();
    let rels = generate(n_bulk);
    eprintln!(
        "generating {n_bulk} relationships (text parsing, not timed below): {:.2?}",
        started.elapsed()
    );

    if batch_path {
        let store = open(&dir.path().join("batch"));
        let started = Instant::now();
        let stats = store
            .bulk_load(&tenant, rels.clone(), RocksDatastore::DEFAULT_BULK_BATCH)
            .unwrap();
        let elapsed = started.elapsed();
        eprintln!(
            "bulk_load (write batches of {}): {} relationships in {elapsed:.2?} = {:.0}/s",
            RocksDatastore::DEFAULT_BULK_BATCH,
            stats.n_relationships,
            stats.n_relationships as f64 / elapsed.as_secs_f64()
        );
    }

    let store = open(&dir.path().join("data"));
    let started = Instant::now();
    let cpu_before = cpu_time();
    let stats = store.bulk_import(&tenant, rels).unwrap();
    let elapsed = started.elapsed();
    let cpu = cpu_time() - cpu_before;
    eprintln!(
        "bulk_import (SST ingestion): {} relationships in {elapsed:.2?} = {:.0}/s \
         (encode+sort {:.2?}, write SSTs {:.2?}, ingest+commit {:.2?}; CPU {cpu:.2?} = \
         {:.2} cores)",
        stats.n_relationships,
        stats.n_relationships as f64 / elapsed.as_secs_f64(),
        stats.encode_time,
        stats.write_time,
        stats.ingest_time,
        cpu.as_secs_f64() / elapsed.as_secs_f64(),
    );
    eprintln!("rss after import: {} MiB", rss_kib("VmRSS:") / 1024);
    let sizes = store.sst_bytes().unwrap();
    let as_ingested: u64 = sizes.iter().map(|(_, bytes)| bytes).sum();
    eprintln!(
        "  as ingested (LZ4): {:.1} bytes/relationship with the change log",
        as_ingested as f64 / stats.n_relationships as f64
    );

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

    for n_writers in writer_counts {
        let before = store.wal_sync_stats();
        let cpu_before = cpu_time();
        let rate = durable_writes(&store, n_writers, Duration::from_secs(3));
        let cpu = cpu_time() - cpu_before;
        let after = store.wal_sync_stats();
        let n_syncs = after.n_syncs - before.n_syncs;
        let sync_time = after.sync_time - before.sync_time;
        let n_synced = after.n_revisions_synced - before.n_revisions_synced;
        eprintln!(
            "durable single-relationship writes, {n_writers} writer(s): {rate:.0}/s \
             ({n_syncs} fsyncs, mean {:.2?}, {:.1} writes per fsync; CPU {:.1} µs per \
             write, parsing the relationship included)",
            sync_time / u32::try_from(n_syncs.max(1)).unwrap(),
            n_synced as f64 / n_syncs.max(1) as f64,
            cpu.as_secs_f64() * 1e6 / n_synced.max(1) as f64,
        );
    }
    eprintln!(
        "rss: {} MiB (peak {} MiB)",
        rss_kib("VmRSS:") / 1024,
        rss_kib("VmHWM:") / 1024
    );
    let head = store.head_revision().unwrap();
    eprintln!("head revision: {head}");
}
