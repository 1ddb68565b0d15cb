#!/usr/bin/env bash
# Runs every cargo-fuzz target under fuzz/ for N seconds each (N = $1,
# default 20) and fails if any of them finds a crash, leak, timeout or OOM.
#
#   scripts/fuzz-smoke.sh        # 20 s per target
#   scripts/fuzz-smoke.sh 300    # 5 min per target
#
# Needs only stable Rust: cargo-fuzz's sanitizer flags are unlocked with
# RUSTC_BOOTSTRAP=1. Corpora live in fuzz/corpus/<target> and crash inputs in
# fuzz/artifacts/<target> (both git-ignored); replay one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>
# When a corpus is empty it is seeded, best effort, with the config, snapshot
# and pack files of a tiny repository made by the `snap` binary, and with the
# config and key file of a tiny encrypted one (set SNAP_FUZZ_SEED=0 to skip
# that). The targets decode encrypted objects under a fixed master key of
# their own, so the encrypted repository's packs and snapshots (sealed under
# its random key) would only ever fail authentication and are not used.
set -euo pipefail

secs="${1:-20}"
case "$secs" in
'' | *[!0-9]*)
    echo "usage: $0 [seconds-per-target]" >&2
    exit 2
    ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/fuzz"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked || cargo install cargo-fuzz
fi

# A lock object as snap writes one (written by hand: making one needs a bucket).
if [ -z "$(ls -A corpus/lock 2>/dev/null)" ]; then
    mkdir -p corpus/lock
    printf '%s' '{"version":1,"exclusive":false,"hostname":"h","username":"u","pid":1234,"created":1764633600,"refreshed":1764633900}' >corpus/lock/seed
fi

# A subshell, so its cleanup trap and early exits stay local.
seed_corpora() (
    [ "${SNAP_FUZZ_SEED:-1}" = 0 ] && exit 0
    local want=0 t
    for t in config snapshot pack keyfile; do
        if [ -z "$(ls -A "corpus/$t" 2>/dev/null)" ]; then want=1; fi
    done
    [ "$want" = 1 ] || exit 0
    local tmp
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    if ! (cd "$root" && cargo build --quiet --bin snap) >"$tmp/build.log" 2>&1; then
        echo "note: could not build snap to seed the corpora; starting them empty" >&2
        exit 0
    fi
    local snap="$root/target/debug/snap"
    mkdir -p "$tmp/src/dir"
    echo "hello" >"$tmp/src/a.txt"
    head -c 20000 /dev/zero | tr '\0' 'x' >"$tmp/src/dir/b"
    ln -s a.txt "$tmp/src/link"
    if ! { "$snap" --repo "$tmp/repo" init && "$snap" --repo "$tmp/repo" backup --tag seed "$tmp/src"; } \
        >/dev/null 2>&1; then
        echo "note: snap could not make a seed repository; starting the corpora empty" >&2
        exit 0
    fi
    mkdir -p corpus/config corpus/snapshot corpus/pack corpus/keyfile
    cp "$tmp/repo/config" corpus/config/seed-config
    find "$tmp/repo/snapshots" -type f -exec cp {} corpus/snapshot/ \;
    find "$tmp/repo/data" -type f -exec cp {} corpus/pack/ \;
    if SNAP_PASSWORD=fuzz "$snap" --repo "$tmp/encrypted" init --encryption xchacha20-poly1305 \
        >/dev/null 2>&1; then
        cp "$tmp/encrypted/config" corpus/config/seed-config-encrypted
        find "$tmp/encrypted/keys" -type f -exec cp {} corpus/keyfile/ \;
    else
        echo "note: snap could not make an encrypted seed repository; seeding without it" >&2
    fi
    echo "seeded corpora from a tiny repository" >&2
)

cargo fuzz build
seed_corpora

mapfile -t targets < <(cargo fuzz list)
failed=()
for target in "${targets[@]}"; do
    echo "=== fuzz $target for ${secs}s" >&2
    mkdir -p "corpus/$target"
    # A malloc limit far below libFuzzer's 2 GB default: no decoder may
    # allocate more than its largest legal object (128 MiB) from a length
    # field, so a 128 MiB+ allocation from hostile bytes fails the run.
    if ! cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$secs" \
        -malloc_limit_mb=200 -rss_limit_mb=1024; then
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz-smoke: FAILED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz-smoke: all ${#targets[@]} targets ran ${secs}s without a crash" >&2
