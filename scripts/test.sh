#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run). Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "format"
cargo fmt --all -- --check
step "lints"
cargo clippy --all-targets --locked -- -D warnings
step "tests"
cargo test --locked
step "benchmarks build"
cargo bench --locked --no-run
step "fuzz smoke run"
scripts/fuzz-smoke.sh "${SNAP_FUZZ_SECONDS:-10}"
step "all passed"
