#!/usr/bin/env bash
# Compiler host: prepares the tuning bundles of the six bench-size models
# and a GPT-2 style transformer block (bench/tune_block.py: f32, batch 4,
# 512 tokens, width 1024) for a GPU host that has only the runtime, plus the kiln binary and the
# runtime wheel, in one folder to carry there.
#
# usage: scripts/gpu/tune_prepare.sh ROUND [CARRY_DIR] [TARGET]
#   ROUND 1: round-1 bundles (each level on its own) in CARRY_DIR/tune1/
#   ROUND 2: CARRY_DIR/results1/<bundle>.json must hold round 1's results
#            (what scripts/gpu/tune_measure.sh wrote); round-2 bundles that
#            combine the winners go to CARRY_DIR/tune2/
# environment: KILN_TUNE_MODELS (default: all six and block), KILN_TUNE_F16_MODELS
#   (also tuned with --precision f16-inputs; default: the f32 contractions),
#   KILN_TUNE_PER_DISPATCH (default: kiln's, 24 on GPUs; twice that for the
#   one-dispatch GEMMs), KILN_TUNE_MAX_DISPATCH (dispatch candidates per
#   bundle; default: kiln's, 240 on GPUs), KILN_TUNE_FLAGS (compiler flags for
#   every bundle, as `kiln compile` takes them after "--"; the records apply
#   to compiles with the same flags),
#   KILN_TUNE_INVOCATION (round 2 only: "async" builds the combinations for
#   calls queued back to back, into CARRY_DIR/tune2-async/), PYTHON_VERSION of
#   the GPU host (3.12), KILN_BIN (the kiln binary; default build/kiln)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
round=${1:?usage: tune_prepare.sh ROUND [CARRY_DIR] [TARGET]}
carry=${2:-$root/.carry}
target=${3:-cuda:h100}
models=${KILN_TUNE_MODELS-mlp gemm_f32 gemm_bf16 attention conv layernorm_gelu block}
f16_models=${KILN_TUNE_F16_MODELS-mlp gemm_f32 attention conv}
invocation=${KILN_TUNE_INVOCATION:-sync}
round2=tune2
[ "$invocation" = sync ] || round2=tune2-$invocation
per_dispatch=${KILN_TUNE_PER_DISPATCH:-24}
max_dispatch=()
[ -z "${KILN_TUNE_MAX_DISPATCH:-}" ] || max_dispatch=(--max-dispatch-candidates "$KILN_TUNE_MAX_DISPATCH")
read -r -a flags <<<"${KILN_TUNE_FLAGS:-}"
kiln=${KILN_BIN:-$root/build/kiln}

mkdir -p "$carry/bench-models"
if [ ! -f "$carry/bench-models/mlp.mlir" ]; then
  "$root/.venv/bin/python" "$root/tests/models/export_models.py" --bench-sizes "$carry/bench-models" >/dev/null
fi
if [ ! -f "$carry/bench-models/block.mlir" ]; then
  "$root/.venv/bin/python" "$root/bench/tune_block.py" "$carry/bench-models/block.mlir"
fi

# bundle name, model, precision
bundles() {
  for m in $models; do echo "$m $m highest"; done
  for m in $f16_models; do echo "$m-f16 $m f16-inputs"; done
}

start=$(date +%s)
while read -r name model precision; do
  if [ "$round" = 1 ]; then
    rm -rf "$carry/tune1/$name"
    # A program of one dispatch can afford twice the configurations.
    pd=$per_dispatch
    case "$model" in gemm_*) pd=$(( per_dispatch * 2 )) ;; esac
    "$kiln" tune prepare "$carry/bench-models/$model.mlir" --target "$target" --precision "$precision" \
      --per-dispatch "$pd" "${max_dispatch[@]}" -o "$carry/tune1/$name" -- "${flags[@]}"
  else
    results="$carry/results1/$name.json"
    if [ ! -f "$results" ]; then echo "no round-1 results for $name; skipped" >&2; continue; fi
    cp "$results" "$carry/tune1/$name/results.json"
    rm -rf "${carry:?}/$round2/$name"
    "$kiln" tune prepare "$carry/bench-models/$model.mlir" --target "$target" --precision "$precision" \
      --invocation "$invocation" -o "$carry/$round2/$name" --from "$carry/tune1/$name/results.json" -- "${flags[@]}"
  fi
done < <(bundles)
echo "prepared round $round in $(( $(date +%s) - start )) s" >&2

cp "$kiln" "$carry/kiln"
bash "$root/scripts/gpu/runtime_wheel.sh" "$carry" "${PYTHON_VERSION:-3.12}"
du -sh "$carry/$([ "$round" = 1 ] && echo tune1 || echo "$round2")" "$carry"
