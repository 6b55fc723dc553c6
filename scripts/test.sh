#!/usr/bin/env bash
# Builds and runs smartasync's tests in the configurations of CMakePresets.json: gcc with
# -Werror, ASan (gcc), TSan+UBSan (clang 14); the examples' tests under both sanitizers. (The
# full run leaves out what another configuration already covers, to stay well inside CI's time:
# the plain clang 14 preset, whose compiler the TSan preset and the "boost-1.81 clang" row
# build with -Werror, and the examples in the plain gcc build, which the ASan build compiles
# with the same gcc and warnings. `scripts/test.sh gcc` or `clang` runs those presets whole.)
# UBSan rides with TSan, not ASan: gcc 12's UBSan instrumentation nearly doubled the ASan
# build (a large test file: 50 s with it, 28 s without), clang's adds a third to TSan's. Two
# checks stay off there (clang 14): -fsanitize=function fails to assemble on coroutines ("Cannot
# represent a difference across sections"), and vptr's probe of an object's memory (a pipe()
# inside the runtime) is reported by TSan as a race with itself. The fuzz targets (clang, ASan
# and UBSan) keep vptr.
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
# slower. The sanitizer presets and the clang rows compile at -O0: the largest test file took
# 223 s at -O1 and 103 s at -O0 under ASan+UBSan (gcc 12), 114 s and 43 s under TSan (clang 14),
# 97 s and 29 s in a clang row, and the sanitizers check no less without optimisation. gcc's
# builds without a sanitizer stay at -O1, where gcc's flow warnings (which -Werror turns into
# failures users would see in their Release builds) are computed. The documentation's code blocks compile in the gcc preset, each alone, and in the
# root rows (the newest Asio and Boost), as one unit.
# Every run ends with a table of its phases and the wall time of each (also when one fails).
# Usage: scripts/test.sh [all|gate|matrix|roots|package|row "PARTS"...|PRESET...]
#   all (the default, what CI runs): the presets gcc, asan and tsan, then the matrix.
#   gate (or quick): the pre-commit check, a few minutes on a warm tree: the gcc preset with the
#     examples, every test of it except the package consumers (install, find_package,
#     add_subdirectory, the strict consumer: they change only with the CMake files, and the full
#     run builds them in the gcc and tsan presets and in every matrix row);
#   matrix: every matrix row; roots: only the rows in a root; package: the packaging phase
#     (API reference, Debian package, installed into a clean bookworm root);
#   row: the host rows given, e.g. scripts/test.sh row "boost-1.81 clang"
# CCACHE_RECACHE=1 scripts/test.sh measures a cold run: every compile runs (and its result
# replaces the cached one, so the next run is warm).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

# ---- Packaging phase: `scripts/test.sh package`, and the last phase of the full run. ----
# The API reference (doxygen, every public name documented, warnings fail) and the Debian
# package (built, lintian, installed into a cached clean bookworm root and consumed there).
run_package_phase() {
  echo "=== package: API reference, Debian package ($((SECONDS - start)) s)"
  scripts/docs.sh build/docs
  scripts/package.sh
}
if [[ ${1:-} == package ]]; then start=$SECONDS; run_package_phase; exit 0; fi
# A cold bookworm root takes 7 to 10 minutes, mostly downloading: the full run builds it in the
# background meanwhile (scripts/package.sh then waits on make-root.sh's lock, or finds it ready).
[[ ${1:-all} == all ]] && { scripts/make-root.sh bookworm >/dev/null 2>&1 & }
# ---- end of the packaging phase (its call in the full run is at the end) ----

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
# Extra ctest arguments of a preset in this run.
declare -A preset_ctest_args=()
case "${1:-all}" in
  all) presets=(gcc asan tsan); rows=("${matrix_rows[@]}"); roots=("${root_rows[@]}")
       preset_args[gcc]=-DSMARTASYNC_BUILD_EXAMPLES=OFF ;;
  gate|quick) presets=(gcc); rows=(); roots=(); preset_ctest_args[gcc]="-E ^package:" ;;
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

