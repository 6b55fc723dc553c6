#!/usr/bin/env bash
# Builds and runs smartasync's tests: gcc and clang with -Werror, then ASan+UBSan (gcc) and TSan
# (clang). Usage: scripts/test.sh [all|quick]   (quick: the gcc build only)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

mode=${1:-all}
jobs=$(nproc)
export CCACHE_DIR=${CCACHE_DIR:-$PWD/.ccache}
# Sanitizer runs use a smaller stress count; the full one is in docs/reliability.md.
export SMARTASYNC_STRESS_OPS=${SMARTASYNC_STRESS_OPS:-100000}

run() { # name compiler extra-cmake-args...
  local name=$1 cxx=$2
  shift 2
  echo "=== $name"
  cmake -S . -B "build/test-$name" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DSMARTASYNC_BUILD_TESTS=ON "$@" >/dev/null
  cmake --build "build/test-$name" -j "$jobs"
  ctest --test-dir "build/test-$name" -j "$jobs" --output-on-failure
}

run gcc g++ -DCMAKE_CXX_FLAGS="-O1"
if [[ $mode == all ]]; then
  run clang clang++ -DCMAKE_CXX_FLAGS="-O1"
  SMARTASYNC_STRESS_OPS=20000 \
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run asan g++ -DSMARTASYNC_BUILD_BENCHMARKS=OFF \
    -DCMAKE_CXX_FLAGS="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
  SMARTASYNC_STRESS_OPS=20000 TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    run tsan clang++ -DSMARTASYNC_BUILD_BENCHMARKS=OFF -DCMAKE_CXX_FLAGS="-O1 -fsanitize=thread"
fi
echo "=== all test configurations passed ($mode)"
