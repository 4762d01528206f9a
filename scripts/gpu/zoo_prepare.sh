#!/usr/bin/env bash
# Prepares the model zoo for a GPU machine: exports every zoo program
# (bench/zoo/export.py; with the zoo's environment .venv-zoo when it is there,
# which adds the keras-hub backbones), compiles each with kiln for TARGET with
# the asynchronous calling convention, one compile at a time, and puts into
# CARRY_DIR what scripts/gpu/zoo_measure.sh needs there: the exports
# (programs/*.jaxexp, *.json), the modules, the compile table
# (compile.md, compile.json), the kiln binary and the IREE runtime wheel.
# A program that does not compile is recorded and the rest go on.
#
# usage: scripts/gpu/zoo_prepare.sh [CARRY_DIR] [TARGET] [PYTHON_VERSION]
#   defaults: .carry-zoo  cuda:h100  3.12
# environment: KILN (the binary; default build/kiln), KILN_ZOO_NAMES (a
#   subset, space-separated), KILN_ZOO_SIZE (deploy, or small for a quick
#   check), KILN_ZOO_EXPORT_PYTHON (the Python that exports; default .venv-zoo's,
#   else .venv's), KILN_ZOO_NO_WHEEL=1 (no runtime wheel, for a run on this
#   machine)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
carry=${1:-$root/.carry-zoo}
target=${2:-cuda:h100}
pyver=${3:-3.12}
kiln=${KILN:-$root/build/kiln}
[ -x "$kiln" ] || { echo "zoo_prepare.sh: $kiln is missing: build kiln first" >&2; exit 1; }
mkdir -p "$carry/programs" "$carry/modules"
read -r -a names <<<"${KILN_ZOO_NAMES:-}"
python=${KILN_ZOO_EXPORT_PYTHON:-}
source=jax
if [ -z "$python" ] && [ -x "$root/.venv-zoo/bin/python" ]; then
  python=$root/.venv-zoo/bin/python
  source=all
elif [ -z "$python" ]; then
  echo "zoo_prepare.sh: no .venv-zoo (bench/zoo/setup.sh): exporting the plain-JAX programs only" >&2
  python=$root/.venv/bin/python
fi
# The StableHLO text is only compiled for targets with no JAX platform.
mlir=(--no-mlir)
case "$target" in cpu* | cuda* | rocm*) ;; *) mlir=() ;; esac
"$python" "$root/bench/zoo/export.py" "$carry/programs" --source "$source" --size "${KILN_ZOO_SIZE:-deploy}" \
  "${mlir[@]}" "${names[@]}" >/dev/null
nice -n 10 "$root/.venv/bin/python" "$root/bench/zoo/compile_table.py" "$carry/programs" "${names[@]}" \
  --kiln "$kiln" --target "$target" --modules "$carry/modules" \
  --table "$carry/compile.md" --json "$carry/compile.json" >/dev/null || true
rm -f "$carry"/modules/*.json.tmp
cp "$kiln" "$carry/kiln"
strip "$carry/kiln" 2>/dev/null || true
[ "${KILN_ZOO_NO_WHEEL:-0}" = 1 ] || bash "$root/scripts/gpu/runtime_wheel.sh" "$carry" "$pyver"
cat "$carry/compile.md"
du -sh "$carry"
