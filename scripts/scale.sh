#!/usr/bin/env bash
# Scale run (not in CI): a million small files and a 20 GB sparse file with
# real data at a few places. Prints wall time, CPU time and peak RSS of snap's
# first backup, no-change backup, restore of the big file and a structural
# verify, with the repository size and index rows.
#
#   scripts/scale.sh [FILES] [SPARSE_GB]      (defaults 1000000 and 20)
#
# Needs about 5 GB of free space in $SCALE_DIR (default /tmp/snap-scale) for
# the small files' blocks; the sparse file takes almost nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

FILES=${1:-1000000}
SPARSE_GB=${2:-20}
SCALE_DIR=${SCALE_DIR:-/tmp/snap-scale}
SRC=$SCALE_DIR/src
REPO=$SCALE_DIR/repo
cargo build --release --locked -q
SNAP=$PWD/target/release/snap

if [ ! -f "$SCALE_DIR/.src-$FILES-$SPARSE_GB" ]; then
  rm -rf "$SRC"; mkdir -p "$SRC"
  python3 - "$SRC" "$FILES" "$SPARSE_GB" <<'PY'
import os, sys, random
src, files, gb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(1)
# 1000 files per directory, 1000 directories per level: a shape like a
# home directory full of small project files. Contents are distinct, so
# every file is its own chunk, from 16 bytes to 8 KiB.
for i in range(files):
    d = os.path.join(src, "small", f"{i // 1000000:02d}", f"{(i // 1000) % 1000:03d}")
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i % 1000:03d}.txt"), "wb") as f:
        f.write(b"%d " % i + rnd.randbytes(rnd.randrange(16, 8192)))
with open(os.path.join(src, "disk.img"), "wb") as f:
    f.truncate(gb << 30)
    for k in range(64):   # 64 MiB of data spread over the image
        f.seek(rnd.randrange((gb << 30) - (1 << 20)))
        f.write(rnd.randbytes(1 << 20))
PY
  touch "$SCALE_DIR/.src-$FILES-$SPARSE_GB"
fi

measure() { # label command...
  local label=$1; shift
  sync
  /usr/bin/time -f "$label|%e|%U|%S|%M" -o "$SCALE_DIR/time.out" "$@" >"$SCALE_DIR/last.log" 2>&1 \
    || { echo "$label failed:"; tail -5 "$SCALE_DIR/last.log"; exit 1; }
  IFS='|' read -r l wall user sys rss <"$SCALE_DIR/time.out"
  printf '| %s | %.1f | %.1f | %d |\n' "$l" "$wall" "$(echo "$user + $sys" | bc)" $((rss / 1024))
}

rm -rf "$REPO" "$SCALE_DIR/restore"
echo "source: $FILES small files + a ${SPARSE_GB} GB sparse file; $(nproc) cores; $(date -u +%F)"
echo "| step | wall s | CPU s | peak RSS MiB |"
echo "|---|---|---|---|"
measure "init" "$SNAP" --repo "$REPO" init
measure "first backup" "$SNAP" --repo "$REPO" backup "$SRC" --no-progress
measure "no-change backup" "$SNAP" --repo "$REPO" backup "$SRC" --no-progress
measure "restore of the sparse file" "$SNAP" --repo "$REPO" restore latest --target "$SCALE_DIR/restore" \
  --include "$SRC/disk.img" --no-progress
measure "verify (structure)" "$SNAP" --repo "$REPO" verify --no-progress
cmp "$SRC/disk.img" "$SCALE_DIR/restore$SRC/disk.img" && echo "restored sparse file: identical"
echo "restored sparse file uses $(du -k "$SCALE_DIR/restore$SRC/disk.img" | cut -f1) KiB on disk"
echo "repository: $(du -sh "$REPO" | cut -f1); index: $(du -sh "$REPO/index.sqlite" | cut -f1)"
"$SNAP" --repo "$REPO" stats | grep -E 'chunks|packs' || true
rm -rf "$SCALE_DIR/restore"
