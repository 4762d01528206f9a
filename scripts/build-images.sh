#!/usr/bin/env bash
# Builds kiln's Docker images: kiln-cpu:VERSION and kiln-cuda:VERSION.
#
# usage: scripts/build-images.sh [cpu|cuda|all]
# environment:
#   KILN_CPU_BASE, KILN_CUDA_BASE, KILN_BUILDER_BASE: base images; by default
#     the upstream ones (debian:bookworm-slim, nvidia/cuda:12.8.1-base-ubuntu24.04,
#     debian:bookworm); KILN_LOCAL_BASE=1 uses the debootstrap image that
#     scripts/docker-env.sh makes, for machines with no registry.
#   KILN_PLATFORMS: e.g. linux/amd64,linux/arm64 to build with buildx for
#     several architectures (needs buildx and emulation); default: this one.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=scripts/toolchain.env
. scripts/toolchain.env
which=${1:-all}
version=$(sed -n 's/^project(kiln VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
log() { printf '[build-images] %s\n' "$*" >&2; }

if [ "${KILN_LOCAL_BASE:-0}" = 1 ]; then
  local_base=$(bash scripts/docker-env.sh | tail -1)
  cpu_base=${KILN_CPU_BASE:-$local_base}
  cuda_base=${KILN_CUDA_BASE:-$local_base}
  builder_base=${KILN_BUILDER_BASE:-$local_base}
else
  cpu_base=${KILN_CPU_BASE:-debian:bookworm-slim}
  cuda_base=${KILN_CUDA_BASE:-nvidia/cuda:12.8.1-base-ubuntu24.04}
  builder_base=${KILN_BUILDER_BASE:-debian:bookworm}
fi

# The IREE build and revision labels come from the pinned wheels' version
# file; the wheels themselves go into the build context when this machine
# has them (so the build needs no PyPI).
py=.venv/bin/python
[ -x "$py" ] || py=python3
build=$("$py" -c 'import iree.compiler.version as v; print(v.VERSION)' 2>/dev/null || echo unknown)
revision=$("$py" -c 'import iree.compiler.version as v; print(v.REVISIONS["IREE"])' 2>/dev/null || echo unknown)
# The builder stage is Debian 12 (Python 3.11); its pip installs these with
# --no-index. Only the wheels' native tools are kept, so the Python version
# only has to match the builder's.
rm -f docker/wheels/*.whl
case "$(uname -m)" in
  x86_64) plat=x86_64 ;;
  aarch64|arm64) plat=aarch64 ;;
  *) plat=$(uname -m) ;;
esac
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 --implementation cp \
  --platform "manylinux_2_28_$plat" --platform "manylinux_2_27_$plat" -d docker/wheels \
  "iree-base-compiler==$IREE_VERSION" "iree-base-runtime==$IREE_VERSION" \
  || log "could not fetch the IREE wheels here; the image build will try PyPI itself"

build_one() {
  local flavor=$1 base=$2
  local tag="kiln-$flavor:$version"
  log "building $tag from $base"
  local args=(--network=host -f docker/Dockerfile
    --build-arg "BASE=$base" --build-arg "BUILDER_BASE=$builder_base" --build-arg "FLAVOR=$flavor"
    --build-arg "KILN_VERSION=$version" --build-arg "IREE_VERSION=$IREE_VERSION"
    --build-arg "IREE_BUILD=$build" --build-arg "IREE_REVISION=$revision" -t "$tag" .)
  if [ -n "${KILN_PLATFORMS:-}" ]; then
    docker buildx build --platform "$KILN_PLATFORMS" "${args[@]}"
  else
    DOCKER_BUILDKIT=0 docker build -q "${args[@]}" >/dev/null
  fi
  docker image inspect "$tag" --format "$tag {{.Size}} bytes" 2>/dev/null || true
}

case "$which" in
  cpu) build_one cpu "$cpu_base" ;;
  cuda) build_one cuda "$cuda_base" ;;
  all) build_one cpu "$cpu_base"; build_one cuda "$cuda_base" ;;
  *) log "usage: scripts/build-images.sh [cpu|cuda|all]"; exit 2 ;;
esac
