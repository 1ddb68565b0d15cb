#!/usr/bin/env bash
# Format 2 against format 3 (issue 16 item 4), encrypted repositories:
#   scripts/bench-size-hiding.sh BEFORE_BIN AFTER_BIN [CORPUS]
# Three alternating rounds of a timed first backup and a small-change
# backup, then six repositories per binary for repository size and dedup
# (each repository has its own key, so its own chunk boundaries).
set -eu
before=$1 after=$2 corpus=${3:-/tmp/snap-bench/corpus}
work=$(mktemp -d "${TMPDIR:-/tmp}/snap-pad-XXXXXX")
trap 'rm -rf "$work"' EXIT
export SNAP_PASSWORD=bench-password HOME=$work/home
mkdir -p "$HOME"
for round in 1 2 3; do
  for tool in before after; do
    bin=${!tool}
    rm -rf "$work/src" "$work/repo"
    cp -a "$corpus" "$work/src"
    "$bin" --repo "$work/repo" init --encryption xchacha20-poly1305 >/dev/null
    t=$( { /usr/bin/time -f "%e %U %S %M" "$bin" --repo "$work/repo" backup "$work/src" >/dev/null; } 2>&1 | tail -1)
    size1=$(du -sb "$work/repo/data" | cut -f1)
    find "$work/src" -type f -size +1M | head -5 | while read -r f; do
      dd if=/dev/urandom of="$f" bs=4096 count=1 seek=10 conv=notrunc status=none
    done
    find "$work/src" -type f -size -64k | head -20 | while read -r f; do echo "edit $round" >>"$f"; done
    t2=$( { /usr/bin/time -f "%e %U %S" "$bin" --repo "$work/repo" backup "$work/src" >/dev/null; } 2>&1 | tail -1)
    size2=$(du -sb "$work/repo/data" | cut -f1)
    echo "$tool round=$round first(wall user sys maxrssKB)=$t second(wall user sys)=$t2 growth_bytes=$((size2 - size1))"
  done
done
for i in 1 2 3 4 5 6; do
  for tool in before after; do
    bin=${!tool}
    rm -rf "$work/repo"
    "$bin" --repo "$work/repo" init --encryption xchacha20-poly1305 >/dev/null
    "$bin" --repo "$work/repo" backup "$corpus" >/dev/null
    "$bin" --repo "$work/repo" stats --json | python3 -c "import json,sys; d=json.load(sys.stdin); \
print('$tool chunks', d['chunks'], 'unique', d['unique_bytes'], 'stored', d['stored_bytes'], \
'dedup', round(d['dedup_ratio'], 3), 'pack_bytes', d['repository']['pack_bytes'])"
  done
done
