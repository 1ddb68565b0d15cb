#!/bin/sh
# Makes one compatibility fixture (tests/compat/formatN) with the snap built
# from one commit. Called by tests/compat/formatN/make.sh, which sets:
#
#   FORMAT      the repository format the commit writes (1, 2 or 3)
#   COMMIT      the commit whose snap makes the repository
#   INIT_ARGS   arguments of `snap init` (e.g. --encryption xchacha20-poly1305)
#   SNAPSHOTS   1 or 2: how many backups (state 1, then state 2 of tree.py)
#   BACKUP1_ARGS, BACKUP2_ARGS   extra arguments of each backup
#   PASSWORD    the password of an encrypted repository (empty: none)
#   SNAP        optional: a snap binary already built from COMMIT
#
# What it does, in order:
#  1. builds COMMIT in a temporary git worktree (cargo build --release), unless
#     SNAP is given, and removes the worktree afterwards;
#  2. in /tmp/snap-compat/formatN (the source path recorded in the snapshots,
#     so it is fixed), writes state 1 of the source tree (tools/tree.py),
#     runs `snap init` and `snap backup`, and for two snapshots writes state 2
#     and backs up again; HOME and the XDG directories point into that work
#     directory, so no index cache or data dir of the user is touched;
#  3. copies the repository into formatN/repo without its index: old builds
#     kept it inside the repository as index.sqlite(-wal, -shm), newer ones in
#     the cache directory; it is a rebuildable cache and not part of the
#     format. Empty directories (tmp/, empty data/xx) are left out too, since
#     git cannot hold them and a clone must be what the tests see;
#  4. writes formatN/expected.json: the snapshots as that snap lists them
#     (`--json snapshots`) and, for each, what tree.py describe read from
#     the source tree at the time of its backup;
#  5. writes formatN/password for an encrypted repository.
set -eu

: "${FORMAT:?}" "${COMMIT:?}" "${SNAPSHOTS:?}"
INIT_ARGS=${INIT_ARGS-}
BACKUP1_ARGS=${BACKUP1_ARGS-}
BACKUP2_ARGS=${BACKUP2_ARGS-}
PASSWORD=${PASSWORD-}

TOOLS=$(cd "$(dirname "$0")" && pwd)
FIXTURE=$(cd "$TOOLS/.." && pwd)/format$FORMAT
GIT_ROOT=$(git -C "$TOOLS" rev-parse --show-toplevel)
WORK=/tmp/snap-compat/format$FORMAT
BUILD=/tmp/snap-compat/build-format$FORMAT

rm -rf "$WORK"
mkdir -p "$WORK/home"

if [ -z "${SNAP-}" ]; then
    git -C "$GIT_ROOT" worktree remove --force "$BUILD" 2>/dev/null || true
    git -C "$GIT_ROOT" worktree add --detach "$BUILD" "$COMMIT"
    (cd "$BUILD" && cargo build --release)
    cp "$BUILD/target/release/snap" "$WORK/snap"
    git -C "$GIT_ROOT" worktree remove --force "$BUILD"
    SNAP=$WORK/snap
fi

REPO=$WORK/repo
SRC=$WORK/src
export HOME="$WORK/home" XDG_DATA_HOME="$WORK/home/data" XDG_CACHE_HOME="$WORK/home/cache" \
    XDG_CONFIG_HOME="$WORK/home/config" SNAP_REPO="$REPO" NO_COLOR=1
unset SNAP_PASSWORD_FILE SNAP_PASSWORD_COMMAND || true
if [ -n "$PASSWORD" ]; then export SNAP_PASSWORD="$PASSWORD"; else unset SNAP_PASSWORD || true; fi

# shellcheck disable=SC2086 # the argument lists are split on purpose
{
    "$SNAP" init $INIT_ARGS
    python3 "$TOOLS/tree.py" populate "$SRC" 1
    python3 "$TOOLS/tree.py" describe "$SRC" >"$WORK/files1.json"
    "$SNAP" --json backup "$SRC" $BACKUP1_ARGS >"$WORK/backup1.json"
    if [ "$SNAPSHOTS" -ge 2 ]; then
        sleep 1.1 # distinct snapshot times, whole seconds apart
        python3 "$TOOLS/tree.py" populate "$SRC" 2
        python3 "$TOOLS/tree.py" describe "$SRC" >"$WORK/files2.json"
        "$SNAP" --json backup "$SRC" $BACKUP2_ARGS >"$WORK/backup2.json"
    fi
    "$SNAP" --json snapshots >"$WORK/snapshots.json"
    # (snap had no verify before 1292ec0's time; the tests verify with today's)
    if "$SNAP" verify --help >/dev/null 2>&1; then "$SNAP" verify --read-data; fi
}

rm -rf "$FIXTURE/repo" "$FIXTURE/expected.json" "$FIXTURE/password"
cp -a "$REPO" "$FIXTURE/repo"
rm -f "$FIXTURE/repo/index.sqlite" "$FIXTURE/repo/index.sqlite-wal" "$FIXTURE/repo/index.sqlite-shm"
find "$FIXTURE/repo" -depth -type d -empty -delete
if find "$FIXTURE/repo" -name '*sqlite*' | grep -q .; then
    echo "an index or cache file is in the fixture" >&2
    exit 1
fi

FILES=$(for i in $(seq 1 "$SNAPSHOTS"); do cat "$WORK/files$i.json"; done | jq -s .)
jq --argjson format "$FORMAT" --arg commit "$COMMIT" --arg source "$SRC" \
    --argjson encrypted "$([ -n "$PASSWORD" ] && echo true || echo false)" --argjson files "$FILES" '
    {
      format: $format,
      made_by_commit: $commit,
      encrypted: $encrypted,
      source: $source,
      snapshots: [ to_entries[] | .value as $s | {
        id: $s.id, unix_time: $s.unix_time, hostname: $s.hostname, username: $s.username,
        paths: $s.paths, tags: $s.tags, message: $s.message, parent: $s.parent,
        files: $files[.key]
      } ]
    }' "$WORK/snapshots.json" >"$FIXTURE/expected.json"

if [ -n "$PASSWORD" ]; then printf '%s\n' "$PASSWORD" >"$FIXTURE/password"; fi
echo "fixture written to $FIXTURE ($(du -sk "$FIXTURE/repo" | cut -f1) KiB)"
