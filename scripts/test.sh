#!/usr/bin/env bash
# Sets everything up, then runs all of kiln's tests: the unit tests, the
# integration tests that drive the real kiln binary with the real IREE tools
# (and a real dockerd, PostgreSQL and SeaweedFS), and a bounded run of every
# fuzz target (label fuzz; KILN_FUZZ_SECONDS each, default 20; KILN_FUZZ=0
# skips them). The fuzz targets build in the background, at low priority,
# while the other tests run. Ends with the ten slowest tests.
#
# A quicker loop while working: (cd build && ctest -L quick -j2).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
log() { printf '[test] %s\n' "$*" >&2; }

# Warnings are errors in the test build (KILN_WERROR=OFF to relax).
KILN_WERROR="${KILN_WERROR:-ON}" bash scripts/setup.sh --with-docker

rm -f build/ctest.log build/ctest-fuzz.log
fuzz=${KILN_FUZZ:-1}
if [ "$fuzz" != 0 ]; then
  nice -n 15 bash scripts/fuzz-build.sh >build/fuzz-build.log 2>&1 &
  fuzz_build=$!
fi

status=0
(cd build && ctest --output-on-failure -j2 --timeout 600) 2>&1 | tee build/ctest.log || status=$?

if [ "$fuzz" != 0 ]; then
  if wait "$fuzz_build"; then
    (cd build-fuzz && ctest --output-on-failure -j2 -L fuzz) 2>&1 | tee build/ctest-fuzz.log || status=$?
  else
    cat build/fuzz-build.log >&2
    log "the fuzz build failed (output above)"; status=1
  fi
fi

# The slowest ten, from the timings ctest keeps for its scheduling.
python3 - build/Testing/Temporary/CTestCostData.txt build-fuzz/Testing/Temporary/CTestCostData.txt <<'PY' || true
import sys
rows = []
for path in sys.argv[1:]:
    try:
        lines = open(path).read().split("\n---\n")[0].splitlines()
    except OSError:
        continue
    for line in lines:
        parts = line.rsplit(" ", 2)
        if len(parts) == 3:
            rows.append((float(parts[2]), parts[0]))
rows.sort(reverse=True)
print("\nThe ten slowest tests (seconds, last run):")
for seconds, name in rows[:10]:
    print(f"  {seconds:8.1f}  {name}")
PY

# One closing line for both runs: "N passed, N failed".
cat build/ctest.log build/ctest-fuzz.log 2>/dev/null \
  | sed -n 's/.*tests passed, \([0-9]*\) tests\{0,1\} failed out of \([0-9]*\).*/\1 \2/p' \
  | awk '{failed += $1; total += $2} END {printf "%d passed, %d failed\n", total - failed, failed}'
exit "$status"