# The phases: `phase NAME` closes the running one and opens NAME; the table at exit lists each
# with its wall time, the one that failed marked so.
phase_names=() phase_seconds=() phase_name='' phase_start=0
phase_close() {
  [[ -n $phase_name ]] || return 0
  phase_names+=("$phase_name$1") phase_seconds+=($((SECONDS - phase_start))) phase_name=
}
phase() {
  phase_close ""
  phase_name=$1 phase_start=$SECONDS
  echo "=== $1 ($((SECONDS - start)) s)"
}
phase_table() {
  local status=$? i
  phase_close " (FAILED)"
  ((${#phase_names[@]})) || return "$status"
  echo
  echo "=== phases (wall time, $jobs jobs)"
  for i in "${!phase_names[@]}"; do
    printf '  %-48s %5d s  %3d:%02d\n' "${phase_names[$i]}" "${phase_seconds[$i]}" \
      $((phase_seconds[i] / 60)) $((phase_seconds[i] % 60))
  done
  local total=$((SECONDS - start))
  printf '  %-48s %5d s  %3d:%02d\n' "total" "$total" $((total / 60)) $((total % 60))
  return "$status"
}
trap phase_table EXIT

for preset in "${presets[@]}"; do
  phase "$preset: configure and build"
  cmake --preset "$preset" ${preset_args[$preset]:-} >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  phase "$preset: tests"
  # Under the sanitizers every example with tests runs them: none drops out unnoticed.
  if [[ $preset == asan || $preset == tsan ]]; then
    for dir in examples/*/tests; do
      name=$(basename "$(dirname "$dir")")
      ctest --preset "$preset" -N -R "^$name:" | grep -q "Total Tests: [1-9]" ||
        { echo "$preset: no test of the $name example is registered"; exit 1; }
    done
  fi
  # shellcheck disable=SC2086 # the arguments are words
  ctest --preset "$preset" -j "$jobs" ${preset_ctest_args[$preset]:-}
done

# The fuzzers' short run: a minute per target, from its seed corpus (one target per core),
# then the state machine's corpus replayed under TSan.
if [[ ${1:-all} == all ]]; then
  phase "fuzz: a minute per target, TSan replay"
  scripts/fuzz.sh 60
  phase_close ""
fi

if ((${#rows[@]})); then
  read -r -a deps <<<"$(printf '%s\n' "${rows[@]}" | tr ' ' '\n' | grep -E '^(asio|boost|fmt)-' | sort -u | tr '\n' ' ')"
  phase "matrix: unpack the rows' dependencies"
  scripts/fetch-deps-matrix.sh "${deps[@]}"
  cache=$SMARTASYNC_DEPS_CACHE
  for row in "${rows[@]}"; do
    read -r -a parts <<<"$row"
    build=build/test-${row// /-}
    compiler=g++ opt=-O1
    # The compile-fail tests check the compiler's words, which the gcc preset already does for
    # gcc 12; a clang 14 row checks clang's.
    args=(-DSMARTASYNC_TEST_FLAVOUR=standalone -DSMARTASYNC_TEST_COMPILE_FAIL=OFF)
    for part in "${parts[@]}"; do
      case $part in
        clang) compiler=clang++ opt=-O0 args+=(-DSMARTASYNC_TEST_COMPILE_FAIL=ON) ;;
        asio-*) args+=(-DSMARTASYNC_ASIO_INCLUDE_DIR="$cache/$part/usr/include") ;;
        boost-*) args+=(-DSMARTASYNC_TEST_FLAVOUR=boost
                        -DBoost_DIR="$(echo "$cache/$part"/usr/lib/*/cmake/Boost-*)") ;;
        fmt-*) args+=(-Dfmt_DIR="$(echo "$cache/$part"/usr/lib/*/cmake/fmt)" -DSMARTASYNC_FMT_HEADER_ONLY=ON) ;;
        *) echo "test.sh: unknown matrix part '$part'" >&2; exit 2 ;;
      esac
    done
    phase "row $row"
    # No build type: no -g, which compiles and links the rows markedly faster; asserts stay on.
    # gcc at -O1 (its flow warnings), clang at -O0 (its warnings do not depend on it).
    log=$(cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE= -DCMAKE_CXX_COMPILER=$compiler \
      -DCMAKE_CXX_FLAGS=$opt -DCMAKE_CXX_COMPILER_LAUNCHER=ccache "${args[@]}" \
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
      cxx=clang++-21 flags="-O0 -stdlib=libc++"
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
  # The root's environment is clean: the cache settings go in by name (paths relative to the
  # checkout, so a clone elsewhere hits too).
  in_root() {
    scripts/in-root.sh "$root" "$PWD" "$ccache_dir" "$deps" -- CCACHE_DIR="$ccache_dir" \
      CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1 ${CCACHE_RECACHE:+CCACHE_RECACHE=1} "$@"
  }
  # The documentation's code blocks compile on the newest Asio and Boost too, as one unit (cheap:
  # the headers are parsed once). The root has no Python: the blocks are extracted here.
  python3 tests/docs/extract_snippets.py "$build/doc_snippets" "$PWD"
  log=$(in_root cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE= -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_CXX_COMPILER_LAUNCHER=ccache "${extra[@]}" \
    -DSMARTASYNC_BUILD_TESTS=ON -DSMARTASYNC_BUILD_EXAMPLES=OFF -DSMARTASYNC_BUILD_BENCHMARKS=OFF \
    -DSMARTASYNC_TEST_DOC_SNIPPETS=ON -DSMARTASYNC_TEST_DOC_SNIPPETS_UNITY=ON \
    "-DSMARTASYNC_DOC_SNIPPETS_EXTRACTED=$PWD/$build/doc_snippets") ||
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
  phase "root row $row"
  run_root_row "$row"
done
phase_close ""
if [[ ${1:-all} == all ]]; then
  phase "packaging"
  run_package_phase # the packaging phase (see above)
  phase_close ""
fi
matrix_list=""
((${#rows[@]})) && matrix_list="; matrix: $(printf '[%s] ' "${rows[@]}")"
echo "=== test configurations passed: ${presets[*]}${matrix_list}${roots[*]:+; roots: ${roots[*]}} ($((SECONDS - start)) s)"
