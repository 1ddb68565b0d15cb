#!/usr/bin/env bash
# Side-by-side benchmark of snap and restic on the same data, machine and
# cache state. Prints a Markdown table of wall time, CPU time, peak RSS and
# repository size per step and tool, with the snap/restic ratio, then the
# same for an encrypted snap repository against an unencrypted one (the cost
# of encryption), and for repositories on a local S3 server (SeaweedFS on
# loopback, scripts/s3-server.sh) against local disk: snap-s3 against snap,
# restic-s3 against restic. Timings live here and in benches/, never in tests.
#
#   scripts/bench.sh [CORPUS_MIB]       (default 1024)
#   TOOLS="snap snap-s3" scripts/bench.sh 512
#   SNAP_BIN=/tmp/snap-old TOOLS=snap scripts/bench.sh 512
#
# The corpus is built once under $BENCH_DIR (default /tmp/snap-bench): real
# files copied from /usr (library and share trees) up to CORPUS_MIB, plus a
# 512 MiB "disk image" made of real file bytes; the small change edits the
# image in 10 places and rewrites 20 small files. Each tool's backups run
# one tool after the other on the same corpus state; then the tools take
# turns restoring (RESTORE_RUNS rounds, default 3; as root, each restore to
# disk goes into a fresh loop-mounted ext4), and verify and prune follow.
set -euo pipefail
cd "$(dirname "$0")/.."

MIB=${1:-1024}
BENCH_DIR=${BENCH_DIR:-/tmp/snap-bench}
CORPUS=$BENCH_DIR/corpus
export RESTIC_PASSWORD=bench-only-password
export SNAP_PASSWORD=bench-only-password

command -v restic >/dev/null || apt-get install -y restic >/dev/null
# SNAP_BIN measures another build (an older commit's, to compare) as it is.
if [ -n "${SNAP_BIN:-}" ]; then
  SNAP=$SNAP_BIN
else
  cargo build --release --locked -q
  SNAP=$PWD/target/release/snap
fi

