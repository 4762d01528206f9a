#!/usr/bin/env bash
# Builds kiln's wheel with scikit-build-core (kiln compiled from scratch into
# it), installs the wheel and JAX into a fresh virtual environment, and runs the
# README's "Python quick start" there: nothing of the project's .venv or build/
# is used. Runs only with KILN_WHEEL_TEST=1 (it takes as long as a full build);
# exits 77, which CTest counts as skipped, otherwise.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ "${KILN_WHEEL_TEST:-0}" != 1 ]; then
  echo "skipped: set KILN_WHEEL_TEST=1 to build the wheel and run the quick start in a fresh environment"
  exit 77
fi
# shellcheck source=scripts/toolchain.env
. "$root/scripts/toolchain.env"
uv="$root/.venv/bootstrap/bin/uv"
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-wheel-XXXXXX")
keep() { echo "kept for inspection: $work" >&2; }
trap keep ERR
step() { printf '[wheel %s] %s\n' "$(date +%T)" "$*"; }

step "building the wheel"
"$uv" build -q --wheel --out-dir "$work/dist" -C build-dir="$work/build" "$root/python"
wheel=$(ls "$work"/dist/kiln-*.whl)
"$root/.venv/bin/python" -c 'import sys, zipfile; sys.exit("kiln/bin/kiln" not in zipfile.ZipFile(sys.argv[1]).namelist())' \
  "$wheel" || { echo "the wheel has no kiln/bin/kiln" >&2; exit 1; }

step "installing $(basename "$wheel") and JAX $JAX_VERSION into a fresh environment"
"$uv" venv -q --python "$root/.venv/bin/python" "$work/venv"
"$uv" pip install -q --python "$work/venv/bin/python" "$wheel" "jax==$JAX_VERSION" "jaxlib==$JAX_VERSION"

# The quick start is the README's code block under "## Python quick start".
awk '/^## Python quick start/ {on = 1; next} on && /^```python/ {code = 1; next} code && /^```/ {exit} code' \
  "$root/README.md" > "$work/quickstart.py"
[ -s "$work/quickstart.py" ] || { echo "no Python quick start found in README.md" >&2; exit 1; }

step "running the quick start"
printf '' > "$work/kiln.conf"
cd "$work"
out=$(env -u KILN_BINARY -u KILN_IREE_DIR -u PYTHONPATH KILN_CONFIG="$work/kiln.conf" KILN_CACHE_DIR="$work/cache" \
        KILN_TUNING_DIR="$work/tuning" "$work/venv/bin/python" quickstart.py)
echo "$out"
grep -q '^PASS' <<<"$out" || { echo "the quick start's validation did not pass" >&2; exit 1; }

step "checking the version"
py_version=$("$work/venv/bin/python" -c 'import kiln; print(kiln.__version__)')
bin_version=$("$work/venv/bin/kiln" version | awk '{print $2}')
[ "$py_version" = "$bin_version" ] || { echo "kiln.__version__ $py_version != kiln version $bin_version" >&2; exit 1; }
step "passed (kiln $py_version)"
rm -rf "$work"
