#!/usr/bin/env bash
# Sets everything up, then runs kiln's main job on the bundled example:
# examples/mlp.mlir (a small MLP exported from JAX) compiled for this
# machine's CPU and for an NVIDIA H100, and prints what was made.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup.sh
echo
build/kiln inspect examples/mlp.mlir
echo
build/kiln compile --job examples/job.json
echo
echo "Made in build/example-out:"
ls -l build/example-out
