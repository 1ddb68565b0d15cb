#!/bin/sh
# Compatibility fixture: a format 2 (encrypted, unpadded packs, seeded
# chunker) repository, written by the snap of commit ce4dd05 ("Encryption at
# rest (format 2) and snap copy"), the commit that introduced format 2. Two
# snapshots of the tree of ../tools/tree.py; the password is in ./password:
#
#   SNAP_PASSWORD=... snap init --encryption xchacha20-poly1305
#   snap --json backup /tmp/snap-compat/format2/src --tag first --tag compat -m first-snapshot
#   (state 2 of the tree)
#   snap --json backup /tmp/snap-compat/format2/src --tag second
#
# Run from anywhere: sh tests/compat/format2/make.sh (builds the commit in a
# temporary worktree; SNAP=/path/to/snap skips the build). Only to remake the
# fixture deliberately: the point of a fixture is that it stays as it is.
set -eu
export FORMAT=2
export COMMIT=ce4dd055187561fefaf0341ee4aa44caf1e893ed
export INIT_ARGS="--encryption xchacha20-poly1305"
export SNAPSHOTS=2
export BACKUP1_ARGS="--tag first --tag compat -m first-snapshot"
export BACKUP2_ARGS="--tag second"
export PASSWORD="compat fixture, format 2"
exec sh "$(dirname "$0")/../tools/make-fixture.sh"
