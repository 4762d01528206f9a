#!/usr/bin/env bash
# Sets everything up, then runs all of kiln's tests: the unit tests, the
# integration tests that drive the real kiln binary with the real IREE tools
# (and a real dockerd, PostgreSQL and SeaweedFS), and a bounded run of every
# fuzz target (label fuzz; KILN_FUZZ_SECONDS each, default 20; KILN_FUZZ=0
# skips them). Ends with the ten slowest tests and one line counting all.
#
# A quicker loop while working: (cd build && ctest -L quick -j2).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
log() { printf '[test] %s\n' "$*" >&2; }

# Warnings are errors in the test build (KILN_WERROR=OFF to relax).
KILN_WERROR="${KILN_WERROR:-ON}" bash scripts/setup.sh --with-docker

rm -f build/ctest.log build/ctest-fuzz.log
# The fuzz targets build and run beside the other tests, at low priority:
# those mostly wait on compilers, servers and containers. Each fuzz run is
# bounded by time (KILN_FUZZ_SECONDS), not by executions.
fuzz=${KILN_FUZZ:-1}
if [ "$fuzz" != 0 ]; then
  nice -n 15 bash -c 'bash scripts/fuzz-build.sh && cd build-fuzz && ctest --output-on-failure -j2 -L fuzz' \
    >build/ctest-fuzz.log 2>&1 &
  fuzz_run=$!
fi

status=0
(cd build && ctest --output-on-failure -j2 --timeout 600) 2>&1 | tee build/ctest.log || status=$?

if [ "$fuzz" != 0 ]; then
  fuzz_status=0
  wait "$fuzz_run" || fuzz_status=$?
  echo; echo "Fuzz targets (build-fuzz/):"
  grep -v '^\[[0-9]*/[0-9]*\] ' build/ctest-fuzz.log || true
  [ "$fuzz_status" = 0 ] || { log "the fuzz build or a fuzz target failed (above)"; status=1; }
fi

# The ten slowest tests of this run, from ctest's lines "Test #N: NAME ... S sec".
echo; echo "The ten slowest tests (seconds):"
cat build/ctest.log build/ctest-fuzz.log 2>/dev/null \
  | awk '/Test +#[0-9]+: / && / sec$/ { for (i = 1; i <= NF; i++) if ($i ~ /^#[0-9]+:$/) name = $(i + 1);
                                       printf "%10.1f  %s\n", $(NF - 1), name }' \
  | sort -rn | head -10

# One closing line for both runs: "N passed, N failed".
cat build/ctest.log build/ctest-fuzz.log 2>/dev/null \
  | sed -n 's/.*tests passed, \([0-9]*\) tests\{0,1\} failed out of \([0-9]*\).*/\1 \2/p' \
  | awk '{failed += $1; total += $2} END {printf "%d passed, %d failed\n", total - failed, failed}'
exit "$status"
