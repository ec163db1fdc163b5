#!/usr/bin/env bash
# Runs every test layer of stead: the workspace tests (unit, property, conformance, crash
# recovery, end to end), the same tests built for the madsim simulator, the whole-cluster
# simulation's seeds, and a compile check of the FoundationDB engine. Installs what is
# missing first (Debian packages; needs root).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

# --- prerequisites ---------------------------------------------------------------------
missing=()
dpkg -s libclang-dev >/dev/null 2>&1 || missing+=(libclang-dev)          # bindgen, for the fdb engine check
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)        # prost-build (gRPC definitions)
command -v python3 >/dev/null 2>&1 || missing+=(python3)                 # python-nomad end-to-end test
python3 -c "import venv, ensurepip" >/dev/null 2>&1 || missing+=(python3-venv)
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)              # the docker driver's tests
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)     # the test image (imported, never pulled)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

# A Docker daemon for the docker driver's tests: started here when none answers. The
# tests import their image from busybox-static; nothing is pulled from a registry.
docker_up() { docker info >/dev/null 2>&1; }
if ! docker_up; then
  # A daemon still starting (or stopping) is waited for; without one, a pid file left by
  # a daemon that did not stop cleanly would make the new one refuse to start.
  if ! grep -qx dockerd /proc/[0-9]*/comm 2>/dev/null; then
    rm -f /var/run/docker.pid
    log "starting dockerd"
    nohup dockerd >/tmp/stead-dockerd.log 2>&1 &
  fi
  for _ in $(seq 120); do docker_up && break; sleep 0.5; done
  docker_up || { cat /tmp/stead-dockerd.log; echo "dockerd did not start" >&2; exit 1; }
fi

# CI runs with CI=true: show the whole output of failing tests, never retry silently.
# This script provides Docker and root, so tests that need them must not skip here:
# under CI=true they fail instead.
export CI="${CI:-true}"
export CARGO_TERM_COLOR=never

# --- 0. formatting (rustfmt.toml) ---------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all --check

# --- 1. workspace tests (normal build) ---------------------------------------------------
log "workspace tests"
cargo nextest run --workspace --no-fail-fast

# --- 2. the same tests built for madsim (own target dir: flags differ) ---------------------
log "workspace tests under madsim (--cfg madsim)"
CARGO_TARGET_DIR=target/madsim RUSTFLAGS="--cfg madsim" cargo nextest run --workspace --no-fail-fast

# --- 3. the whole-cluster simulation: 100 seeds of 3 servers x 20 clients x 10 simulated
# minutes, each in its own process, and 3 of them again to check that a seed replays
# (docs/simulation.md). A failing seed prints the command that reproduces it.
log "whole-cluster simulation (scripts/sim.sh)"
bash scripts/sim.sh --seeds 100 --servers 3 --clients 20 --duration 10m --jobs 2 --determinism 3

# --- 4. the FoundationDB engine compiles (no libfdb_c needed for check), and the agent ------
# that opens it (`store { fdb { ... } }`)
log "cargo check -p stead-agent --features fdb"
cargo check -p stead-agent --features fdb

log "all test layers passed"
