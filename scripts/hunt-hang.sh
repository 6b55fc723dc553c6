#!/usr/bin/env bash
# Reruns one test until it hangs or fails, with COPIES copies at a time (the load of a busy CI
# machine is what makes rare interleavings show), and on a hang prints every thread's stack.
# A CTest timeout shows nothing of a Catch2 test that hung: this is the tool for that case.
# Usage: scripts/hunt-hang.sh [-n RUNS] [-c COPIES] [-t SECONDS] TEST_BINARY [CATCH_ARGS...]
#   e.g. scripts/hunt-hang.sh -n 100 build/test-tsan/examples/catalog_sync/catalog_sync_tests \
#          "a failure in the middle of a run leaves the previous catalogue intact"
# Exit status: 0 when every run passed, 1 on a hang or a failure (its output and stacks are
# printed; they are also kept in the directory named at the end).
set -uo pipefail

runs=50 copies=2 limit=30
while getopts "n:c:t:" opt; do
  case $opt in
    n) runs=$OPTARG ;;
    c) copies=$OPTARG ;;
    t) limit=$OPTARG ;;
    *) sed -n '2,9p' "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
(($# >= 1)) || { sed -n '2,9p' "$0" >&2; exit 2; }
command -v gdb >/dev/null || { echo "hunt-hang.sh needs gdb (apt-get install gdb)" >&2; exit 2; }
binary=$1
shift
out=$(mktemp -d /tmp/hunt-hang.XXXXXX)
# The test presets' sanitizer settings (CMakePresets.json), unless the caller has their own:
# without the TSan suppressions, libstdc++'s uninstrumented exception_ptr count is reported
# (docs/reliability.md).
repo=$(cd "$(dirname "$0")/.." && pwd)
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$repo/tests/tsan.supp}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# One copy's loop: returns 1 at its first hang or failure.
hunt() {
  local copy=$1 i pid waited
  shift
  for ((i = 1; i <= runs; ++i)); do
    [[ -e $out/stop ]] && return 0
    "$binary" "$@" >"$out/$copy.out" 2>&1 &
    pid=$!
    for ((waited = 0; waited < limit * 10; ++waited)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      touch "$out/stop"
      gdb -p "$pid" -batch -ex "thread apply all bt" >"$out/$copy.stacks" 2>&1
      kill -9 "$pid"
      wait "$pid" 2>/dev/null
      echo "copy $copy: run $i still running after $limit s; stacks in $out/$copy.stacks"
      return 1
    fi
    if ! wait "$pid"; then
      touch "$out/stop"
      echo "copy $copy: run $i failed; output in $out/$copy.out"
      return 1
    fi
  done
}

pids=()
for ((c = 1; c <= copies; ++c)); do
  hunt "$c" "$@" &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do
  wait "$p" || status=1
done
if ((status)); then
  for f in "$out"/*.stacks; do
    [[ -e $f ]] || continue
    # The frames that say where each thread waits, without the libc and libstdc++ plumbing.
    echo "=== $f"
    grep -E '^Thread|^#[0-9]+ ' "$f" | grep -vE 'futex|pthread_cond|__GI_|clone3|start_thread|std_thread\.h|invoke\.h' |
      cut -c1-200
  done
  for f in "$out"/*.out; do
    grep -q "FAILED\|ERROR\|WARNING" "$f" 2>/dev/null && { echo "=== $f"; tail -40 "$f"; }
  done
  echo "(kept in $out)"
else
  echo "$copies x $runs runs of $binary passed"
  rm -rf "$out"
fi
exit $status
