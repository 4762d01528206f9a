#!/usr/bin/env bash
# GPU host, runtime only: validates every module that
# scripts/gpu/symbolic_prepare.sh made against JAX's reference, the dynamic
# module at each batch (--shape) and each static one at its own, and writes
# OUT_DIR/summary.json (plus each validation's report, OUT_DIR/<check>.json,
# and its output, OUT_DIR/<check>.log). Exit 0 when every check passed.
#
# usage: scripts/gpu/symbolic_measure.sh IN_DIR OUT_DIR
# environment: KILN_BIN (default: IN_DIR/kiln, else kiln on PATH);
#   KILN_SYM_DEVICE (default cuda; cpu checks a module prepared for cpu);
#   the runtime tools: KILN_IREE_DIR if set, else the active virtual
#   environment (VIRTUAL_ENV), else an iree_base_runtime wheel in IN_DIR or
#   its parent, installed into a temporary folder.
set -euo pipefail
in=$(cd "${1:?usage: symbolic_measure.sh IN_DIR OUT_DIR}" && pwd)
out=${2:?usage: symbolic_measure.sh IN_DIR OUT_DIR}
device=${KILN_SYM_DEVICE:-cuda}
kiln=${KILN_BIN:-}
if [ -z "$kiln" ]; then
  if [ -x "$in/kiln" ]; then kiln=$in/kiln; else kiln=$(command -v kiln || true); fi
fi
[ -n "$kiln" ] || { echo "no kiln binary: set KILN_BIN" >&2; exit 2; }
python=$(command -v python3 || command -v python)

site=
trap '[ -z "$site" ] || rm -rf "$site"' EXIT
if [ -z "${KILN_IREE_DIR:-}" ]; then
  if [ -n "${VIRTUAL_ENV:-}" ]; then
    export KILN_IREE_DIR=$VIRTUAL_ENV
  else
    wheel=
    for w in "$in"/iree_base_runtime-*.whl "$in"/../iree_base_runtime-*.whl; do
      if [ -f "$w" ]; then wheel=$w; break; fi
    done
    [ -n "$wheel" ] || { echo "no IREE runtime: activate its virtual environment or set KILN_IREE_DIR" >&2; exit 2; }
    site=$(mktemp -d)
    "$python" -m pip install -q --no-index --no-deps --no-compile --target "$site" "$wheel"
    export KILN_IREE_DIR=$site
  fi
fi
if [ "$device" = cuda ] && command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)

# One line per check: name, module, shape flag or "-", inputs, expected.
"$python" - "$in/check.json" > "$out/checks.txt" <<'PY'
import json, sys
for c in json.load(open(sys.argv[1]))["checks"]:
    print(c["name"], c["module"], c.get("shape", "-"), ",".join(c["inputs"]), ",".join(c["expected"]))
PY

while read -r name module shape inputs expected; do
  args=(validate "$in/$module" --device "$device" --report "$out/$name.json")
  [ "$shape" = - ] || args+=(--shape "$shape")
  IFS=, read -r -a ins <<<"$inputs"
  for f in "${ins[@]}"; do args+=(--input "$in/$f"); done
  IFS=, read -r -a exps <<<"$expected"
  args+=(--expected)
  for f in "${exps[@]}"; do args+=("$in/$f"); done
  rc=0
  "$kiln" "${args[@]}" >"$out/$name.log" 2>&1 || rc=$?
  echo "$rc" >"$out/$name.rc"
  echo "$name: exit $rc" >&2
done < "$out/checks.txt"

"$python" - "$in" "$out" "$device" <<'PY'
import json, os, sys
src, out, device = sys.argv[1:]
plan = json.load(open(os.path.join(src, "check.json")))
rows = []
for c in plan["checks"]:
    name = c["name"]
    rc = int(open(os.path.join(out, name + ".rc")).read())
    row = {"name": name, "module": c["module"], "batch": c["batch"], "exit": rc}
    report = os.path.join(out, name + ".json")
    if os.path.exists(report):
        r = json.load(open(report))
        row.update(passed=r.get("passed"), device=r.get("device"), binding=r.get("binding"),
                   max_abs_error=max((o.get("max_abs_error", 0) for o in r.get("outputs", [])), default=None),
                   max_rel_error=max((o.get("max_rel_error", 0) for o in r.get("outputs", [])), default=None))
    else:
        row.update(passed=False, error=open(os.path.join(out, name + ".log")).read()[-2000:])
    rows.append(row)
summary = {"model": plan["model"], "target": plan["target"], "device": device,
           "passed": all(r["passed"] for r in rows), "checks": rows}
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=2)
print(f"{sum(r['passed'] for r in rows)} of {len(rows)} checks passed; {os.path.join(out, 'summary.json')}")
sys.exit(0 if summary["passed"] else 1)
PY
