#!/usr/bin/env bash
# Runs kiln's benchmarks and prints their figures (see docs/benchmarks.md).
# usage: bench/run.sh   (after scripts/setup.sh)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "== scanner and inspect path, in process (Google Benchmark) =="
build/bench/kiln_inspect_perftest --benchmark_min_time=1
echo
echo "== kiln against the bare IREE tools =="
.venv/bin/python tests/models/export_models.py "$work" conv >/dev/null
.venv/bin/python bench/make_big_export.py "$work/big.mlir" 100
.venv/bin/python bench/compile_overhead.py build/kiln "$work/conv.mlir" "$work/big.mlir" 7
echo
echo "== cache hits and the worker pool =="
.venv/bin/python tests/models/export_models.py "$work/models" mlp conv attention gemm_f32 >/dev/null
.venv/bin/python bench/cache_and_matrix.py build/kiln "$work/models" 5
echo
echo "== the cost of a container per job =="
if docker image inspect "kiln-cpu:$(build/kiln version | awk '{print $2}')" >/dev/null 2>&1; then
  .venv/bin/python bench/container_cost.py build/kiln "$work/models/attention.mlir" 5
else
  echo "skipped: kiln's CPU image is not built (KILN_LOCAL_BASE=1 scripts/build-images.sh cpu)"
fi
echo
echo "== kiln serve under load =="
bash bench/serve_load.sh 10
