#!/usr/bin/env bash
# Installs what building and testing Ostiary needs on a fresh Debian machine that has only the
# Rust toolchain. Idempotent: each step is skipped when its result is already there.
#   - clang and libclang-dev: RocksDB's bindgen and C++ build (rust-rocksdb);
#   - rustfmt and clippy components (for the test command's lint gates);
#   - a Python venv with the official SpiceDB client for gRPC compatibility tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v clang >/dev/null 2>&1 || need_apt+=(clang)
[ -e /usr/lib/llvm-14/lib/libclang.so ] || ls /usr/lib/llvm-*/lib/libclang*.so >/dev/null 2>&1 || need_apt+=(libclang-dev)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if command -v rustup >/dev/null 2>&1; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi

# The official SpiceDB Python client in a venv of our own, reinstalled when the pins change.
OSTIARY_VENV="$HOME/.cache/ostiary/venv"
venv_stamp="$OSTIARY_VENV/.ostiary-requirements"
if ! [ -x "$OSTIARY_VENV/bin/python" ] || ! cmp -s deploy/python-requirements.txt "$venv_stamp"; then
  echo "setup: installing the authzed Python client into $OSTIARY_VENV" >&2
  python3 -m venv "$OSTIARY_VENV"
  "$OSTIARY_VENV/bin/pip" install --quiet --disable-pip-version-check -r deploy/python-requirements.txt
  cp deploy/python-requirements.txt "$venv_stamp"
fi
export OSTIARY_PYTHON="$OSTIARY_VENV/bin/python"

# One persistent target directory outside the clone keeps rebuilds (RocksDB's C++ above all)
# cheap across clones and CI runs.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ostiary/target}"
mkdir -p "$CARGO_TARGET_DIR"
echo "setup: ready (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)" >&2
