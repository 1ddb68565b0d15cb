#!/bin/bash
# Compares two snap binaries on one corpus: a no-change backup and a full
# restore, alternating between them for ROUNDS rounds (wall s / CPU s).
# Usage: scripts/compare-builds.sh BEFORE NOW CORPUS [ROUNDS]
# (e.g. a copy of /usr/share and /usr/include for many small files).
set -euo pipefail
before=$1 now=$2 corpus=$3 rounds=${4:-3}
work=$(mktemp -d /var/tmp/snap-compare-XXXXXX)
trap 'rm -rf "$work"' EXIT
env_for() {
    local d=$work/$1
    echo "SNAP_REPO=$d/repo HOME=$d/home XDG_CACHE_HOME=$d/home/cache XDG_STATE_HOME=$d/home/state"
}
timed() { /usr/bin/time -f "%e %U %S" "$@" 2>&1 >/dev/null | tail -1 | awk '{printf "%.2f/%.2f", $1, $2+$3}'; }
for which in before now; do
    bin=${!which}
    mkdir -p "$work/$which"
    env $(env_for $which) "$bin" init >/dev/null
    env $(env_for $which) "$bin" backup "$corpus" >/dev/null 2>&1 || true
done
for round in $(seq "$rounds"); do
    for which in before now; do
        bin=${!which}
        rm -rf "$work/$which/target"
        nochange=$(timed env $(env_for $which) "$bin" backup "$corpus")
        restore=$(timed env $(env_for $which) "$bin" restore latest --target "$work/$which/target")
        echo "$round $which no-change-backup=$nochange restore=$restore"
    done
done
