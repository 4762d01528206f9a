#!/usr/bin/env bash
# Sets everything up, then runs all of kiln's tests: the unit tests, the
# integration tests that drive the real kiln binary with the real IREE tools,
# and a bounded run of every fuzz target (label fuzz; KILN_FUZZ_SECONDS each,
# default 20; KILN_FUZZ=0 skips them).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# Warnings are errors in the test build (KILN_WERROR=OFF to relax).
KILN_WERROR="${KILN_WERROR:-ON}" bash scripts/setup.sh
(cd build && ctest --output-on-failure -j2 --timeout 600)
if [ "${KILN_FUZZ:-1}" != 0 ]; then
  bash scripts/fuzz-build.sh
  (cd build-fuzz && ctest --output-on-failure -j2 -L fuzz)
fi
