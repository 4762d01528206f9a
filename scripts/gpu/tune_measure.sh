#!/usr/bin/env bash
# GPU host, runtime only: measures every bundle of one round that
# scripts/gpu/tune_prepare.sh made, and copies each results file to OUT_DIR
# as <bundle>.json. Stops starting new bundles once DEADLINE_SECONDS have
# passed (measure is resumable: run it again to finish).
#
# usage: scripts/gpu/tune_measure.sh ROUND CARRY_DIR OUT_DIR [DEADLINE_SECONDS]
# environment: KILN_TUNE_MIN_TIME (seconds per timed run of a whole program,
#   default 0.1), KILN_TUNE_DISPATCH_MIN_TIME and KILN_TUNE_DISPATCH_REPETITIONS
#   (dispatch candidates of round 1: kiln's defaults, 0.02 s and 5). Each
#   bundle's plan (how many measurements, how many timed runs) is printed
#   before it runs.
set -euo pipefail
round=${1:?usage: tune_measure.sh ROUND CARRY_DIR OUT_DIR [DEADLINE_SECONDS]}
carry=${2:?}
out=${3:?}
deadline=${4:-540}
start=$(date +%s)
site=$(mktemp -d)
trap 'rm -rf "$site"' EXIT
python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" "$carry"/iree_base_runtime-*.whl
export KILN_IREE_DIR="$site"
if command -v nvidia-smi >/dev/null; then nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; fi
mkdir -p "$out"
# The policy-preserving bundles first; the opt-in precision ones (-f16) after.
ordered=()
for b in "$carry/tune$round"/*/; do case "$b" in *-f16/) ;; *) ordered+=("$b") ;; esac; done
for b in "$carry/tune$round"/*-f16/; do [ -d "$b" ] && ordered+=("$b"); done
for bundle in "${ordered[@]}"; do
  name=$(basename "$bundle")
  left=$(( deadline - ($(date +%s) - start) ))
  if [ "$left" -le 20 ]; then echo "deadline reached before $name" >&2; break; fi
  t0=$(date +%s)
  timeout "$left" "$carry/kiln" tune measure "$bundle" --min-time "${KILN_TUNE_MIN_TIME:-0.1}" \
    --dispatch-min-time "${KILN_TUNE_DISPATCH_MIN_TIME:-0.02}" \
    --dispatch-repetitions "${KILN_TUNE_DISPATCH_REPETITIONS:-5}" || true
  echo "measured $name in $(( $(date +%s) - t0 )) s" >&2
  [ -f "$bundle/results.json" ] && cp "$bundle/results.json" "$out/$name.json"
done
