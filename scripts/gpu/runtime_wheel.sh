#!/usr/bin/env bash
# Puts the pinned iree-base-runtime wheel for a GPU host's Python into a
# folder to carry there (nothing to do when it is there already).
#
# usage: scripts/gpu/runtime_wheel.sh DIR [PYTHON_VERSION]   (default 3.12)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dir=${1:?usage: runtime_wheel.sh DIR [PYTHON_VERSION]}
pyver=${2:-3.12}
# shellcheck source=scripts/toolchain.env
. "$root/scripts/toolchain.env"
if ! ls "$dir"/iree_base_runtime-"$IREE_VERSION"-*.whl >/dev/null 2>&1; then
  "$root/.venv/bootstrap/bin/python" -m pip download -q --no-deps --only-binary=:all: \
    --python-version "$pyver" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    -d "$dir" "iree-base-runtime==$IREE_VERSION"
fi
