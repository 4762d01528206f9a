#!/usr/bin/env bash
# Configures and builds the fuzz targets (tests/fuzz) with clang, ASan,
# UBSan and libFuzzer in build-fuzz/. scripts/setup.sh installs clang.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
if [ ! -f build-fuzz/CMakeCache.txt ]; then
  CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DKILN_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DKILN_FUZZ_SECONDS="${KILN_FUZZ_SECONDS:-20}" >/dev/null
fi
cmake --build build-fuzz --target kiln_fuzzers
