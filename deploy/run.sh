#!/usr/bin/env bash
# Sets up a fresh machine and starts Ostiary on its embedded default: RocksDB in
# ./ostiary-data, gRPC (authzed.api.v1) on 127.0.0.1:50051.
#
# The bearer key clients must send is $OSTIARY_GRPC_PRESHARED_KEY; when it is unset a random
# one is generated and printed. Extra arguments go to `ostiary serve` (see `ostiary serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/setup.sh
cargo build --release --locked -p ostiary
if [ -z "${OSTIARY_GRPC_PRESHARED_KEY:-}" ]; then
  OSTIARY_GRPC_PRESHARED_KEY="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  echo "run: generated a bearer key for this run: $OSTIARY_GRPC_PRESHARED_KEY" >&2
fi
export OSTIARY_GRPC_PRESHARED_KEY
exec "$CARGO_TARGET_DIR/release/ostiary" serve \
  --datastore-engine rocksdb --datastore-conn-uri "${OSTIARY_DATA_DIR:-ostiary-data}" "$@"
