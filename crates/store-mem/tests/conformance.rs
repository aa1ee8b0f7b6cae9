//! Runs the shared datastore conformance suite against the in-memory backend.

use std::sync::Arc;

use ostiary_store_conformance::Instance;
use ostiary_store_mem::MemDatastore;

ostiary_store_conformance::suite!(|options| Instance::new(Arc::new(MemDatastore::new(options))));
