#!/usr/bin/env bash
# What including each smartasync header costs at compile time, against Asio's own headers
# measured in the same run: each translation unit is `#include <H>` plus an empty main, compiled
# with -std=c++20 -O2 (no linking), the files interleaved round by round. Prints the median CPU
# time (user + system) of each compiler run and its ratio to <asio.hpp>. CPU time, not wall
# time: on a shared machine the wall time of one compile mostly measures the other processes
# (at load 4 on 2 cores, 3 rounds of wall time put stream.hpp above the umbrella header that
# includes it), while its CPU time moves by a few percent.
# Each smartasync header is also measured against its floor: a translation unit holding only the
# Asio, fmt and standard headers that the smartasync headers it reaches include; the difference
# ("ours") is what smartasync's own code costs, the floor what its dependencies cost.
# Usage: scripts/compile-times.sh [ROUNDS]   (default 5; CXX picks the compiler, default g++)
#   KEEP_WORK=1 keeps the generated translation units (their folder is the newest /tmp/tmp.*).
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
[[ -n ${KEEP_WORK:-} ]] || trap 'rm -rf "$work"' EXIT

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

# The floor of each smartasync header: a translation unit of only what the smartasync headers it
# reaches include from outside (Asio, fmt, the standard library), so that "ours" below is what
# smartasync's own code adds. Read from the compiler's include tree (-H), so that conditional
# includes count as this compiler and this Asio take them: every outside header whose includer
# is a smartasync header, by its full path.
n=${#headers[@]}
floor_of=()
for ((i = 2; i < n; i++)); do
  "$cxx" "${flags[@]}" -H -fsyntax-only "$work/tu$i.cpp" 2>&1 >/dev/null |
    awk '/^\.+ / {
           depth = length($1); ours[depth] = ($2 ~ /(^|\/)include\/smartasync\//)
           if (depth > 1 && ours[depth - 1] && !ours[depth]) print $2
         }' | sort -u | sed 's/.*/#include "&"/' > "$work/floor$i.h"
  f=$((n + i - 2))
  floor_of[i]=$f
  { cat "$work/floor$i.h"; echo 'int main() {}'; } > "$work/tu$f.cpp"
done
all_tus=$(ls "$work"/tu*.cpp | wc -l)

declare -A times
for ((r = 0; r < rounds; r++)); do
  for ((i = 0; i < all_tus; i++)); do
    /usr/bin/time -f '%U %S' -o "$work/time" "$cxx" "${flags[@]}" "$work/tu$i.cpp" -o "$work/tu$i.o"
    times[$i]+="$(awk '{ printf "%d", ($1 + $2) * 1000 }' "$work/time") "
  done
done

median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
base=$(echo "${times[1]}" | median)
echo "# $("$cxx" --version | head -1), -std=c++20 -O2 -c, CPU time, median of $rounds rounds, load $(cut -d' ' -f1 /proc/loadavg)"
# header: the header alone; floor: what it includes from outside, alone; ours: the difference.
ratio() { awk -v m="$1" -v b="$base" 'BEGIN { printf "%.2fx", m / b }'; }
printf '| %-34s | %8s | %8s | %12s | %12s |\n' "header" "CPU ms" "vs <$asio.hpp>" "floor" "ours"
printf '|%s|%s|%s|%s|%s|\n' "------------------------------------" "---------:" "---------:" "-------------:" "-------------:"
for i in "${!headers[@]}"; do
  m=$(echo "${times[$i]}" | median)
  floor='' ours=''
  if [[ -n ${floor_of[i]:-} ]]; then
    fm=$(echo "${times[${floor_of[i]}]}" | median)
    floor=$(ratio "$fm") ours=$(ratio $((m - fm)))
  fi
  printf '| %-34s | %8s | %8s | %12s | %12s |\n' "\`${headers[$i]}\`" "$m" "$(ratio "$m")" "$floor" "$ours"
done
