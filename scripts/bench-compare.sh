#!/usr/bin/env bash
# Compares the offload benchmark (bench/offload.cpp) of two revisions in one sitting: builds it
# at each in a temporary worktree (Release, the same compiler and flags), then runs the two
# programs alternately, old, new, old, new..., so that both see the same machine, and prints
# for every table the median of the runs' smartasync medians and new/old ratios.
#
# Usage: scripts/bench-compare.sh <old-rev> [<new-rev>]     (new-rev: HEAD by default)
# Environment:
#   RUNS=N         runs of each program (default 5)
#   BENCH_ARGS=... passed to each run, split at spaces (default "--rounds 5")
#   BENCH_ONLY=... only the tables whose title contains this text, spaces kept (e.g. "pool of 1")
#   KEEP=1         keep the worktrees and builds (under $TMPDIR/smartasync-bench-compare)
# Results: build/bench-compare/{old,new}-<i>.tsv and summary.txt.
#
# Numbers on a busy machine are noisy: the ratio of medians over alternating runs cancels a
# steady load, not a burst in one run. Read ratios within a few percent as "no change".
set -euo pipefail
cd "$(dirname "$0")/.."

if (($# < 1 || $# > 2)); then
  echo "usage: $0 <old-rev> [<new-rev>]" >&2
  exit 2
fi
old_rev=$(git rev-parse --verify "$1^{commit}")
new_rev=$(git rev-parse --verify "${2:-HEAD}^{commit}")
runs=${RUNS:-5}
read -r -a bench_args <<<"${BENCH_ARGS:---rounds 5}"
[[ -n ${BENCH_ONLY:-} ]] && bench_args+=(--only "$BENCH_ONLY")

work=${TMPDIR:-/tmp}/smartasync-bench-compare
out=build/bench-compare
mkdir -p "$work" "$out"
rm -f "$out"/*.tsv "$out/summary.txt"

launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_DIR=${CCACHE_DIR:-${HOME:-/var/cache}/.cache/smartasync-ccache}
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cxx=${CXX:-g++}

cleanup() {
  if [[ -z "${KEEP:-}" ]]; then
    for side in old new; do
      git worktree remove --force "$work/$side" 2>/dev/null || true
    done
    rm -rf "$work"
  fi
}
trap cleanup EXIT

# Builds smartasync.bench.offload at revision $2 into $work/$1/build; prints the program's path.
build_at() {
  local side=$1 rev=$2 tree=$work/$1
  git worktree remove --force "$tree" 2>/dev/null || rm -rf "$tree"
  git worktree add --detach "$tree" "$rev" >/dev/null 2>&1
  cmake -S "$tree" -B "$tree/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_COMPILER="$cxx" -DSMARTASYNC_BUILD_BENCHMARKS=ON -DSMARTASYNC_BUILD_TESTS=OFF \
    -DSMARTASYNC_BUILD_EXAMPLES=OFF "${launcher[@]}" >/dev/null
  cmake --build "$tree/build" -j "$(nproc)" --target smartasync.bench.offload >&2
  echo "$tree/build/bench/smartasync.bench.offload"
}

echo "old: $(git log -1 --format='%h %s' "$old_rev")"
echo "new: $(git log -1 --format='%h %s' "$new_rev")"
old_bin=$(build_at old "$old_rev")
new_bin=$(build_at new "$new_rev")

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((i = 1; i <= runs; ++i)); do
  for side in old new; do
    bin=old_bin
    [[ $side == new ]] && bin=new_bin
    echo "run $i/$runs: $side"
    "${!bin}" "${bench_args[@]}" --out "$out/$side-$i.tsv" >/dev/null
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$out" "$runs" <<'EOF' | tee "$out/summary.txt"
import csv, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])

def load(side):
    # (table, variant) -> [median ns/op of each run]
    rows = {}
    for i in range(1, runs + 1):
        with open(f"{out}/{side}-{i}.tsv") as f:
            for group, variant, metric, median, *_ in csv.reader(f, delimiter="\t"):
                if metric == "ns_per_op" and variant.startswith("smartasync"):
                    # A row renamed with the API still compares with itself.
                    variant = variant.replace("w.async(", "w.async_call(")
                    rows.setdefault((group, variant), []).append(float(median))
    return rows

old, new = load("old"), load("new")
print(f"\n# offload benchmark, smartasync rows: median over {runs} alternating runs of each run's "
      "median ns/op (lower is better)")
print(f"{'table':<34} {'variant':<42} {'old':>9} {'new':>9} {'new/old':>8}")
worst = 0.0
for key in old:
    if key not in new:
        continue
    o, n = statistics.median(old[key]), statistics.median(new[key])
    ratio = n / o
    worst = max(worst, ratio)
    flag = "  <-- above 1.03" if ratio > 1.03 else ""
    print(f"{key[0]:<34} {key[1]:<42} {o:>9.1f} {n:>9.1f} {ratio:>8.3f}{flag}")
print(f"\nworst new/old: {worst:.3f}")
EOF
