#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 300) in the fuzz build
# (clang, ASan, UBSan; built here if needed) and prints, per target, the
# executions, the coverage reached (libFuzzer's cov: edges and ft:
# features) and the crashes found (saved in build-fuzz/fuzz-crashes/).
#
# usage: bench/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${1:-300}
shift || true
bash "$root/scripts/fuzz-build.sh" >&2
cd "$root/build-fuzz"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*; do targets+=("${f#tests/fuzz/fuzz_}"); done
fi
printf '%-14s %12s %10s %8s %8s %8s\n' target executions execs/s cov ft crashes
for t in "${targets[@]}"; do
  mkdir -p "fuzz-corpus/$t" fuzz-crashes
  log=$(mktemp)
  before=$(find fuzz-crashes -name "$t-*" | wc -l)
  ASAN_OPTIONS=detect_leaks=1 "tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=1048576 -print_final_stats=1 -artifact_prefix="fuzz-crashes/$t-" \
    "fuzz-corpus/$t" "$root/tests/fuzz/corpus/$t" >"$log" 2>&1 || true
  after=$(find fuzz-crashes -name "$t-*" | wc -l)
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo 0)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo 0)
  printf '%-14s %12s %10s %8s %8s %8s\n' "$t" "${runs:-0}" "$(( ${runs:-0} / seconds ))" "${cov:-0}" "${ft:-0}" "$(( after - before ))"
  rm -f "$log"
done
