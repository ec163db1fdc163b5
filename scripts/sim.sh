#!/usr/bin/env bash
# Builds the whole-cluster simulation runner for madsim (release, in target/madsim, apart
# from the normal build) and runs it with the given arguments, e.g.
#   scripts/sim.sh --seeds 100 --jobs 2 --determinism 3
#   scripts/sim.sh --seed 42 --servers 3 --clients 20 --duration 10m
# The last line of its output is one JSON object; it exits 1 when a seed fails a check.
# See docs/simulation.md.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_TARGET_DIR=target/madsim RUSTFLAGS="--cfg madsim" cargo build --release -q -p stead-sim --bin stead-sim
exec target/madsim/release/stead-sim "$@"
