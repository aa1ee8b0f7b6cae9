//! Crash test: a child process writes batches from several threads and prints each
//! acknowledged revision; the parent kills it with SIGKILL at seeded random moments,
//! reopens the data directory and checks that every acknowledged batch is present and
//! that no batch is partly visible. Each batch also writes a record in the same
//! transaction: the record survives exactly when the batch does. 20 kill cycles.
//!
//! This is a `harness = false` test: the same binary runs as the child when
//! `OSTIARY_CRASH_CHILD` names the data directory.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and benchmarks report failure by panicking"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ostiary_store::{
    Datastore, DatastoreExt, DatastoreOptions, Page, RecordNamespace, RelationshipUpdate,
    ResourceQuery,
};
use ostiary_store_rocks::{RocksConfig, RocksDatastore};
use ostiary_types::{ObjectType, Revision, TenantId};

const CHILD_ENV: &str = "OSTIARY_CRASH_CHILD";
const CYCLE_ENV: &str = "OSTIARY_CRASH_CYCLE";
const N_CYCLES: u64 = 20;
const N_THREADS: usize = 4;
/// Relationships per batch; a batch is visible entirely or not at all.
const BATCH_LEN: usize = 5;
/// The namespace of the record each batch writes, keyed by the batch name.
const RECORD_NAMESPACE: &str = "batches";

fn main() {
    match std::env::var(CHILD_ENV) {
        Ok(path) => child(&path),
        Err(_) => parent(),
    }
}

/// Writes batches forever, printing `batch revision` after each acknowledged write.
fn child(path: &str) {
    let cycle = std::env::var(CYCLE_ENV).unwrap();
    let store = Arc::new(
        RocksDatastore::open(&RocksConfig::new(path), DatastoreOptions::default()).unwrap(),
    );
    let threads: Vec<_> = (0..N_THREADS)
        .map(|thread_idx| {
            let store = Arc::clone(&store);
            let cycle = cycle.clone();
            std::thread::spawn(move || {
                let tenant = TenantId::default_tenant();
                for batch_idx in 0.. {
                    let batch = format!("c{cycle}_t{thread_idx}_b{batch_idx}");
                    let updates: Vec<RelationshipUpdate> = (0..BATCH_LEN)
                        .map(|rel_idx| {
                            RelationshipUpdate::Create(
                                format!("batch:{batch}#member@user:u{rel_idx}")
                                    .parse()
                                    .unwrap(),
                            )
                        })
                        .collect();
                    let namespace = RecordNamespace::new(RECORD_NAMESPACE).unwrap();
                    let revision = store
                        .read_write(&tenant, &mut |txn| {
                            txn.apply(&updates)?;
                            txn.put_record(&namespace, batch.as_bytes(), b"written")
                        })
                        .unwrap();
                    let mut stdout = std::io::stdout().lock();
                    writeln!(stdout, "{batch} {revision}").unwrap();
                    stdout.flush().unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

/// A small seeded generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % bound
    }
}

fn parent() {
    let started = Instant::now();
    let seed = std::env::var("OSTIARY_CRASH_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(0x5eed_u64);
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let exe = std::env::current_exe().unwrap();
    let mut acked: BTreeMap<String, Revision> = BTreeMap::new();
    let mut n_killed_with_acks = 0;
    for cycle in 0..N_CYCLES {
        let mut child = Command::new(&exe)
            .env(CHILD_ENV, &path)
            .env(CYCLE_ENV, cycle.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    lines.lock().unwrap().push(line);
                }
            })
        };
        std::thread::sleep(Duration::from_millis(50 + rng.below(400)));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        let lines = lines.lock().unwrap();
        if !lines.is_empty() {
            n_killed_with_acks += 1;
        }
        for line in lines.iter() {
            let (batch, revision) = line.split_once(' ').unwrap();
            acked.insert(batch.to_owned(), revision.parse().unwrap());
        }
        check(&path, &acked, cycle);
    }
    assert!(
        n_killed_with_acks >= N_CYCLES / 2,
        "too few cycles acknowledged writes before the kill: {n_killed_with_acks}"
    );
    eprintln!(
        "crash test: {N_CYCLES} kill cycles, {} acknowledged batches, {:.1?}",
        acked.len(),
        started.elapsed()
    );
}

/// Reopens the data directory and checks every acknowledged batch and batch atomicity.
fn check(path: &std::path::Path, acked: &BTreeMap<String, Revision>, cycle: u64) {
    let mut config = RocksConfig::new(path);
    config.create_if_missing = false;
    let store = match RocksDatastore::open(&config, DatastoreOptions::default()) {
        Ok(store) => store,
        // Killed before the first open finished creating the directory.
        Err(ostiary_store_rocks::OpenError::Missing(_)) if acked.is_empty() => return,
        Err(err) => panic!("cycle {cycle}: reopen failed: {err}"),
    };
    let head = store.head_revision().unwrap();
    let max_acked = acked.values().copied().max().unwrap_or(Revision::ZERO);
    assert!(
        head >= max_acked,
        "cycle {cycle}: head {head} < acked {max_acked}"
    );
    let snapshot = store.head_snapshot(&TenantId::default_tenant()).unwrap();
    let batch_type = ObjectType::new("batch").unwrap();
    let mut rels = Vec::new();
    snapshot
        .read_resources(&ResourceQuery::new(&batch_type), Page::ALL, &mut rels)
        .unwrap();
    let mut sizes: BTreeMap<String, usize> = BTreeMap::new();
    for rel in &rels {
        *sizes
            .entry(rel.resource().object_id().as_str().to_owned())
            .or_default() += 1;
    }
    for (batch, size) in &sizes {
        assert_eq!(
            *size, BATCH_LEN,
            "cycle {cycle}: batch {batch} is partly visible"
        );
    }
    let present: BTreeSet<&String> = sizes.keys().collect();
    let records = store
        .scan_records(
            &TenantId::default_tenant(),
            &RecordNamespace::new(RECORD_NAMESPACE).unwrap(),
            b"",
            usize::MAX,
        )
        .unwrap();
    let with_record: BTreeSet<String> = records
        .iter()
        .map(|record| String::from_utf8(record.key.clone()).unwrap())
        .collect();
    assert_eq!(
        with_record,
        present.iter().map(|batch| (*batch).clone()).collect(),
        "cycle {cycle}: batch records differ from the visible batches"
    );
    for batch in acked.keys() {
        assert!(
            present.contains(batch),
            "cycle {cycle}: acknowledged batch {batch} lost"
        );
    }
}
