#!/usr/bin/env bash
# Counts the futex system calls one use_future round trip costs, on the calling thread and on
# the pool's thread, for smartasync and for lean Asio (bench/baselines.hpp's lean_offload on an
# asio::thread_pool), pool of one thread, no spin. With one worker at 64 in flight, the worker is
# the bottleneck of both, and a system call on it costs more than all of the pool's own
# bookkeeping: this shows where its time goes, by the libc function that entered the kernel.
# (std::promise::set_value runs its store through std::call_once, whose glibc slow path wakes
# the once-flag's futex on every call: `__pthread_once_slow` below.)
# Counts, not times: they do not move with the machine's load the way a wall-clock table does,
# except the few that depend on whether the other thread was already waiting.
#
# Usage: scripts/bench-syscalls.sh [CALLS] [IN_FLIGHT]     (defaults: 200000 64)
# Needs perf (Debian's linux-perf) and permission to read syscall tracepoints (root).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh linux-perf
calls=${1:-200000} in_flight=${2:-64}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"${CXX:-g++}" -std=c++20 -O3 -DNDEBUG -fno-omit-frame-pointer -I include \
  bench/instructions/driver.cpp -o "$work/driver" -lfmt -pthread

echo "# futex system calls per use_future round trip ($calls calls, $in_flight in flight, pool of 1, no spin)"
printf '%-12s %14s %14s  %s\n' mode "caller thread" "pool thread" "pool thread, by the libc function entering the kernel"
for mode in future future-lean; do
  perf record -q -o "$work/perf.data" -e syscalls:sys_enter_futex -g \
    "$work/driver" "$mode" "$calls" "$in_flight" >/dev/null 2>&1
  perf script -i "$work/perf.data" -F pid,tid,ip,sym 2>/dev/null |
    python3 -c '
import collections, sys
mode, calls = sys.argv[1], int(sys.argv[2])
caller = pool = 0
by_function = collections.Counter()
event, first = None, None
def close():
    global caller, pool
    if event is None:
        return
    pid, tid = event
    if pid == tid:
        caller += 1
    else:
        pool += 1
        by_function[first or "?"] += 1
for line in sys.stdin:
    s = line.strip()
    if not s:
        close(); event, first = None, None; continue
    if event is None:
        pid, tid = s.split("/") if "/" in s else s.split()[:2]
        event = (pid.strip(), tid.strip()); continue
    if first is None:
        parts = s.split(None, 1)
        first = parts[1].split("+")[0].split("@")[0] if len(parts) > 1 else "?"
close()
top = ", ".join(f"{f} {n / calls:.2f}" for f, n in by_function.most_common(3))
print(f"{mode:<12} {caller / calls:14.2f} {pool / calls:14.2f}  {top}")
' "$mode" "$calls"
done
