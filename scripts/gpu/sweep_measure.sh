#!/usr/bin/env bash
# GPU host, runtime only: measures the bundles that scripts/gpu/sweep_prepare.py
# wrote to CARRY_DIR/sweep (every candidate checked against the untuned module
# and timed by `kiln tune measure`), times XLA on the same seeded inputs
# (scripts/gpu/jax_reference.py, which also saves JAX's outputs at full
# precision), and validates the tuned winner and the three fastest candidates
# of each model against those outputs. Everything lands in OUT_DIR/sweep.tar.gz
# and a short table in OUT_DIR/summary.txt.
#
# usage: scripts/gpu/sweep_measure.sh CARRY_DIR OUT_DIR [DEADLINE_SECONDS]
# environment: KILN_SWEEP_MODELS (default: every bundle under CARRY_DIR/sweep),
#   KILN_TUNE_MIN_TIME (seconds per timed repetition, default 0.1)
set -uo pipefail
carry=$(cd "${1:?usage: sweep_measure.sh CARRY_DIR OUT_DIR [DEADLINE_SECONDS]}" && pwd)
out=${2:?}
deadline=${3:-480}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
start=$(date +%s)
site=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$site"' EXIT
python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" "$carry"/iree_base_runtime-*.whl
export KILN_IREE_DIR="$site"
kiln="$carry/kiln"
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,temperature.gpu --format=csv,noheader || true
models=${KILN_SWEEP_MODELS:-$(cd "$carry/sweep" && ls)}
left() { echo $(( deadline - ($(date +%s) - start) )); }
for m in $models; do
  b="$carry/sweep/$m"
  if [ "$(left)" -le 30 ]; then echo "deadline reached before measuring $m" >&2; break; fi
  t0=$(date +%s)
  timeout "$(left)" "$kiln" tune measure "$b" --min-time "${KILN_TUNE_MIN_TIME:-0.1}" >"$work/$m.measure.log" 2>&1 || true
  echo "measured $m in $(( $(date +%s) - t0 )) s" >&2
done
for m in $models; do
  b="$carry/sweep/$m"
  [ -f "$b/results.json" ] || continue
  if [ "$(left)" -le 20 ]; then echo "deadline reached before comparing $m" >&2; break; fi
  d="$work/$m"
  mkdir -p "$d"
  ref=$(ls "$b"/modules/reference.*.vmfb)
  "$kiln" run "$ref" --default-runtime --seed 0 -o "$d/ref" >/dev/null 2>&1
  timeout "$(left)" python3 "$here/jax_reference.py" "$m" "$d/ref/inputs.npz" "$d/expected.npz" >"$d/jax.json" 2>"$d/jax.err" || true
  python3 - "$b" winner >"$d/picked" <<'PY'
import json, sys
b = sys.argv[1]
bundle = json.load(open(b + "/bundle.json"))
res = {m["id"]: m for m in json.load(open(b + "/results.json"))["measurements"]}
ok = sorted((m for m in res.values() if m["status"] == "ok" and m["id"] != "reference"), key=lambda m: m["latency_ms"])
ids = ["winner"] + [m["id"] for m in ok[:3] if m["id"] != "winner"]
for c in bundle["candidates"]:
    if c["id"] in ids:
        print(" ".join([c["id"], c["module"]] + ["--runtime-flag=" + f for f in c["runtime"]["flags"]]))
PY
  while read -r id module flags; do
    # shellcheck disable=SC2086
    timeout 120 "$kiln" validate "$b/$module" ${flags:---default-runtime} --inputs "$d/ref/inputs.npz" \
      --expected "$d/expected.npz" --report "$d/validate-$id.json" >/dev/null 2>&1 || true
  done <"$d/picked"
  cp "$b/results.json" "$d/results.json"
  cp "$work/$m.measure.log" "$d/" 2>/dev/null || true
done
python3 - "$work" "$out/summary.txt" <<'PY'
import glob, json, os, sys
work, target = sys.argv[1:3]
lines = []
for d in sorted(glob.glob(work + "/*/")):
    m = os.path.basename(d.rstrip("/"))
    try:
        jax = json.load(open(d + "jax.json"))
    except (OSError, ValueError):
        jax = {}
    xla = jax.get("xla_highest_ms")
    lines.append(f"== {m}: XLA highest {xla} ms, default {jax.get('xla_default_ms')} ms")
    try:
        res = json.load(open(d + "results.json"))["measurements"]
    except (OSError, ValueError):
        continue
    for r in sorted(res, key=lambda r: r.get("latency_ms", 1e9)):
        v = {}
        try:
            v = json.load(open(d + f"validate-{r['id']}.json"))
        except (OSError, ValueError):
            pass
        err = v.get("max_abs_error", v.get("outputs", [{}])[0].get("max_abs_error") if v.get("outputs") else None)
        ms = r.get("latency_ms")
        ratio = f"{ms / xla:.2f}x" if ms and xla else ""
        lines.append(f"  {r['id']:<24} {r['status']:<9} {ms if ms is None else round(ms, 4)!s:<8} {ratio:<7} "
                     f"vs-ref {r.get('max_abs_error')} " + (f"vs-jax {err} pass={v.get('passed', v.get('ok'))}" if v else ""))
open(target, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
tar -C "$work" --exclude='*.npz' --exclude='*.npy' -czf "$out/sweep.tar.gz" .
