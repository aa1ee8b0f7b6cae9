//! End-to-end tests of `ostiary serve`: every test starts the real `ostiary` binary on a
//! loopback port and drives it over gRPC, with the generated tonic clients of `ostiary-proto`
//! and (in `python`) with the official `authzed` Python client; `trace` checks the debug
//! traces of `with_tracing`.
//!
//! The sources live in the workspace's top-level `tests/` directory but are compiled as the
//! `e2e` integration test of the `ostiary` package (`crates/ostiary/Cargo.toml`), because
//! Cargo only sets `CARGO_BIN_EXE_ostiary` for tests of the package that owns the binary.
//! Run them with `cargo test -p ostiary --test e2e`.
//!
//! How a server is started (see `harness`): `ostiary serve --grpc-addr 127.0.0.1:0` with a
//! preshared key, its working directory and (for RocksDB) data directory in a fresh temporary
//! directory, and every `OSTIARY_*` variable of the test's environment removed. The test reads
//! the bound address from the server's `serving gRPC addr=...` log line, then polls the gRPC
//! health service (bounded) until it answers `SERVING`. The child is killed when its handle is
//! dropped, so a failing test leaves no server behind.
//!
//! Determinism: nothing waits on a timer except that readiness poll and the bounded waits
//! for a process to exit. Writes return consistency tokens and reads name them
//! (`at_least_as_fresh`, `at_exact_snapshot`), Watch streams are read until a known token
//! arrives, and `minimize_latency` answers are only compared with a read at the exact
//! revision they report (the 5 s quantization makes their revision depend on the clock).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a failed expectation is a failed test"
)]

mod bad_input;
mod consistency;
mod durability;
mod harness;
mod python;
mod rpcs;
mod trace;
mod watch;
