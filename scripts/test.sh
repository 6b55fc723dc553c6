#!/usr/bin/env bash
# Builds and runs smartasync's tests in the configurations of CMakePresets.json: gcc with
# -Werror, ASan+UBSan (gcc), TSan (clang 14); the examples' tests under both sanitizers. (The
# full run leaves out what another configuration already covers, to stay well inside CI's time:
# the plain clang 14 preset, whose compiler the TSan preset and the "boost-1.81 clang" row
# build with -Werror, and the examples in the plain gcc build, which the ASan build compiles
# with the same gcc and warnings, except the PostgreSQL example's tests, which run only without
# a sanitizer and so run in the gcc build. `scripts/test.sh gcc` or `clang` runs those presets
# whole.)
# Then the matrix (the README's table): the library's own tests and the package consumers, no
# examples,
#  * against the standalone Asio, Boost.Asio and fmt releases of Debian's other suites (headers
#    unpacked by scripts/fetch-deps-matrix.sh into a cache folder, nothing installed
#    system-wide), with bookworm's gcc 12 or clang 14;
#  * with the newest compilers and standard libraries in Debian, inside a Debian sid root
#    (scripts/make-root.sh, cached between runs; run by scripts/in-root.sh): g++-16 with
#    libstdc++, Catch2 v3, Asio 1.36, fmt 11; clang-21 with libc++ 21 and Boost 1.90 (the Boost
#    flavour), Catch2 v2 (one header, from bookworm: sid's libCatch2.a is built for libstdc++),
#    fmt 11 header-only.
# The presets and rows keep line tables only (-g1, or no -g in the rows): sanitizer reports and
# backtraces still name file:line, and full -g made every compile 1.6x (gcc) to 1.9x (clang)
# slower. The documentation's code blocks compile in the gcc preset only.
# Usage: scripts/test.sh [all|quick|matrix|roots|row "PARTS"...|PRESET...]
#   quick: the gcc preset only; matrix: every matrix row; roots: only the rows in a root;
#   row: the host rows given, e.g. scripts/test.sh row "boost-1.81 clang"
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

# The host rows: each is a set of dependencies from other Debian releases (unpacked by
# scripts/fetch-deps-matrix.sh) plus, optionally, the compiler. Bookworm's own Asio 1.22, fmt 9,
# Catch2 2, gcc 12 and clang 14 are the presets above; Asio 1.36 with fmt 11 and Boost 1.90 run in
# the sid root rows.
matrix_rows=(
  "asio-1.30 fmt-10"    # trixie's standalone Asio and fmt, gcc 12
  "boost-1.81 clang"    # bookworm's Boost.Asio, clang 14
  "boost-1.83"          # trixie's Boost.Asio, gcc 12
)
root_rows=(sid-gcc sid-clang-libcxx)
# What each dependency must say at configure time, so a row cannot silently build against
# bookworm's own copy.
declare -A expect=(
  [asio-1.30]="standalone Asio 103002 from" [asio-1.36]="standalone Asio 103600 from"
  [boost-1.81]="Boost 1.81.0 (Boost.Asio 102600)" [boost-1.83]="Boost 1.83.0 (Boost.Asio 102802)"
  [boost-1.90]="Boost 1.90.0 (Boost.Asio 103800)"
  [fmt-10]="fmt 10.1" [fmt-11]="fmt 11.1"
)
# Extra configure arguments of a preset in this run (see above).
declare -A preset_args=([gcc]=-DSMARTASYNC_BUILD_EXAMPLES=ON)
case "${1:-all}" in
  all) presets=(gcc asan tsan); rows=("${matrix_rows[@]}"); roots=("${root_rows[@]}")
       preset_args[gcc]=-DSMARTASYNC_BUILD_EXAMPLES=OFF ;;
  quick) presets=(gcc); rows=(); roots=() ;;
  matrix) presets=(); rows=("${matrix_rows[@]}"); roots=("${root_rows[@]}") ;;
  roots) presets=(); rows=(); roots=("${root_rows[@]}") ;;
  row) shift; presets=(); rows=("$@"); roots=() ;;
  *) presets=("$@"); rows=(); roots=() ;;
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
  cmake --preset "$preset" ${preset_args[$preset]:-} >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  ctest --preset "$preset" -j "$jobs"
  # The PostgreSQL example's tests run only without a sanitizer (libpq and the server are not
  # instrumented): when this run builds the examples only under the sanitizers, they run here.
  if [[ $preset == gcc && ${preset_args[gcc]:-} == -DSMARTASYNC_BUILD_EXAMPLES=OFF ]]; then
    cmake --preset gcc -DSMARTASYNC_BUILD_EXAMPLES=ON >/dev/null
    cmake --build --preset gcc -j "$jobs" --target pg_search_tests
    ctest --preset gcc -j "$jobs" -R '^pg_search:'
  fi
done