build_corpus() {
  [ -f "$BENCH_DIR/.corpus-$MIB" ] && return
  rm -rf "$CORPUS"; mkdir -p "$CORPUS/files"
  python3 - "$CORPUS" "$MIB" <<'PY'
import os, sys, shutil, hashlib
dst, budget = sys.argv[1], int(sys.argv[2]) << 20
image_size = min(512 << 20, budget // 2)
files_budget = budget - image_size
roots = ["/usr/lib/x86_64-linux-gnu", "/usr/share", "/usr/lib"]
seen, total, blobs = set(), 0, []
for root in roots:
    for d, _, names in os.walk(root):
        for n in sorted(names):
            p = os.path.join(d, n)
            if os.path.islink(p) or not os.path.isfile(p) or p in seen: continue
            seen.add(p)
            size = os.path.getsize(p)
            if total + size > files_budget: continue
            rel = os.path.relpath(p, "/usr")
            os.makedirs(os.path.join(dst, "files", os.path.dirname(rel)), exist_ok=True)
            shutil.copy2(p, os.path.join(dst, "files", rel))
            total += size
            if size > 4096 and len(blobs) < 4000: blobs.append(p)
# A disk image: real file bytes laid out on 4 KiB blocks, with gaps of zeros.
with open(os.path.join(dst, "disk.img"), "wb") as out:
    i = 0
    while out.tell() < image_size:
        with open(blobs[i % len(blobs)], "rb") as f: data = f.read()
        out.write(data[: image_size - out.tell()])
        pad = (-out.tell()) % 4096 + (4096 * (i % 3))
        out.write(b"\0" * min(pad, max(0, image_size - out.tell())))
        i += 1
PY
  touch "$BENCH_DIR/.corpus-$MIB"
}

small_change() {
  python3 - "$CORPUS" <<'PY'
import os, sys, random
root = sys.argv[1]; rnd = random.Random(7)
with open(os.path.join(root, "disk.img"), "r+b") as f:
    size = os.fstat(f.fileno()).st_size
    for _ in range(10):
        f.seek(rnd.randrange(size - 4096)); f.write(os.urandom(4096))
files = []
for d, _, names in os.walk(os.path.join(root, "files")):
    files += [os.path.join(d, n) for n in names]
files.sort()
for p in rnd.sample(files, 20):
    with open(p, "ab") as f: f.write(b"changed\n")
PY
}

ROWS=()
measure() { # tool step command...
  local tool=$1 step=$2; shift 2
  local t0 t1 stats=$BENCH_DIR/time.out
  sync; t0=$(date +%s.%N)
  if ! /usr/bin/time -f '%U %S %M' -o "$stats" "$@" >"$BENCH_DIR/last.log" 2>&1; then
    echo "$tool: $step failed:" >&2; tail -5 "$BENCH_DIR/last.log" >&2; exit 1
  fi
  t1=$(date +%s.%N)
  read -r user sys rss <"$stats"
  ROWS+=("$tool|$step|$(echo "$t1 - $t0" | bc)|$(echo "$user + $sys" | bc)|$rss")
}

repo_size() { du -sb "$1" | cut -f1; }

# Restores to disk go into a fresh ext4 file system for each run (a loop
# device over a sparse image under $BENCH_DIR), when run as root with
# mkfs.ext4 and loop devices at hand and $BENCH_DIR on a disk: ext4 slows
# inode allocation for minutes after many deletions (each tool's run deletes
# a corpus), which moved both tools' figures by up to 5x in a directory of
# the machine's own file system, the fallback. Which of the two is decided
# once, so every run of a table restores into the same kind of target. A
# second restore into tmpfs, when there is room for three corpora, times
# the tools without any disk.
RESTORE_FS=$BENCH_DIR/restore-fs
FRESH_FS=no
mkdir -p "$BENCH_DIR"
if [ "$(id -u)" = 0 ] && command -v mkfs.ext4 >/dev/null && [ -e /dev/loop-control ] &&
  [ "$(stat -f -c %T "$BENCH_DIR")" != tmpfs ]; then
  FRESH_FS=yes
fi
fresh_fs() {
  drop_fs
  mkdir -p "$RESTORE_FS/mnt"
  truncate -s $(($(du -sb "$CORPUS" | cut -f1) * 2 + (1 << 30))) "$RESTORE_FS/image"
  mkfs.ext4 -q -F "$RESTORE_FS/image" && mount -o loop "$RESTORE_FS/image" "$RESTORE_FS/mnt"
}
drop_fs() {
  if mountpoint -q "$RESTORE_FS/mnt" 2>/dev/null; then
    umount "$RESTORE_FS/mnt" || umount -l "$RESTORE_FS/mnt"
  fi
  # Never delete through a mount that is still there.
  mountpoint -q "$RESTORE_FS/mnt" 2>/dev/null || rm -rf --one-file-system "$RESTORE_FS"
}
restore_target() { # tool: prints where its restore goes
  if [ $FRESH_FS = no ]; then
    echo "$BENCH_DIR/restore-$1"
  elif fresh_fs >&2; then
    echo "$RESTORE_FS/mnt/$1"
  else
    echo "could not make a fresh file system for a restore" >&2
    return 1
  fi
}
trap drop_fs EXIT
RAM_TARGET=/dev/shm/snap-bench-restore

# Restores move most with the state of this VM's memory (pages the guest
# freed come back from the host slowly, whichever tool touches them first,
# and page-cache pressure is charged to the process that allocates): the
# tools take turns, RESTORE_RUNS rounds of one restore to disk and one into
# tmpfs each, every one into an empty target, and the table shows each
# tool's run with the median wall time. All runs are listed after it.
RESTORE_RUNS=${RESTORE_RUNS:-3}
restores() { # tool
  local tool=$1 target
  target=$(restore_target "$tool") || exit 1
  set_cmd "$tool"
  measure "$tool" restore "${CMD[@]}" restore latest --target "$target"
  # A fresh file system goes whole; only a plain directory is emptied.
  if [ $FRESH_FS = yes ]; then drop_fs; else rm -rf "$target"; fi
  if in_memory; then
    measure "$tool" "restore to tmpfs" "${CMD[@]}" restore latest --target "$RAM_TARGET"
    rm -rf "$RAM_TARGET"
  fi
}
in_memory() {
  local free need
  free=$(df -k --output=avail /dev/shm 2>/dev/null | tail -1) || return 1
  need=$(du -sk "$CORPUS" | cut -f1)
  [ "${free:-0}" -gt $((need * 3)) ]
}

# The S3 server, started on first use by an s3 tool; its data directory's
# size stands in for the repository's.
S3_DIR=$BENCH_DIR/s3
s3_server() {
  [ -n "${S3_EXPORTS:-}" ] && return
  scripts/s3-server.sh stop "$S3_DIR"; rm -rf "$S3_DIR"; mkdir -p "$S3_DIR"
  S3_EXPORTS=$(scripts/s3-server.sh start "$S3_DIR" "${SNAP_BENCH_S3_PORT:-19433}")
  eval "$S3_EXPORTS"
  trap 'scripts/s3-server.sh stop "$S3_DIR"; drop_fs' EXIT
  export AWS_ENDPOINT_URL=$SNAP_TEST_S3_ENDPOINT AWS_ACCESS_KEY_ID=$SNAP_TEST_S3_ACCESS_KEY \
    AWS_SECRET_ACCESS_KEY=$SNAP_TEST_S3_SECRET_KEY AWS_REGION=$SNAP_TEST_S3_REGION \
    AWS_DEFAULT_REGION=$SNAP_TEST_S3_REGION XDG_CACHE_HOME=$BENCH_DIR/cache
}

declare -A REPO
tool_repo() { # tool: where its repository goes
  case $1 in
    snap-s3) echo "s3://$SNAP_TEST_S3_BUCKET/bench-$(date +%s%N)" ;;
    restic-s3) echo "s3:$SNAP_TEST_S3_ENDPOINT/$SNAP_TEST_S3_BUCKET/restic-$(date +%s%N)" ;;
    *) echo "$BENCH_DIR/repo-$1" ;;
  esac
}
set_cmd() { # tool: CMD becomes the command and its repository option
  case $1 in
    snap | snap-enc | snap-s3) CMD=("$SNAP" --repo "${REPO[$1]}") ;;
    restic | restic-s3) CMD=(restic -r "${REPO[$1]}") ;;
  esac
}

