//! Integration tests of the engine: SpiceDB's integration testconfigs, a reference evaluator
//! and property tests comparing the engine with it.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code"
)]

mod cache;
mod lookup_cycles;
mod random;
mod reference;
mod steelthread;
mod support;
mod testconfigs;
