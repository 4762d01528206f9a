#!/usr/bin/env bash
# Sets everything up, then runs all of kiln's tests: the unit tests and the
# integration tests that drive the real kiln binary with the real IREE tools.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup.sh
cd build
ctest --output-on-failure -j2 --timeout 600