backups() { # tool: init, the three backups, and the repository's size
  local tool=$1
  rm -rf "$BENCH_DIR/repo-$tool"
  # The server's data directory holds every tool's bucket prefix: what is
  # there before the tool starts is not its.
  local size_of=$BENCH_DIR/repo-$tool base=0
  case $tool in
    snap-s3 | restic-s3)
      s3_server
      size_of=$S3_DIR/data
      base=$(repo_size "$size_of")
      ;;
  esac
  REPO[$tool]=$(tool_repo "$tool")
  set_cmd "$tool"
  case $tool in
    snap | snap-enc | snap-s3)
      local scheme=none
      [ "$tool" = snap-enc ] && scheme=xchacha20-poly1305
      measure "$tool" init "${CMD[@]}" init --encryption "$scheme"
      ;;
    restic | restic-s3) measure "$tool" init "${CMD[@]}" init --repository-version 2 ;;
  esac
  measure "$tool" "first backup" "${CMD[@]}" backup "$CORPUS"
  # The floor for a backup with no change: a bare walk with lstat.
  [ "$tool" = snap ] && measure "find -printf %s" "no-change backup" find "$CORPUS" -printf '%s\n'
  measure "$tool" "no-change backup" "${CMD[@]}" backup "$CORPUS"
  SIZE1=$(($(repo_size "$size_of") - base))
  small_change
  measure "$tool" "small-change backup" "${CMD[@]}" backup "$CORPUS"
  SIZE2=$(($(repo_size "$size_of") - base))
  ROWS+=("$tool|repository size after first backup (MiB)|$(echo "$SIZE1 / 1048576" | bc)||")
  ROWS+=("$tool|repository growth from the small change (MiB)|$(echo "scale=1; ($SIZE2 - $SIZE1) / 1048576" | bc)||")
}

