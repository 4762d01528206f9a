#!/usr/bin/env bash
# Load on kiln serve's status and metrics endpoints while compiles run:
# wrk (Debian's) against GET /v1/jobs/ID and GET /metrics on loopback, with
# a stream of real compile jobs submitted throughout (cache off, so each one
# compiles). Prints requests per second and p99 latency for each endpoint.
#
# usage: bench/serve_load.sh [SECONDS]   (after scripts/setup.sh)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
seconds=${1:-10}
if ! command -v wrk >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
work=$(mktemp -d)
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
cleanup() { [ -n "${server:-}" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
.venv/bin/python tests/models/export_models.py "$work/models" conv mlp >/dev/null
KILN_SERVE_TOKENS=$token KILN_CACHE=false build/kiln serve --listen 127.0.0.1:0 --port-file "$work/port" \
  --data-dir "$work/data" --executor local --workers 1 --max-queue 1000 2>"$work/serve.log" &
server=$!
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
url="http://127.0.0.1:$(cat "$work/port")"
auth="Authorization: Bearer $token"
id=$(curl -s -H "$auth" -F model=@"$work/models/mlp.mlir" -F 'options={"targets":["cpu"]}' "$url/v1/jobs" |
     sed -n 's/.*"id": "\([0-9a-f]*\)".*/\1/p')
# Compiles keep running while wrk measures: one submission every half second.
( end=$((SECONDS + 2 * seconds + 5)); while [ $SECONDS -lt $end ]; do
    curl -s -o /dev/null -H "$auth" -F model=@"$work/models/conv.mlir" -F 'options={"targets":["cpu"]}' "$url/v1/jobs"
    sleep 0.5
  done ) &
measure() {
  local name=$1 path=$2 out
  out=$(wrk -t2 -c16 -d"${seconds}s" --latency -H "$auth" "$url$path")
  printf '%-22s %10s req/s   p99 %s\n' "$name" "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    "$(awk '$1 == "99%" {print $2}' <<<"$out")"
}
echo "wrk -t2 -c16 -d${seconds}s, compiles running (1 worker, cache off):"
measure "GET /v1/jobs/{id}" "/v1/jobs/$id"
measure "GET /metrics" "/metrics"
done_jobs=$(curl -s -H "$auth" "$url/metrics" | awk '/^kiln_jobs\{state="succeeded"\}/ {print $2}')
echo "jobs compiled meanwhile: $done_jobs"
