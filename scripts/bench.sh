#!/usr/bin/env bash
# Builds smartasync's benchmarks in Release and runs every one of them, each comparing the
# library with its baselines inside one process; then the Python anchor, the peers in other
# languages (scripts/bench-peers.sh: tokio, libuv, Python), the heartbeat plot and a summary
# against the goals in docs/benchmarks.md.
# Usage: scripts/bench.sh [--quick]    (--quick: a smoke pass for CI, under a minute)
# Results: build/bench/results/ (results.tsv, one .txt per program, heartbeat samples, plot).
# A full run also refreshes docs/img/heartbeat_lag.png and docs/img/peers.png.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=()
case "${1:-}" in
  --quick) quick=(--quick) ;;
  "") ;;
  *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac

scripts/install-deps.sh
build=build/bench
results=$build/results
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_DIR=${CCACHE_DIR:-${HOME:-/var/cache}/.cache/smartasync-ccache}
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSMARTASYNC_BUILD_BENCHMARKS=ON \
  -DSMARTASYNC_BUILD_TESTS=OFF -DSMARTASYNC_BUILD_EXAMPLES=OFF "${launcher[@]}" >/dev/null
programs=(detect offload features memory heartbeat watchdog streams metrics_registry)
cmake --build "$build" -j "$(nproc)" --target "${programs[@]/#/smartasync.bench.}"

rm -rf "$results"
mkdir -p "$results"
{
  echo "# machine"
  echo "date:     $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu:      $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
  echo "kernel:   $(uname -sr)"
  echo "compiler: $(sed -n 's/^CMAKE_CXX_COMPILER:[^=]*=//p' "$build/CMakeCache.txt") ($("$(sed -n 's/^CMAKE_CXX_COMPILER:[^=]*=//p' "$build/CMakeCache.txt")" --version | head -1))"
  echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min; above ~1 the numbers are noisier)"
} | tee "$results/machine.txt"

for p in "${programs[@]}"; do
  echo
  "$build/bench/smartasync.bench.$p" "${quick[@]}" --out "$results/results.tsv" --data "$results" |
    tee "$results/$p.txt"
done
echo
python3 bench/python_to_thread.py "${quick[@]}" --out "$results/results.tsv" | tee "$results/python.txt"
echo
# tokio, libuv and Python beside smartasync, one process each, alternating (its own table and
# plot; its aggregated rows join results.tsv).
scripts/bench-peers.sh "${quick[@]}" --results "$results/peers" --tsv "$results/results.tsv"

if command -v gnuplot >/dev/null; then
  gnuplot -e "data='$results'; out='$results/heartbeat_lag.png'" bench/heartbeat_lag.gp
  if ((${#quick[@]} == 0)); then
    mkdir -p docs/img
    cp "$results/heartbeat_lag.png" docs/img/heartbeat_lag.png
  fi
fi
python3 bench/summarize.py "$results/results.tsv" | tee "$results/summary.txt"
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$results/machine.txt"
