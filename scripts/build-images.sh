#!/usr/bin/env bash
# Builds kiln's Docker images: kiln-cpu:VERSION and kiln-cuda:VERSION.
#
# usage: scripts/build-images.sh [cpu|cuda|all] [--kiln PATH]
#   --kiln PATH: put this kiln binary and the IREE tools of this machine's
#     .venv into the image instead of building kiln from source in the image
#     (the Dockerfile's `host` stage; seconds instead of a full build). The
#     binary must run on the image's base (the tests build it on Debian 12).
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
which=all
host_kiln=
while [ $# -gt 0 ]; do
  case "$1" in
    --kiln) host_kiln=${2:?--kiln needs the path of a kiln binary}; shift 2 ;;
    cpu|cuda|all) which=$1; shift ;;
    *) printf '[build-images] usage: scripts/build-images.sh [cpu|cuda|all] [--kiln PATH]\n' >&2; exit 2 ;;
  esac
done
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
fetch_wheels() {
  rm -f docker/wheels/*.whl
  local plat
  case "$(uname -m)" in
    x86_64) plat=x86_64 ;;
    aarch64|arm64) plat=aarch64 ;;
    *) plat=$(uname -m) ;;
  esac
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 --implementation cp \
    --platform "manylinux_2_28_$plat" --platform "manylinux_2_27_$plat" -d docker/wheels \
    "iree-base-compiler==$IREE_VERSION" "iree-base-runtime==$IREE_VERSION" \
    || log "could not fetch the IREE wheels here; the image build will try PyPI itself"
}

# docker/host/ for the host stage: the kiln binary and the IREE tools of
# .venv, hard-linked where the file system allows, less the Python parts
# (the same files the builder stage keeps).
stage_host() {
  local site
  site=$("$py" -c 'import iree.compiler, os; print(os.path.dirname(os.path.dirname(os.path.dirname(iree.compiler.__file__))))' 2>/dev/null) \
    || { log "no IREE in $py: run scripts/setup.sh first"; exit 1; }
  [ -x "$host_kiln" ] || { log "--kiln $host_kiln is not an executable"; exit 1; }
  clear_host
  mkdir -p docker/host/bin docker/host/iree/iree
  strip -o docker/host/bin/kiln "$host_kiln" 2>/dev/null || cp "$host_kiln" docker/host/bin/kiln
  # The wheels' dist-info folders name the release that kiln checks.
  local parts=("$site/iree/compiler" "$site/iree/_runtime_libs")
  local info=("$site"/iree_base_compiler-*.dist-info "$site"/iree_base_runtime-*.dist-info)
  cp -al "${parts[@]}" docker/host/iree/iree/ 2>/dev/null || cp -a "${parts[@]}" docker/host/iree/iree/
  cp -a "${info[@]}" docker/host/iree/
  find docker/host/iree \( -name '*.py' -o -name '__pycache__' -o -name '*.pyi' -o -path '*/_mlir_libs/_mlir*' \
    -o -name '*.cpython-*' \) -prune -exec rm -rf {} +
}
clear_host() { find docker/host -mindepth 1 ! -name README -exec rm -rf {} +; }
trap clear_host EXIT

build_one() {
  local flavor=$1 base=$2
  local tag="kiln-$flavor:$version"
  log "building $tag from $base"
  local stage=product
  [ -n "$host_kiln" ] && stage=host
  local args=(--network=host -f docker/Dockerfile --target "$stage"
    --build-arg "BASE=$base" --build-arg "BUILDER_BASE=$builder_base" --build-arg "FLAVOR=$flavor"
    --build-arg "KILN_VERSION=$version" --build-arg "IREE_VERSION=$IREE_VERSION"
    --build-arg "IREE_BUILD=$build" --build-arg "IREE_REVISION=$revision" -t "$tag" .)
  if [ -n "${KILN_PLATFORMS:-}" ]; then
    docker buildx build --platform "$KILN_PLATFORMS" "${args[@]}"
  else
    DOCKER_BUILDKIT=0 docker build -q "${args[@]}" >/dev/null
    docker run --rm --network=none "$tag" --version >/dev/null \
      || { log "$tag does not run kiln --version"; exit 1; }
  fi
  docker image inspect "$tag" --format "$tag {{.Size}} bytes" 2>/dev/null || true
}

# What the image's stage takes from here, made once for every flavor
# (docker/host/ is emptied again on exit).
if [ -n "$host_kiln" ]; then stage_host; else clear_host; fetch_wheels; fi
case "$which" in
  cpu) build_one cpu "$cpu_base" ;;
  cuda) build_one cuda "$cuda_base" ;;
  all) build_one cpu "$cpu_base"; build_one cuda "$cuda_base" ;;
esac
