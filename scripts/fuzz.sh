#!/usr/bin/env bash
# Builds smartasync's fuzz targets (fuzz/, clang 14's libFuzzer with ASan+UBSan) and runs each
# for a while, starting from its seed corpus in fuzz/corpus/<target>; then checks the state
# machine's judgement of threads left over after an input, on planted ones, and replays its
# corpus under ThreadSanitizer (a second build, without libFuzzer's engine).
# Usage: scripts/fuzz.sh [seconds-per-target] [target...]
#   targets: state_machine http_request snippet_json catalog_page http_headers sse_json
#   (default: all)
#   FUZZ_STATE_MACHINE=replay runs the state machine once over its seed corpus instead of
#   fuzzing it (a quick check that every input that once failed still passes).
#   FUZZ_JOBS=N fuzzes N targets at once (default: one per core).
# A finding fails the script, with the failing input in build/fuzz/artifacts/; read it with
# `build/fuzz/fuzz_<target> FILE` (FUZZ_TRACE=1 prints the state machine's steps). New inputs
# found along the way stay in build/fuzz/corpus/<target>, not in the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(state_machine http_request snippet_json catalog_page http_headers sse_json)

export CCACHE_DIR=${CCACHE_DIR:-${HOME:-/var/cache}/.cache/smartasync-ccache}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
compiler=${SMARTASYNC_FUZZ_CXX:-clang++-14}
configure() { # build-dir sanitizers
  cmake -S fuzz -B "$1" -G Ninja -DCMAKE_CXX_COMPILER="$compiler" -DCMAKE_BUILD_TYPE= \
    -DCMAKE_CXX_FLAGS="-O1 -g1" -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
    -DSMARTASYNC_FUZZ_SANITIZERS="$2" >/dev/null
}
configure build/fuzz address
cmake --build build/fuzz -j "$(nproc)" --target "${targets[@]/#/fuzz_}"

mkdir -p build/fuzz/artifacts
# One target: its log in build/fuzz/<target>.log; fails with the log's end printed.
run_target() {
  local t=$1 corpus=build/fuzz/corpus/$1 log=build/fuzz/$1.log asan=detect_leaks=1
  mkdir -p "$corpus"
  cp -n fuzz/corpus/"$t"/* "$corpus"/
  local args=(-max_total_time="$seconds" -timeout=70 -print_final_stats=1
              -artifact_prefix=build/fuzz/artifacts/"$t"- "$corpus")
  # The state machine's threads make LeakSanitizer's end-of-input scan see objects still in
  # flight between threads; its own checks (every call completed, pools destroyed, threads
  # and descriptors back to their count) cover what a leak check would.
  [[ $t == state_machine ]] && args=(-max_len=256 -detect_leaks=0 "${args[@]}") asan=detect_leaks=0
  if [[ $t == state_machine && ${FUZZ_STATE_MACHINE:-fuzz} == replay ]]; then
    args=(-runs=0 -detect_leaks=0 -timeout=70 -artifact_prefix=build/fuzz/artifacts/"$t"-
          fuzz/corpus/"$t")
  fi
  if [[ ${args[0]} == -runs=0 ]]; then echo "=== replay $t's seed corpus"; else echo "=== fuzz $t for ${seconds} s"; fi
  if ! ASAN_OPTIONS=$asan build/fuzz/fuzz_"$t" "${args[@]}" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz $t: FAILED (input in build/fuzz/artifacts/)"
    return 1
  fi
  echo "--- $t: $(grep -E "^#[0-9]+ *DONE|stat::number_of_executed_units" "$log" | tail -n 2 | tr '\n' ' ')"
}
# As many targets at once as there are cores (FUZZ_JOBS): each fuzzes on one thread (the state
# machine's own threads mostly wait on each other), so the cores would otherwise sit idle.
# Each leaves its status in build/fuzz/<target>.status.
parallel=${FUZZ_JOBS:-$(nproc)}
for t in "${targets[@]}"; do
  while (($(jobs -pr | wc -l) >= parallel)); do wait -n || true; done
  rm -f build/fuzz/"$t".status
  {
    if run_target "$t"; then status=0; else status=1; fi
    echo "$status" >build/fuzz/"$t".status
  } &
done
wait
for t in "${targets[@]}"; do
  [[ $(cat build/fuzz/"$t".status 2>/dev/null) == 0 ]] || exit 1
done

# The state machine: its judgement of a thread left over after an input, on planted threads
# (FUZZ_PLANT_THREAD, fuzz/state_machine.fuzz.cpp): one asleep 5 s after its input must fail it
# by the thread count, also when the input's own time limit has long passed (FUZZ_INPUT_SECONDS);
# one still running then must pass it if it is gone a second later, and fail it if it is still
# there 25 s after the input. Then every seed input, replayed under ThreadSanitizer.
if [[ " ${targets[*]} " == *" state_machine "* ]]; then
  echo "=== the state machine's judgement of leftover threads, on planted ones"
  : >build/fuzz/empty-input
  plant() { # sleep|spin|spin-long [env...] -> the harness's exit status; output in build/fuzz/plant-<kind>.log
    local kind=$1
    shift
    env FUZZ_PLANT_THREAD="$kind" ASAN_OPTIONS=detect_leaks=0 "$@" build/fuzz/fuzz_state_machine \
      -detect_leaks=0 build/fuzz/empty-input >build/fuzz/plant-"$kind".log 2>&1
  }
  if plant sleep FUZZ_INPUT_SECONDS=1 ||
    ! grep -q "invariant violated: threads return to their starting count" build/fuzz/plant-sleep.log; then
    tail -n 40 build/fuzz/plant-sleep.log
    echo "fuzz: a thread asleep 5 s after its input did not fail it by the thread count"
    exit 1
  fi
  if ! plant spin || ! grep -q "on their way out at 5 s and gone since" build/fuzz/plant-spin.log; then
    tail -n 40 build/fuzz/plant-spin.log
    echo "fuzz: a thread still running 5 s after its input, and gone soon after, failed it"
    exit 1
  fi
  if plant spin-long || ! grep -q "the input fails" build/fuzz/plant-spin-long.log ||
    ! grep -q "invariant violated: threads return to their starting count" build/fuzz/plant-spin-long.log; then
    tail -n 40 build/fuzz/plant-spin-long.log
    echo "fuzz: a thread still there 25 s after its input did not fail it"
    exit 1
  fi

  configure build/fuzz-tsan thread
  cmake --build build/fuzz-tsan -j "$(nproc)" --target fuzz_state_machine
  echo "=== replay state_machine corpus under TSan"
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp" \
    build/fuzz-tsan/fuzz_state_machine fuzz/corpus/state_machine
fi
echo "=== fuzz passed: ${targets[*]} (${seconds} s each)"
