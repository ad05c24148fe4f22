#!/usr/bin/env bash
# Stop the local dev stack that cluster/dev/start-local.sh started: only the processes in its pid files,
# never other Ray or SeaweedFS processes on the machine. The S3 data and credentials file are kept.
set -euo pipefail

case "${1:-}" in
  "") ;;
  -h|--help)
    echo "Usage: cluster/dev/stop-local.sh   (EVALSVC_DEV_DIR as for start-local.sh; S3 data is kept)"
    exit 0 ;;
  *) echo "stop-local: unknown option $1 (see --help)" >&2; exit 2 ;;
esac

DEV_DIR=${EVALSVC_DEV_DIR:-$HOME/.cache/evalsvc/dev}

stop_pidfile() { # stop_pidfile FILE NAME EXPECTED_COMMAND_SUBSTRING
  local file=$DEV_DIR/$1 name=$2 expect=$3 pid
  if [ ! -f "$file" ]; then echo "$name: not started here"; return; fi
  pid=$(cat "$file")
  # The pid file may be stale and the number reused: only signal the process if it is still ours.
  if ! kill -0 "$pid" 2>/dev/null || ! ps -p "$pid" -o args= | grep -q -- "$expect"; then
    echo "$name: not running"
    rm -f "$file"
    return
  fi
  kill -TERM "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$name: still running after 30 s; sending SIGKILL to $pid"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
  echo "$name: stopped"
}

stop_pidfile ray.pid Ray "ray start"
stop_pidfile weed.pid "S3 (SeaweedFS)" "mini"

# weed leaves unix sockets named after its ports in /tmp.
if [ -f "$DEV_DIR/weed.port" ]; then
  p=$(cat "$DEV_DIR/weed.port")
  for offset in 0 1 2 3 4 10000 10001 10002 10003 10004; do
    rm -f /tmp/seaweedfs-*-"$((p + offset))".sock
  done
  rm -f "$DEV_DIR/weed.port"
fi
