#!/usr/bin/env bash
# GPU host, after round 2 was measured: for each bench model, the untuned
# module (round 2's reference), the tuned winner and, where there is one, the
# f16-inputs winner are validated against JAX at full precision on the same
# seeded inputs, XLA is timed the same way (amortized and p50), and both
# kiln modules are profiled per dispatch. One JSON per model goes to OUT_DIR;
# scripts/gpu/tune_report.py turns them into the tables.
#
# usage: scripts/gpu/tune_compare.sh CARRY_DIR OUT_DIR
# environment: KILN_COMPARE_MODELS (default: every model with a round-2 bundle),
#   KILN_COMPARE_ROUND (the round-2 folder under CARRY_DIR: tune2, or
#   tune2-async for the asynchronous calling convention), KILN_COMPARE_PROFILE
#   (0: skip the per-dispatch profiles)
set -euo pipefail
carry=${1:?usage: tune_compare.sh CARRY_DIR OUT_DIR}
out=${2:?}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
site=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$site" "$work"' EXIT
python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" "$carry"/iree_base_runtime-*.whl
export KILN_IREE_DIR="$site"
kiln="$carry/kiln"
mkdir -p "$out"

# Reads "module, flag, flag, ..." from tune_pick.py into $module and $flags.
pick() {
  local lines
  mapfile -t lines < <(python3 "$here/tune_pick.py" "$1" "$2")
  module=${lines[0]}
  flags=()
  for f in "${lines[@]:1}"; do flags+=("--runtime-flag=$f"); done
  if [ ${#flags[@]} -eq 0 ]; then flags=(--default-runtime); fi
}

round2=${KILN_COMPARE_ROUND:-tune2}
profile() {
  if [ "${KILN_COMPARE_PROFILE:-1}" = 0 ]; then echo '{}'; return; fi
  "$kiln" profile "$@" --json || echo '{}'
}

for bundle in "$carry/$round2"/*/; do
  name=$(basename "$bundle")
  case "$name" in *-f16) continue ;; esac
  case " ${KILN_COMPARE_MODELS:-$name} " in *" $name "*) ;; *) continue ;; esac
  [ -f "$bundle/results.json" ] || continue
  d="$work/$name"
  mkdir -p "$d"
  pick "$bundle" reference
  "$kiln" run "$module" --default-runtime --seed 0 -o "$d/ref" >/dev/null
  python3 "$here/jax_reference.py" "$name" "$d/ref/inputs.npz" "$d/expected.npz" >"$d/jax.json"
  "$kiln" validate "$module" --default-runtime --inputs "$d/ref/inputs.npz" --expected "$d/expected.npz" \
    --report "$d/untuned.validate.json" >/dev/null || true
  profile "$module" --default-runtime >"$d/untuned.profile.json"
  pick "$bundle" winner
  "$kiln" validate "$module" "${flags[@]}" --inputs "$d/ref/inputs.npz" --expected "$d/expected.npz" \
    --report "$d/tuned.validate.json" >/dev/null || true
  profile "$module" "${flags[@]}" >"$d/tuned.profile.json"
  f16="$carry/$round2/$name-f16"
  [ -f "$f16/results.json" ] || f16="$carry/tune1/$name-f16"
  echo '{}' >"$d/f16.validate.json"
  echo '{}' >"$d/f16.results.json"
  if [ -f "$f16/results.json" ]; then
    pick "$f16" winner
    "$kiln" validate "$module" "${flags[@]}" --inputs "$d/ref/inputs.npz" --expected "$d/expected.npz" \
      --report "$d/f16.validate.json" >/dev/null || true
    cp "$f16/results.json" "$d/f16.results.json"
  fi
  python3 - "$d" "$bundle/results.json" "$out/$name.json" <<'PY'
import json, os, sys
d, results, target = sys.argv[1:4]
def load(name):
    try:
        return json.load(open(os.path.join(d, name)))
    except (OSError, ValueError):
        return {}
doc = {"jax": load("jax.json"), "results": json.load(open(results)), "f16_results": load("f16.results.json")}
for key in ("untuned.validate", "tuned.validate", "f16.validate", "untuned.profile", "tuned.profile"):
    doc[key.replace(".", "_")] = load(key + ".json")
json.dump(doc, open(target, "w"), indent=1)
PY
  echo "compared $name" >&2
done
