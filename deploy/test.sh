#!/usr/bin/env bash
# Sets up a fresh machine and runs the whole test suite: format, lints, docs and every test.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/setup.sh
cargo fmt --all --check
# --locked: a Cargo.lock that does not match the manifests fails CI instead of drifting.
cargo clippy --workspace --all-targets --locked -- -D warnings
RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps --quiet
# Benches are compiled (and linted) by clippy above; `cargo bench` runs them.
cargo test --workspace --locked
