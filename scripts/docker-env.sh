#!/usr/bin/env bash
# Makes a Docker engine available for kiln's container executor and tests:
#   1. installs Debian's docker.io and debootstrap when they are missing,
#   2. starts dockerd when no engine answers (as root, without a bridge
#      network or iptables rules: kiln's containers run with --network=none),
#   3. makes the base image kiln's Dockerfiles build FROM when no registry
#      can provide one: a minimal Debian 12 made with debootstrap and
#      `docker import`ed as kiln-base:bookworm.
# Safe to run again. Prints the image name on the last line.
set -euo pipefail
base_image=${KILN_BASE_IMAGE:-kiln-base:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
log() { printf '[docker-env] %s\n' "$*" >&2; }

engine_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

install_packages() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "missing: ${missing[*]}; install them as root (apt-get install ${missing[*]})"
    exit 1
  fi
  log "installing ${missing[*]}"
  local out; out=$(mktemp)
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
         "${missing[@]}"; } >"$out" 2>&1; then
    cat "$out" >&2; rm -f "$out"; log "apt-get failed"; exit 1
  fi
  rm -f "$out"
}

start_engine() {
  engine_answers && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "no Docker engine answers and starting one needs root"; exit 1
  fi
  log "starting dockerd (no bridge, no iptables)"
  mkdir -p /var/log
  # setsid: the engine outlives this script (and the shell that ran it).
  setsid dockerd --bridge=none --iptables=false --ip-masq=false \
    >/var/log/kiln-dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 1 60); do
    engine_answers && return 0
    sleep 1
  done
  tail -20 /var/log/kiln-dockerd.log >&2 || true
  log "dockerd did not answer within 60 s (log: /var/log/kiln-dockerd.log)"
  exit 1
}

make_base_image() {
  if docker image inspect "$base_image" >/dev/null 2>&1; then return 0; fi
  log "making $base_image with debootstrap from $mirror (a few minutes)"
  local rootfs; rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' RETURN
  local out; out=$(mktemp)
  if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$out" 2>&1; then
    tail -30 "$out" >&2; rm -f "$out"; log "debootstrap failed"; exit 1
  fi
  rm -f "$out"
  # Leave apt able to install packages in image builds, and nothing else.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' - "$base_image" >/dev/null
}

install_packages
start_engine
make_base_image
echo "$base_image"
