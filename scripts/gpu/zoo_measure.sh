#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root, with the folder that
# scripts/gpu/zoo_prepare.sh made: for each zoo program, JAX computes the
# reference from the program's seeded inputs and times XLA
# (scripts/gpu/zoo_reference.py, one process for all), then kiln validates the
# module against that reference and times it amortized (back-to-back calls,
# `kiln bench --amortized`) and per call (p50). Writes OUT_DIR/NAME/result.json
# per program, then the zoo's JSON and Markdown table (scripts/gpu/zoo_report.py).
#
# Resumable: programs with a result are skipped, and no new program starts
# after KILN_ZOO_BUDGET seconds (default 330); run it again to go on.
#
# usage: scripts/gpu/zoo_measure.sh [CARRY_DIR] [OUT_DIR] [RESULTS_JSON]
#   defaults: .carry-zoo  zoo-results  bench/results/zoo-h100.json
# environment: KILN_ZOO_DEVICE (the device; default: the one the module's
#   metadata names), KILN_ZOO_BUDGET, KILN_ZOO_NAMES (a subset, space-separated),
#   KILN_IREE_DIR (default: the carried runtime wheel, installed to a scratch
#   folder), PYTHON (python3)
set -euo pipefail
carry=${1:-.carry-zoo}
out=${2:-zoo-results}
results=${3:-bench/results/zoo-h100.json}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=${PYTHON:-python3}
budget=${KILN_ZOO_BUDGET:-330}
start=$SECONDS
if [ -z "${KILN_IREE_DIR:-}" ]; then
  site=$(mktemp -d)
  trap 'rm -rf "$site"' EXIT
  "$python" -m pip install -q --no-index --no-deps --no-compile --target "$site" "$carry"/iree_base_runtime-*.whl
  export KILN_IREE_DIR="$site"
fi
# The modules' PTX is compiled for the GPU when a module loads; keep the
# driver's cache across the three runs of each module.
export CUDA_CACHE_PATH=${CUDA_CACHE_PATH:-/tmp/kiln-zoo-nvcache}
kiln="$carry/kiln"
device=()
[ -n "${KILN_ZOO_DEVICE:-}" ] && device=(--device "$KILN_ZOO_DEVICE")
mkdir -p "$out"

names=()
for desc in "$carry"/programs/*.json; do
  name=$(basename "$desc" .json)
  case " ${KILN_ZOO_NAMES:-$name} " in *" $name "*) ;; *) continue ;; esac
  names+=("$name")
done
todo=()
for name in "${names[@]}"; do
  [ -f "$out/$name/result.json" ] || todo+=("$carry/programs/$name")
done
if [ ${#todo[@]} -gt 0 ]; then
  "$python" "$here/zoo_reference.py" "$out" "${todo[@]}" --budget "$budget"
fi

for name in "${names[@]}"; do
  d="$out/$name"
  [ -f "$d/result.json" ] && continue
  # The reference ran out of budget (or its files did not come along): next run.
  [ -f "$d/jax.error" ] || { [ -f "$d/jax.json" ] && [ -f "$d/inputs.npz" ] && [ -f "$d/expected.npz" ]; } || continue
  if [ $((SECONDS - start)) -gt "$budget" ]; then
    echo "zoo_measure.sh: time budget spent; run again to go on" >&2
    break
  fi
  module=
  for m in "$carry"/modules/"$name".*.vmfb; do [ -f "$m" ] && module=$m && break; done
  if [ -n "$module" ] && [ -f "$d/jax.json" ]; then
    timeout 300 "$kiln" validate "$module" "${device[@]}" --inputs "$d/inputs.npz" --expected "$d/expected.npz" \
      --report "$d/validate.json" >"$d/validate.txt" 2>&1 || true
    timeout 300 "$kiln" bench "$module" "${device[@]}" --inputs "$d/inputs.npz" --amortized --min-time 0.1 \
      --repetitions 3 --json >"$d/amortized.json" 2>"$d/amortized.err" || true
    timeout 300 "$kiln" bench "$module" "${device[@]}" --inputs "$d/inputs.npz" --warmup 5 --repetitions 50 \
      -o "$d/bench" --json >"$d/bench.json" 2>"$d/bench.err" || true
  fi
  "$python" "$here/zoo_report.py" --one "$d" "$carry/compile.json" "$name"
  rm -f "$d/inputs.npz" "$d/expected.npz"
  echo "measured $name ($((SECONDS - start)) s)" >&2
done
"$python" "$here/zoo_report.py" "$out" "$results" "${names[@]}"
