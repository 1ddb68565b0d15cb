#!/bin/sh
# Compatibility fixture: a format 3 (encrypted, padded packs and trailers,
# shuffled blobs, keyed cut rule) repository, made by today's
# `snap init --encryption` at commit e3e2faa (format 3 arrived in 67a7f9c;
# e3e2faa is the snap these fixtures were made with, its src/ unchanged by the
# fixtures' commits). One snapshot only, since every format 3 pack is padded
# to at least 256 KiB (a chunk pack and a tree pack, about 512 KiB); the
# backup records SHA-256 checksums, so its tree nodes are version 2 (the
# format 1 and 2 fixtures pin version 1 nodes). The password is in ./password:
#
#   SNAP_PASSWORD=... snap init --encryption xchacha20-poly1305
#   snap --json backup /tmp/snap-compat/format3/src --sha256 --tag first --tag compat -m first-snapshot
#
# Run from anywhere: sh tests/compat/format3/make.sh (builds the commit in a
# temporary worktree; SNAP=/path/to/snap skips the build). Only to remake the
# fixture deliberately: the point of a fixture is that it stays as it is.
set -eu
export FORMAT=3
export COMMIT=e3e2faa63f0a3f6cc2605657faa42dfcef6b8302
export INIT_ARGS="--encryption xchacha20-poly1305"
export SNAPSHOTS=1
export BACKUP1_ARGS="--sha256 --tag first --tag compat -m first-snapshot"
export BACKUP2_ARGS=
export PASSWORD="compat fixture, format 3"
exec sh "$(dirname "$0")/../tools/make-fixture.sh"
