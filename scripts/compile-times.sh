#!/usr/bin/env bash
# What including each smartasync header costs at compile time, against Asio's own headers
# measured in the same run: each translation unit is `#include <H>` plus an empty main, compiled
# with -std=c++20 -O2 (no linking), the files interleaved round by round so that machine load
# hits all of them alike. Prints the median wall time of each and its ratio to <asio.hpp>.
# Usage: scripts/compile-times.sh [ROUNDS]   (default 5; CXX picks the compiler, default g++)
#   SMARTASYNC_FLAVOUR=boost measures the Boost.Asio flavour (BOOST_INCLUDE: where boost/ is).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
cxx=${CXX:-g++}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

flags=(-std=c++20 -O2 -c -Iinclude)
if [[ ${SMARTASYNC_FLAVOUR:-standalone} == boost ]]; then
  flags+=(-DSMARTASYNC_USE_BOOST_ASIO ${BOOST_INCLUDE:+-isystem "$BOOST_INCLUDE"})
  asio=boost/asio
else
  asio=asio
fi

headers=(
  "<$asio/io_context.hpp>"
  "<$asio.hpp>"
  "<smartasync/this_thread.hpp>"
  "<smartasync/blocking_pool.hpp>"
  "<smartasync/offload.hpp>"
  "<smartasync/smart_async.hpp>"
  "<smartasync/block_on.hpp>"
  "<smartasync/timeout.hpp>"
  "<smartasync/fan_out.hpp>"
  "<smartasync/stream.hpp>"
  "<smartasync/semaphore.hpp>"
  "<smartasync/watchdog.hpp>"
  "<smartasync/smartasync.hpp>"
)
for i in "${!headers[@]}"; do
  printf '#include %s\nint main() {}\n' "${headers[$i]}" > "$work/tu$i.cpp"
done

declare -A times
for ((r = 0; r < rounds; r++)); do
  for i in "${!headers[@]}"; do
    t0=$(date +%s%N)
    "$cxx" "${flags[@]}" "$work/tu$i.cpp" -o "$work/tu$i.o"
    t1=$(date +%s%N)
    times[$i]+="$(((t1 - t0) / 1000000)) "
  done
done

median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
base=$(echo "${times[1]}" | median)
echo "# $("$cxx" --version | head -1), -std=c++20 -O2 -c, median of $rounds rounds, load $(cut -d' ' -f1 /proc/loadavg)"
printf '| %-34s | %8s | %s |\n' "header" "ms" "vs <$asio.hpp>"
printf '|%s|%s|%s|\n' "------------------------------------" "----------" "--------------"
for i in "${!headers[@]}"; do
  m=$(echo "${times[$i]}" | median)
  printf '| %-34s | %8s | %s |\n' "\`${headers[$i]}\`" "$m" "$(awk -v m="$m" -v b="$base" 'BEGIN { printf "%.2fx", m / b }')"
done
