#!/usr/bin/env bash
# Builds smartasync's examples (Release) and runs each end to end on embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export CCACHE_DIR=${CCACHE_DIR:-$PWD/.ccache}
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
