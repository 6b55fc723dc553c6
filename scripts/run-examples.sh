#!/usr/bin/env bash
# Builds smartasync's examples (Release) and runs each end to end on embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# One compiler cache per machine, shared by every checkout and CI run (content-addressed: safe);
# paths relative to the checkout, so that a fresh clone elsewhere still hits.
export CCACHE_DIR=${CCACHE_DIR:-${HOME:-/var/cache}/.cache/smartasync-ccache}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
build=build/examples-release
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
  -DSMARTASYNC_BUILD_TESTS=OFF -DSMARTASYNC_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)"

echo; echo "=== 01_keep_loop_free"
"$build/examples/01_keep_loop_free/smartasync.examples.keep_loop_free"
for demo in examples/*/run_demo.sh; do
  [[ -x $demo ]] || continue
  echo; echo "=== $(basename "$(dirname "$demo")")"
  "$demo" "$PWD/$build"
done
echo; echo "=== all examples ran"
