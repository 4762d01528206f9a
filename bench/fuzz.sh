#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 300) in the fuzz build
# (clang, ASan, UBSan; built here if needed) and prints, per target, the
# executions, the coverage reached (libFuzzer's cov: edges and ft:
# features) and the crashes found (saved in build-fuzz/fuzz-crashes/).
#
# usage: bench/fuzz.sh [-j N] [--no-build] [SECONDS] [TARGET...]
#   -j N        run N targets at once (default 1; one core each)
#   --no-build  use the fuzz binaries as they are, e.g. a build-fuzz/ copied
#               to another host together with this script and
#               tests/fuzz/corpus/ (the binaries need glibc 2.34, libstdc++
#               of GCC 12, OpenSSL 3's libcrypto and zlib; docs/reliability.md)
# KILN_FUZZ_BUILD names the fuzz build folder (default: build-fuzz/ here).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
parallel=1
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    -j) parallel=${2:?-j needs a number}; shift 2 ;;
    -j*) parallel=${1#-j}; shift ;;
    --no-build) build=0; shift ;;
    *) break ;;
  esac
done
case "$parallel" in ''|*[!0-9]*|0) echo "fuzz.sh: -j takes a positive number, not '$parallel'" >&2; exit 2 ;; esac
seconds=${1:-300}
shift || true
builddir=${KILN_FUZZ_BUILD:-$root/build-fuzz}
if [ "$build" = 1 ]; then bash "$root/scripts/fuzz-build.sh" >&2; fi
cd "$builddir"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*; do [ -x "$f" ] && targets+=("${f#tests/fuzz/fuzz_}"); done
fi
for t in "${targets[@]}"; do
  [ -x "tests/fuzz/fuzz_$t" ] || { echo "fuzz.sh: no target $t in $builddir/tests/fuzz" >&2; exit 2; }
done
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

# One target, then its line of the table (lines come in the order targets
# finish; each is written whole).
fuzz_one() {
  local t=$1 log="$results/$1.log" before after runs cov ft
  mkdir -p "fuzz-corpus/$t" fuzz-crashes
  before=$(find fuzz-crashes -name "$t-*" | wc -l)
  ASAN_OPTIONS=detect_leaks=1 "tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=1048576 -print_final_stats=1 -artifact_prefix="fuzz-crashes/$t-" \
    "fuzz-corpus/$t" "$root/tests/fuzz/corpus/$t" >"$log" 2>&1 || true
  after=$(find fuzz-crashes -name "$t-*" | wc -l)
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo 0)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo 0)
  printf '%-14s %12s %10s %8s %8s %8s\n' "$t" "${runs:-0}" "$(( ${runs:-0} / seconds ))" "${cov:-0}" "${ft:-0}" \
    "$(( after - before ))"
}

printf '%-14s %12s %10s %8s %8s %8s\n' target executions execs/s cov ft crashes
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$parallel" ]; then wait -n; running=$((running - 1)); fi
  fuzz_one "$t" &
  running=$((running + 1))
done
wait
