#!/usr/bin/env bash
# Compiler host, no GPU needed: prepares the symbolic-batch check for a GPU
# host that has only the runtime. Exports the symbolic-batch MLP
# (classifier_poly, batch "b"), compiles it for TARGET into one dynamic
# module and one static module per batch (--bind b=N), and writes JAX's
# reference at each batch, computed on CPU at matmul precision 'highest'.
# scripts/gpu/symbolic_measure.sh validates every module at its batches.
#
# usage: scripts/gpu/symbolic_prepare.sh OUT_DIR [TARGET]   (default cuda:h100)
# environment: KILN_BIN (the kiln binary; default build/kiln), KILN_SYM_BATCHES
#   (default "1 5 64"), KILN_SYM_CARRY_BIN (1, the default: a stripped copy of
#   the kiln binary goes to OUT_DIR/kiln; 0: none)
#
# OUT_DIR then holds
#   classifier_poly.mlir                 the export
#   b<N>/arg<i>.npy, b<N>/out<i>.npy     inputs and JAX's outputs at batch N
#   dynamic/classifier_poly.<T>.vmfb     one module for every batch
#   bound/classifier_poly.b<N>.<T>.vmfb  a static module per batch
#   check.json                           what symbolic_measure.sh runs
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${1:?usage: symbolic_prepare.sh OUT_DIR [TARGET]}
target=${2:-cuda:h100}
kiln=${KILN_BIN:-$root/build/kiln}
read -r -a batches <<<"${KILN_SYM_BATCHES:-1 5 64}"
model=classifier_poly

rm -rf "$out/dynamic" "$out/bound"
mkdir -p "$out"
"$root/.venv/bin/python" "$root/scripts/gpu/symbolic_reference.py" "$out" "${batches[@]}" >&2

binds=()
for b in "${batches[@]}"; do binds+=(--bind "b=$b"); done
"$kiln" compile "$out/$model.mlir" --target "$target" -o "$out/dynamic" --no-cache >&2
"$kiln" compile "$out/$model.mlir" --target "$target" "${binds[@]}" -o "$out/bound" --no-cache >&2

# The list of checks: the dynamic module at every batch, each static one at its own.
"$root/.venv/bin/python" - "$out" "$model" "$target" "${batches[@]}" <<'PY'
import glob, json, os, sys
out, model, target, *batches = sys.argv[1:]
def rel(p): return os.path.relpath(p, out)
dynamic = glob.glob(os.path.join(out, "dynamic", f"{model}.*.vmfb"))
if len(dynamic) != 1:
    sys.exit(f"expected one dynamic module, found {dynamic}")
checks = []
for b in batches:
    bound = glob.glob(os.path.join(out, "bound", f"{model}.b{b}.*.vmfb"))
    if len(bound) != 1:
        sys.exit(f"expected one module bound to b={b}, found {bound}")
    args = sorted(glob.glob(os.path.join(out, f"b{b}", "arg*.npy")), key=lambda p: int(p.rsplit("arg", 1)[1][:-4]))
    outs = sorted(glob.glob(os.path.join(out, f"b{b}", "out*.npy")), key=lambda p: int(p.rsplit("out", 1)[1][:-4]))
    common = {"batch": int(b), "inputs": [rel(p) for p in args], "expected": [rel(p) for p in outs]}
    checks.append({"name": f"dynamic.b{b}", "module": rel(dynamic[0]), "shape": f"0={b}x64", **common})
    checks.append({"name": f"bound.b{b}", "module": rel(bound[0]), **common})
with open(os.path.join(out, "check.json"), "w") as f:
    json.dump({"model": model, "target": target, "checks": checks}, f, indent=2)
PY

if [ "${KILN_SYM_CARRY_BIN:-1}" = 1 ]; then
  strip -o "$out/kiln" "$kiln" 2>/dev/null || cp "$kiln" "$out/kiln"
  chmod +x "$out/kiln"
fi
du -sh "$out" >&2
