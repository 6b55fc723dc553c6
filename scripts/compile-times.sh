#!/usr/bin/env bash
# What including each smartasync header costs at compile time, against Asio's own headers
# measured in the same run: each translation unit is `#include <H>` plus an empty main, compiled
# with -std=c++20 -O2 (no linking), the files interleaved round by round. Prints the median CPU
# time (user + system) of each compiler run and its ratio to <asio.hpp>. CPU time, not wall
# time: on a shared machine the wall time of one compile mostly measures the other processes
# (at load 4 on 2 cores, 3 rounds of wall time put stream.hpp above the umbrella header that
# includes it), while its CPU time moves by a few percent.
# Usage: scripts/compile-times.sh [ROUNDS]   (default 5; CXX picks the compiler, default g++)
#   SMARTASYNC_FLAVOUR=boost measures the Boost.Asio flavour (BOOST_INCLUDE: where boost/ is).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
if [[ ! -x /usr/bin/time ]]; then
  echo "compile-times.sh needs GNU time as /usr/bin/time (Debian: apt-get install time)" >&2
  exit 1
fi
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
  "<smartasync/async_stream.hpp>"
  "<smartasync/semaphore.hpp>"
  "<smartasync/watchdog.hpp>"
  "<smartasync/serial_lane.hpp>"
  "<smartasync/retry.hpp>"
  "<smartasync/smartasync.hpp>"
)
for i in "${!headers[@]}"; do
  printf '#include %s\nint main() {}\n' "${headers[$i]}" > "$work/tu$i.cpp"
done

declare -A times
for ((r = 0; r < rounds; r++)); do
  for i in "${!headers[@]}"; do
    /usr/bin/time -f '%U %S' -o "$work/time" "$cxx" "${flags[@]}" "$work/tu$i.cpp" -o "$work/tu$i.o"
    times[$i]+="$(awk '{ printf "%d", ($1 + $2) * 1000 }' "$work/time") "
  done
done

median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
base=$(echo "${times[1]}" | median)
echo "# $("$cxx" --version | head -1), -std=c++20 -O2 -c, CPU time, median of $rounds rounds, load $(cut -d' ' -f1 /proc/loadavg)"
printf '| %-34s | %8s | %s |\n' "header" "CPU ms" "vs <$asio.hpp>"
printf '|%s|%s|%s|\n' "------------------------------------" "----------" "--------------"
for i in "${!headers[@]}"; do
  m=$(echo "${times[$i]}" | median)
  printf '| %-34s | %8s | %s |\n' "\`${headers[$i]}\`" "$m" "$(awk -v m="$m" -v b="$base" 'BEGIN { printf "%.2fx", m / b }')"
done
