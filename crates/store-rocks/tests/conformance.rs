//! Runs the shared datastore conformance suite against `RocksDatastore`, each case on a
//! fresh data directory.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and benchmarks report failure by panicking"
)]

use std::sync::Arc;

use ostiary_store::DatastoreOptions;
use ostiary_store_conformance::Instance;
use ostiary_store_rocks::{RocksConfig, RocksDatastore};

fn rocks(options: DatastoreOptions) -> Instance {
    let dir = tempfile::tempdir().unwrap();
    let mut config = RocksConfig::new(dir.path().join("data"));
    config.block_cache_bytes = 8 << 20;
    let store = RocksDatastore::open(&config, options).unwrap();
    Instance::with_guard(Arc::new(store), Box::new(dir))
}

ostiary_store_conformance::suite!(rocks);
