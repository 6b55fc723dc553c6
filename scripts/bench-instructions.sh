#!/usr/bin/env bash
# Compares the instructions one offload round trip executes at two revisions: builds
# bench/instructions/driver.cpp (this checkout's) against each revision's headers, runs it under
# valgrind's callgrind with two call counts, and prints (Ir(N2) - Ir(N1)) / (N2 - N1) per call:
# user-space instructions, the program's start and end subtracted out. Unlike a wall-clock
# table, this does not move with the machine's load or its wake-up latency (the same headers on
# both sides read within 1 %: 2 888 and 2 910 for await at 1 in flight, a spurious wake-up more
# or less), so a change of a few percent in the library's own code shows at 1 in flight.
# At 64 in flight the count per call depends on how many calls each wake-up finds queued, which
# follows how valgrind interleaves the threads, which follows the code's layout: a commit that
# changed only comments moved it by 5 % (callback 930 -> 883, await 1310 -> 1208). Read
# differences there below about 5 % as no change.
# What it cannot see: time spent in the kernel (futex wake-ups, which the wall-clock tables of
# scripts/bench-compare.sh measure), cache misses, and the spin (the driver's pool does not spin).
#
# Usage: scripts/bench-instructions.sh <old-rev> [<new-rev>]     (new-rev: HEAD by default)
# Environment: CXX (default g++), CALLS="1024 9216" (the two call counts).
# Results: build/bench-instructions/summary.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

if (($# < 1 || $# > 2)); then
  echo "usage: $0 <old-rev> [<new-rev>]" >&2
  exit 2
fi
scripts/install-deps.sh valgrind
old_rev=$(git rev-parse --verify "$1^{commit}")
new_rev=$(git rev-parse --verify "${2:-HEAD}^{commit}")
read -r calls1 calls2 <<<"${CALLS:-1024 9216}"
out=build/bench-instructions
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

for side in old new; do
  rev=${side}_rev
  mkdir -p "$work/$side"
  git archive "${!rev}" include | tar -x -C "$work/$side"
  "${CXX:-g++}" -std=c++20 -O3 -DNDEBUG -I "$work/$side/include" bench/instructions/driver.cpp \
    -o "$work/$side/driver" -lfmt -pthread
done

# Instructions per call of one configuration: driver arguments after the call count.
per_call() {
  local bin=$1 mode=$2 in_flight=$3 watch=$4 a b
  a=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$mode" "$calls1" "$in_flight" "$watch" 2>&1 |
    sed -n 's/.*Collected : //p')
  b=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$mode" "$calls2" "$in_flight" "$watch" 2>&1 |
    sed -n 's/.*Collected : //p')
  echo $(((b - a) / (calls2 - calls1)))
}

{
  echo "old: $(git log -1 --format='%h %s' "$old_rev")"
  echo "new: $(git log -1 --format='%h %s' "$new_rev")"
  echo
  echo "# instructions per offload round trip (user space, callgrind; pool of 1, no spin)"
  printf '%-10s %9s %8s %8s %8s  %s\n' mode in_flight old new new/old "new, slow-call watch off (watch on/off)"
  for mode in await callback future; do
    for in_flight in 1 64; do
      o=$(per_call "$work/old/driver" "$mode" "$in_flight" watch)
      n=$(per_call "$work/new/driver" "$mode" "$in_flight" watch)
      off=$(per_call "$work/new/driver" "$mode" "$in_flight" nowatch)
      printf '%-10s %9s %8d %8d %8.3f  %d (%.3f)\n' "$mode" "$in_flight" "$o" "$n" \
        "$(awk "BEGIN { print $n / $o }")" "$off" "$(awk "BEGIN { print $n / $off }")"
    done
  done
} | tee "$out/summary.txt"