# The fuzzers' short run (a minute per target, then the state machine's corpus under TSan).
if [[ ${1:-all} == all ]]; then
  echo "=== fuzz ($((SECONDS - start)) s)"
  scripts/fuzz.sh 60
fi

if ((${#rows[@]})); then
  read -r -a deps <<<"$(printf '%s\n' "${rows[@]}" | tr ' ' '\n' | grep -E '^(asio|boost|fmt)-' | sort -u | tr '\n' ' ')"
  scripts/fetch-deps-matrix.sh "${deps[@]}"
  cache=$SMARTASYNC_DEPS_CACHE
  for row in "${rows[@]}"; do
    read -r -a parts <<<"$row"
    build=build/test-${row// /-}
    compiler=g++
    # The compile-fail tests check the compiler's words, which the gcc preset already does for
    # gcc 12; a clang 14 row checks clang's.
    args=(-DSMARTASYNC_TEST_FLAVOUR=standalone -DSMARTASYNC_TEST_COMPILE_FAIL=OFF)
    for part in "${parts[@]}"; do
      case $part in
        clang) compiler=clang++ args+=(-DSMARTASYNC_TEST_COMPILE_FAIL=ON) ;;
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
# A row in a root: NAME -> configure, build and test inside scripts/make-root.sh's root of its
# suite, the source tree bind-mounted at its own path, ccache kept next to the roots.
run_root_row() {
  local name=$1 suite=${1%%-*} cxx flags extra=() expect=() root log build=build/test-$1
  local roots=${SMARTASYNC_ROOTS:-/var/cache/smartasync-roots}
  local ccache_dir=$roots/ccache-$suite deps=$SMARTASYNC_DEPS_CACHE catch2_v2=$SMARTASYNC_DEPS_CACHE/catch2-2
  case $name in
    sid-gcc)
      cxx=g++-16 flags=-O1
      expect=("tests with GNU 16\\.[0-9.]+, Catch2 3\\.") ;;
    sid-clang-libcxx)
      cxx=clang++-21 flags="-O1 -stdlib=libc++"
      # libfmt.so and libCatch2.a in the root are built for libstdc++: fmt header-only, and
      # Catch2 v2's single header (bookworm's, unpacked by fetch-deps-matrix.sh). The Boost
      # flavour, on sid's Boost 1.90 (unpacked likewise; the deps cache is mounted in the root).
      scripts/fetch-deps-matrix.sh catch2-2 boost-1.90 >/dev/null
      extra=(-DSMARTASYNC_FMT_HEADER_ONLY=ON "-DCatch2_DIR=$catch2_v2/usr/lib/cmake/Catch2"
             -DSMARTASYNC_TEST_FLAVOUR=boost "-DBoost_DIR=$(echo "$deps"/boost-1.90/usr/lib/*/cmake/Boost-*)")
      expect=("tests with Clang 21\\.[0-9.]+, Catch2 2\\.13\\.[0-9]+ from $catch2_v2/"
              "Boost 1\\.90\\.0 \\(Boost\\.Asio 103800\\) from $deps/boost-1.90/") ;;
    *) echo "unknown root row $name" >&2; return 1 ;;
  esac
  expect+=("standalone Asio 103600 from /usr/include" "fmt 11\\.1")
  root=$(scripts/make-root.sh "$suite")
  mkdir -p "$ccache_dir" "$deps"
  in_root() { scripts/in-root.sh "$root" "$PWD" "$ccache_dir" "$deps" -- CCACHE_DIR="$ccache_dir" "$@"; }
  log=$(in_root cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE= -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_CXX_COMPILER_LAUNCHER=ccache "${extra[@]}" \
    -DSMARTASYNC_BUILD_TESTS=ON -DSMARTASYNC_BUILD_EXAMPLES=OFF -DSMARTASYNC_BUILD_BENCHMARKS=OFF \
    -DSMARTASYNC_TEST_DOC_SNIPPETS=OFF) ||
    { echo "$log"; return 1; }
  # The row must really get its compiler, Asio and Catch2, not whatever else the root has.
  for e in "${expect[@]}"; do
    grep -Eq "$e" <<<"$log" ||
      { echo "$name: configured without /$e/:"; grep "smartasync:" <<<"$log"; return 1; }
  done
  in_root cmake --build "$build" -j "$jobs"
  in_root SMARTASYNC_STRESS_OPS=20000 ctest --test-dir "$build" -j "$jobs" --output-on-failure \
    --timeout 300
}

for row in "${roots[@]}"; do
  echo "=== $row ($((SECONDS - start)) s)"
  row_start=$SECONDS
  run_root_row "$row"
  echo "=== $row passed in $((SECONDS - row_start)) s"
done
matrix_list=""
((${#rows[@]})) && matrix_list="; matrix: $(printf '[%s] ' "${rows[@]}")"
echo "=== test configurations passed: ${presets[*]}${matrix_list}${roots[*]:+; roots: ${roots[*]}} ($((SECONDS - start)) s)"
