#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root, with the folder that
# scripts/gpu/prepare.sh made. Installs the carried IREE runtime wheel into a
# scratch folder (nothing is fetched), checks the carried kiln binary runs,
# and verifies every module against JAX on the GPU.
#
# usage: scripts/gpu/run_on_gpu.sh [CARRY_DIR]
set -euo pipefail
carry=${1:-.carry}
site=$(mktemp -d)
trap 'rm -rf "$site"' EXIT
python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" "$carry"/iree_base_runtime-*.whl
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader
"$carry/kiln" version
"$carry/kiln" inspect "$carry/models/mlp.mlir"
"$carry/kiln" doctor || true
python3 scripts/verify_modules.py "$carry" --device cuda
