#!/usr/bin/env bash
# Configures and builds the fuzz targets (tests/fuzz) with clang, ASan,
# UBSan and libFuzzer in build-fuzz/. scripts/setup.sh installs clang.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
if [ ! -f build-fuzz/CMakeCache.txt ]; then
  # -O1 and line tables only: the instrumented build compiles in about half
  # the time of -O2 -g, and reports still name files and lines.
  CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DKILN_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
    -DKILN_FUZZ_SECONDS="${KILN_FUZZ_SECONDS:-20}" >/dev/null
fi
cmake --build build-fuzz --target kiln_fuzzers
