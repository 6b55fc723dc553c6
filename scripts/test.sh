#!/usr/bin/env bash
# Builds and runs smartasync's tests in every configuration of CMakePresets.json:
# gcc and clang with -Werror, ASan+UBSan (gcc), TSan (clang); examples' tests included.
# Then the Asio matrix: the library's own tests and the package consumers against the other
# standalone Asio releases Debian ships (headers unpacked by scripts/fetch-deps-matrix.sh into a
# cache folder, nothing installed system-wide), gcc, no examples.
# Usage: scripts/test.sh [all|quick|matrix|PRESET...]
#   quick: the gcc preset only; matrix: only the Asio matrix rows.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

matrix_rows=(asio-1.30:103002 asio-1.36:103600)
case "${1:-all}" in
  all) presets=(gcc clang asan tsan); rows=("${matrix_rows[@]}") ;;
  quick) presets=(gcc); rows=() ;;
  matrix) presets=(); rows=("${matrix_rows[@]}") ;;
  *) presets=("$@"); rows=() ;;
esac
export CCACHE_DIR=${CCACHE_DIR:-$PWD/.ccache}
# Shared with fetch-deps-matrix.sh; set here so that an environment without HOME still works.
export SMARTASYNC_DEPS_CACHE=${SMARTASYNC_DEPS_CACHE:-${HOME:-/var/cache}/.cache/smartasync-deps}
jobs=$(nproc)
start=$SECONDS

for preset in "${presets[@]}"; do
  echo "=== $preset ($((SECONDS - start)) s)"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  ctest --preset "$preset" -j "$jobs"
done

if ((${#rows[@]})); then
  names=("${rows[@]%%:*}")
  scripts/fetch-deps-matrix.sh "${names[@]}"
  cache=$SMARTASYNC_DEPS_CACHE
  for row in "${rows[@]}"; do
    name=${row%%:*} expected=${row##*:}
    build=build/test-$name
    echo "=== $name ($((SECONDS - start)) s)"
    log=$(cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=g++ \
      -DCMAKE_CXX_FLAGS=-O1 -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
      -DSMARTASYNC_ASIO_INCLUDE_DIR="$cache/$name/usr/include" \
      -DSMARTASYNC_BUILD_TESTS=ON -DSMARTASYNC_BUILD_EXAMPLES=OFF -DSMARTASYNC_BUILD_BENCHMARKS=OFF)
    # The row must really build against its Asio, not fall back to the system's.
    grep -q "standalone Asio $expected from $cache/$name/" <<<"$log" ||
      { echo "$name: configured against the wrong Asio:"; grep "smartasync:" <<<"$log"; exit 1; }
    cmake --build "$build" -j "$jobs"
    SMARTASYNC_STRESS_OPS=20000 ctest --test-dir "$build" -j "$jobs" --output-on-failure --timeout 300
  done
fi
echo "=== test configurations passed: ${presets[*]} ${rows[*]%%:*} ($((SECONDS - start)) s)"
