#!/bin/sh
# Compatibility fixture: a format 1 (unencrypted) repository, written by the
# snap of commit 1b8927b ("Tree nodes carry a version byte; DESIGN.md spec"),
# the first commit whose format 1 is the one DESIGN.md specifies (the commit
# before it, 620e331, wrote tree nodes without their version byte, before the
# format was written down). Two snapshots of the tree of ../tools/tree.py:
#
#   snap init
#   snap --json backup /tmp/snap-compat/format1/src --tag first --tag compat -m first-snapshot
#   (state 2 of the tree)
#   snap --json backup /tmp/snap-compat/format1/src --tag second
#
# Run from anywhere: sh tests/compat/format1/make.sh (builds the commit in a
# temporary worktree; SNAP=/path/to/snap skips the build). Only to remake the
# fixture deliberately: the point of a fixture is that it stays as it is.
set -eu
export FORMAT=1
export COMMIT=1b8927be891d08a02bc56d38a57aeefa2649a7fb
export INIT_ARGS=
export SNAPSHOTS=2
export BACKUP1_ARGS="--tag first --tag compat -m first-snapshot"
export BACKUP2_ARGS="--tag second"
export PASSWORD=
exec sh "$(dirname "$0")/../tools/make-fixture.sh"