checks() { # tool: verify with data, then prune
  local tool=$1
  set_cmd "$tool"
  case $tool in
    snap | snap-enc | snap-s3)
      measure "$tool" "verify --read-data" "${CMD[@]}" verify --read-data
      measure "$tool" "prune --keep 1" "${CMD[@]}" prune --keep 1
      ;;
    restic | restic-s3)
      measure "$tool" "verify --read-data" "${CMD[@]}" check --read-data
      measure "$tool" "prune --keep 1" "${CMD[@]}" forget --keep-last 1 --prune
      ;;
  esac
}

build_corpus
echo "corpus: $(du -sh "$CORPUS" | cut -f1), $(find "$CORPUS" -type f | wc -l) files; $(nproc) cores; $(date -u +%F)"
if [ $FRESH_FS = yes ]; then
  echo "restores to disk: a fresh ext4 file system per run"
else
  echo "restores to disk: $BENCH_DIR ($(stat -f -c %T "$BENCH_DIR"))"
fi
echo "restore rows: the run with the median wall time of $RESTORE_RUNS"
cat "$CORPUS/disk.img" >/dev/null; find "$CORPUS" -type f -exec cat {} + >/dev/null
# Both tools see the same corpus state: restore it between tools.
cp --reflink=auto -a "$CORPUS" "$BENCH_DIR/pristine" 2>/dev/null || true
TOOLS=${TOOLS:-snap restic snap-enc}
for tool in $TOOLS; do
  rm -rf "$CORPUS"; cp -a "$BENCH_DIR/pristine" "$CORPUS"
  backups "$tool"
done
rm -rf "$BENCH_DIR/pristine"
for ((round = 0; round < RESTORE_RUNS; round++)); do
  for tool in $TOOLS; do restores "$tool"; done
done
for tool in $TOOLS; do checks "$tool"; done

python3 - "${ROWS[@]}" <<'PY'
import sys
rows = [r.split("|") for r in sys.argv[1:]]
steps = []
data = {}
for tool, step, wall, cpu, rss in rows:
    if step not in steps: steps.append(step)
    data.setdefault((tool, step), []).append((wall, cpu, rss))
# A step run several times shows its run with the median wall time.
all_runs = {k: runs for k, runs in data.items() if len(runs) > 1}
data = {k: sorted(runs, key=lambda r: float(r[0]))[len(runs) // 2] for k, runs in data.items()}

def table(a, b):
    if not any(t == a for t, _ in data) or not any(t == b for t, _ in data): return
    print(f"\n| step | {a} wall s | {b} wall s | {a}/{b} | {a} CPU s | {b} CPU s | {a} peak RSS MiB | {b} peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for step in steps:
        s, r = data.get((a, step)), data.get((b, step))
        if not s or not r: continue
        ratio = float(s[0]) / max(float(r[0]), 1e-9)
        if s[1] == "":
            print(f"| {step} | {s[0]} | {r[0]} | {ratio:.2f} | | | | |")
            continue
        print(f"| {step} | {float(s[0]):.2f} | {float(r[0]):.2f} | {ratio:.2f} | {float(s[1]):.2f} | {float(r[1]):.2f} | {int(s[2]) // 1024} | {int(r[2]) // 1024} |")

table("snap", "restic")
table("snap", "find -printf %s")
table("snap-enc", "snap")
table("snap-s3", "snap")
table("restic-s3", "restic")
table("snap-s3", "restic-s3")
if all_runs:
    print("\nEvery run of the repeated steps (wall s, in order):\n")
    for (tool, step), runs in all_runs.items():
        print(f"- {tool}, {step}: " + ", ".join(f"{float(w):.2f}" for w, _, _ in runs))
PY
