#!/usr/bin/env bash
# Builds and runs smartasync's tests in every configuration of CMakePresets.json:
# gcc and clang with -Werror, ASan+UBSan (gcc), TSan (clang). Examples' tests included.
# Usage: scripts/test.sh [all|quick|PRESET...]   (quick: the gcc preset only)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

case "${1:-all}" in
  all) presets=(gcc clang asan tsan) ;;
  quick) presets=(gcc) ;;
  *) presets=("$@") ;;
esac
export CCACHE_DIR=${CCACHE_DIR:-$PWD/.ccache}
jobs=$(nproc)

for preset in "${presets[@]}"; do
  echo "=== $preset"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  ctest --preset "$preset" -j "$jobs"
done
echo "=== test configurations passed: ${presets[*]}"
