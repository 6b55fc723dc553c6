#!/usr/bin/env bash
# Builds the given benchmark targets in build/bench, the benchmarks' Release tree (what
# scripts/bench.sh and scripts/bench-peers.sh run), through ccache when it is there.
# Usage: scripts/build-bench.sh TARGET...     (e.g. smartasync.bench.offload)
set -euo pipefail
cd "$(dirname "$0")/.."

(($#)) || { echo "usage: $0 TARGET..." >&2; exit 2; }
build=build/bench
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_DIR=${CCACHE_DIR:-${HOME:-/var/cache}/.cache/smartasync-ccache}
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSMARTASYNC_BUILD_BENCHMARKS=ON \
  -DSMARTASYNC_BUILD_TESTS=OFF -DSMARTASYNC_BUILD_EXAMPLES=OFF "${launcher[@]}" >/dev/null
cmake --build "$build" -j "$(nproc)" --target "$@"
