#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root: for each bench-size
# model that scripts/gpu/prepare.sh compiled, kiln runs it on the GPU with
# seeded inputs, JAX computes the reference from the same inputs on the same
# GPU, kiln validates against it and benchmarks the module, and JAX's latency
# is measured the same way (one call per sample, p50). Prints a Markdown table.
#
# usage: scripts/gpu/bench_vs_jax.sh [CARRY_DIR] [RESULTS_DIR]
# environment: KILN_BENCH_DEVICE (cuda), KILN_BENCH_REPETITIONS (200),
#   KILN_IREE_DIR (default: the carried runtime wheel, installed to a scratch
#   folder), PYTHON (python3), KILN_BENCH_MODULES (bench-modules: the folder
#   of CARRY_DIR holding the modules)
set -euo pipefail
carry=${1:-.carry}
results=${2:-$(mktemp -d)}
python=${PYTHON:-python3}
if [ -z "${KILN_IREE_DIR:-}" ]; then
  site=$(mktemp -d)
  trap 'rm -rf "$site"' EXIT
  "$python" -m pip install -q --no-index --no-deps --no-compile --target "$site" "$carry"/iree_base_runtime-*.whl
  export KILN_IREE_DIR="$site"
fi
kiln="$carry/kiln"
device=${KILN_BENCH_DEVICE:-cuda}
reps=${KILN_BENCH_REPETITIONS:-200}
for module in "$carry"/"${KILN_BENCH_MODULES:-bench-modules}"/*.vmfb; do
  name=$(basename "$module" | cut -d. -f1)
  dir="$results/$name"
  mkdir -p "$dir"
  "$kiln" run "$module" --device "$device" --seed 0 -o "$dir" >/dev/null
  "$python" scripts/gpu/jax_reference.py "$name" "$dir/inputs.npz" "$dir/expected.npz" --reps "$reps" >"$dir/jax.json"
  "$kiln" validate "$module" --device "$device" --inputs "$dir/inputs.npz" --expected "$dir/expected.npz" \
    --report "$dir/validate.json" >"$dir/validate.txt" || true
  "$kiln" bench "$module" --device "$device" --inputs "$dir/inputs.npz" --warmup 20 --repetitions "$reps" \
    -o "$dir" --json >"$dir/bench.json"
  echo "done: $name" >&2
done
"$python" scripts/gpu/summarize.py "$results"
