#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run). Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "format"
cargo fmt --all -- --check
step "lints (also type-checks the benchmarks: --all-targets)"
cargo clippy --all-targets --locked -- -D warnings
step "S3 test server (SeaweedFS on loopback, see scripts/s3-server.sh)"
S3_DIR="$(mktemp -d "${TMPDIR:-/tmp}/snap-s3-XXXXXX")"
trap 'scripts/s3-server.sh stop "$S3_DIR"; rm -rf "$S3_DIR"' EXIT
exports="$(scripts/s3-server.sh start "$S3_DIR" "${SNAP_TEST_S3_PORT:-18433}")"
eval "$exports"
echo "$exports"
step "tests"
cargo test --locked
step "fuzz smoke run"
scripts/fuzz-smoke.sh "${SNAP_FUZZ_SECONDS:-10}"
step "all passed"
