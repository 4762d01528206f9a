#!/usr/bin/env bash
# Prepares a folder to carry to a machine with an NVIDIA GPU: the kiln
# binary, the test models compiled here for a CUDA target, their inputs,
# and the IREE runtime wheel for that machine's Python.
#
# usage: scripts/gpu/prepare.sh [OUT_DIR] [TARGET] [PYTHON_VERSION]
#   defaults: .carry  cuda:h100  3.12
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${1:-$root/.carry}
target=${2:-cuda:h100}
pyver=${3:-3.12}

mkdir -p "$out/models" "$out/modules"
"$root/.venv/bin/python" "$root/tests/models/export_models.py" "$out/models" >/dev/null
# Only the text forms travel (the carried folder is size-limited).
rm -f "$out"/models/*.npz "$out"/models/*.mlirbc
"$root/build/kiln" compile "$out"/models/*.mlir --target "$target" -o "$out/modules"
rm -f "$out/models/big_constant.mlir"
# GPU-sized versions of the models, for the latency comparison with XLA.
mkdir -p "$out/bench-models" "$out/bench-modules"
"$root/.venv/bin/python" "$root/tests/models/export_models.py" --bench-sizes "$out/bench-models" >/dev/null
"$root/build/kiln" compile "$out"/bench-models/*.mlir --target "$target" -o "$out/bench-modules" >/dev/null
cp "$root/build/kiln" "$out/kiln"
bash "$root/scripts/gpu/runtime_wheel.sh" "$out" "$pyver"
du -sh "$out"
