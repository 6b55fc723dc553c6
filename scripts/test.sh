#!/usr/bin/env bash
# Builds and runs smartasync's tests in every configuration of CMakePresets.json:
# gcc and clang with -Werror, ASan+UBSan (gcc), TSan (clang); the examples' tests in all but
# the plain clang one (TSan builds them with clang).
# Then the matrix (the README's table): the library's own tests and the package consumers against
# the standalone Asio, Boost.Asio and fmt releases of Debian's other suites (headers unpacked by
# scripts/fetch-deps-matrix.sh into a cache folder, nothing installed system-wide), no examples.
# Usage: scripts/test.sh [all|quick|matrix|row "PARTS"...|PRESET...]
#   quick: the gcc preset only; matrix: only the matrix rows; row: the rows given, e.g.
#   scripts/test.sh row "boost-1.81 clang"
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

# The matrix rows: each is a set of dependencies from other Debian releases (unpacked by
# scripts/fetch-deps-matrix.sh) plus, optionally, the compiler. Bookworm's own Asio 1.22, fmt 9,
# Catch2 2, gcc 12 and clang 14 are the presets above.
matrix_rows=(
  "asio-1.30 fmt-10"    # trixie's standalone Asio and fmt, gcc 12
  "asio-1.36 fmt-11"    # sid's standalone Asio and fmt, gcc 12
  "boost-1.81 clang"    # bookworm's Boost.Asio, clang 14
  "boost-1.83"          # trixie's Boost.Asio, gcc 12
  "boost-1.90"          # sid's Boost.Asio (= Asio 1.38), gcc 12
)
# What each dependency must say at configure time, so a row cannot silently build against
# bookworm's own copy.
declare -A expect=(
  [asio-1.30]="standalone Asio 103002 from" [asio-1.36]="standalone Asio 103600 from"
  [boost-1.81]="Boost 1.81.0 (Boost.Asio 102600)" [boost-1.83]="Boost 1.83.0 (Boost.Asio 102802)"
  [boost-1.90]="Boost 1.90.0 (Boost.Asio 103800)"
  [fmt-10]="fmt 10.1" [fmt-11]="fmt 11.1"
)
case "${1:-all}" in
  all) presets=(gcc clang asan tsan); rows=("${matrix_rows[@]}") ;;
  quick) presets=(gcc); rows=() ;;
  matrix) presets=(); rows=("${matrix_rows[@]}") ;;
  row) shift; presets=(); rows=("$@") ;;
  *) presets=("$@"); rows=() ;;
esac
# One compiler cache per machine, shared by every checkout and CI run (content-addressed: safe);
# paths relative to the checkout, so that a fresh clone elsewhere still hits.
export CCACHE_DIR=${CCACHE_DIR:-${HOME:-/var/cache}/.cache/smartasync-ccache}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
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
  read -r -a deps <<<"$(printf '%s\n' "${rows[@]}" | tr ' ' '\n' | grep -E '^(asio|boost|fmt)-' | sort -u | tr '\n' ' ')"
  scripts/fetch-deps-matrix.sh "${deps[@]}"
  cache=$SMARTASYNC_DEPS_CACHE
  for row in "${rows[@]}"; do
    read -r -a parts <<<"$row"
    build=build/test-${row// /-}
    compiler=g++
    args=(-DSMARTASYNC_TEST_FLAVOUR=standalone)
    for part in "${parts[@]}"; do
      case $part in
        clang) compiler=clang++ ;;
        asio-*) args+=(-DSMARTASYNC_ASIO_INCLUDE_DIR="$cache/$part/usr/include") ;;
        boost-*) args+=(-DSMARTASYNC_TEST_FLAVOUR=boost
                        -DBoost_DIR="$(echo "$cache/$part"/usr/lib/*/cmake/Boost-*)") ;;
        fmt-*) args+=(-Dfmt_DIR="$(echo "$cache/$part"/usr/lib/*/cmake/fmt)" -DSMARTASYNC_FMT_HEADER_ONLY=ON) ;;
        *) echo "test.sh: unknown matrix part '$part'" >&2; exit 2 ;;
      esac
    done
    echo "=== $row ($((SECONDS - start)) s)"
    # No build type: -O1 without -g, which compiles and links the rows markedly faster; asserts
    # stay on.
    log=$(cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE= -DCMAKE_CXX_COMPILER=$compiler \
      -DCMAKE_CXX_FLAGS=-O1 -DCMAKE_CXX_COMPILER_LAUNCHER=ccache "${args[@]}" \
      -DSMARTASYNC_BUILD_TESTS=ON -DSMARTASYNC_BUILD_EXAMPLES=OFF -DSMARTASYNC_BUILD_BENCHMARKS=OFF \
      -DSMARTASYNC_TEST_DOC_SNIPPETS=OFF)
    # The row must really build against its dependencies, not fall back to the system's.
    for part in "${parts[@]}"; do
      [[ -n ${expect[$part]:-} ]] || continue
      grep -qF "${expect[$part]}" <<<"$log" && grep -F "${expect[$part]}" <<<"$log" | grep -qF "$cache/$part/" ||
        { echo "$row: configured against the wrong $part:"; grep "smartasync:" <<<"$log"; exit 1; }
    done
    cmake --build "$build" -j "$jobs"
    SMARTASYNC_STRESS_OPS=20000 ctest --test-dir "$build" -j "$jobs" --output-on-failure --timeout 300
  done
fi
echo "=== test configurations passed: ${presets[*]}${rows[*]:+; matrix: }$(printf '[%s] ' "${rows[@]}") ($((SECONDS - start)) s)"
