#!/usr/bin/env bash
# Sets up a fresh machine and starts Ostiary on its embedded default.
# Until the server lands (issue 5) this checks every schema in schema-examples/ instead.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/setup.sh
cargo build --release -p ostiary
"$CARGO_TARGET_DIR/release/ostiary" schema check schema-examples/*.zed "$@"
