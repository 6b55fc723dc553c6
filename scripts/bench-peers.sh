#!/usr/bin/env bash
# smartasync's offload round trip beside its peers in other languages: tokio's spawn_blocking
# (without and with the runtime's IO driver), libuv's uv_queue_work and Python's
# asyncio.to_thread (bench/peers/README.md), each doing the same trivial call from an event loop
# to a pool of 1 or 2 threads, 1 and 64 calls in flight.
# Installs what the peers need (Debian packages: Rust's tokio builds offline from
# librust-tokio-dev), builds them, then runs one process per peer, alternating (smartasync,
# tokio, tokio with its IO driver, libuv, python, then smartasync with its spin off, smartasync,
# ...), R runs each per pool size; then the same again with 4 busy processes on the machine; then
# prints one table per pass and plots it.
# Usage: scripts/bench-peers.sh [--runs R] [--rounds N] [--quick] [--no-loaded] [--no-quiet] [--results DIR] [--tsv FILE]
#   --runs R      process runs of each peer per pool size and pass (default 3; --quick: 1)
#   --rounds N    rounds inside each process (default: the programs' own, 10; --quick: 3)
#   --quick       short runs, a smoke pass: the numbers mean nothing
#   --no-loaded   skip the pass with 4 busy processes
#   --no-quiet    skip the pass on the machine as it is (only the one with 4 busy processes)
#   --results DIR where the runs, the table and the plot go (default build/bench/results/peers)
#   --tsv FILE    also append the table's rows to FILE (scripts/bench.sh: its results.tsv)
# A full run (both passes, not --quick) also refreshes docs/img/peers.png.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  sed -n '/^# Usage:/,/^#   --tsv/s/^# \{0,1\}//p' "$0" >&2
  exit 2
}
positive() { [[ $1 =~ ^[1-9][0-9]*$ ]] || { echo "$0: not a positive number: $1" >&2; usage; }; }

runs=3
runs_given=0
rounds=()
quick=()
loaded=1
quiet_pass=1
results=build/bench/results/peers
tsv=""
while (($#)); do
  case "$1" in
    --runs) (($# > 1)) || usage; positive "$2"; runs=$2; runs_given=1; shift ;;
    --rounds) (($# > 1)) || usage; positive "$2"; rounds=(--rounds "$2"); shift ;;
    --quick) quick=(--quick) ;;
    --no-loaded) loaded=0 ;;
    --no-quiet) quiet_pass=0 ;;
    --results) (($# > 1)) || usage; results=$2; shift ;;
    --tsv) (($# > 1)) || usage; tsv=$2; shift ;;
    *) usage ;;
  esac
  shift
done
if ((${#quick[@]})) && ((runs_given == 0)); then
  runs=1
fi

# The project's dependencies and the peers': cargo brings Debian's rustc; librust-tokio-dev puts
# tokio's source (and its dependencies') in /usr/share/cargo/registry.
scripts/install-deps.sh cargo librust-tokio-dev libuv1-dev

# smartasync's side: the same Release build as scripts/bench.sh.
build=build/bench
scripts/build-bench.sh smartasync.bench.peers

# tokio, offline, with Debian's cargo and rustc (not a rustup toolchain that may come first on
# PATH): a copy of the crate in the build tree, so that Cargo.lock and the source-replacement
# configuration (in a CARGO_HOME of its own) stay out of the source tree and out of ~/.cargo.
peers=$build/peers
rm -rf "$peers/tokio"
mkdir -p "$peers/tokio" "$peers/cargo-home"
cp -r bench/peers/tokio/Cargo.toml bench/peers/tokio/src "$peers/tokio/"
cat >"$peers/cargo-home/config.toml" <<'EOF'
[source.crates-io]
replace-with = "debian"

[source.debian]
directory = "/usr/share/cargo/registry"
EOF
(
  cd "$peers/tokio"
  CARGO_HOME=$PWD/../cargo-home CARGO_TARGET_DIR=$PWD/../tokio-target RUSTC=/usr/bin/rustc \
    RUSTDOC=/usr/bin/rustdoc /usr/bin/cargo build --release --offline --quiet
)
tokio_version=$(sed -n '/^name = "tokio"$/{n;s/^version = "\(.*\)"$/\1/p}' "$peers/tokio/Cargo.lock")

# libuv: plain C against Debian's libuv1-dev.
# shellcheck disable=SC2046 # pkg-config's flags are meant to split
${CC:-cc} -O2 -Wall -Wextra -Wpedantic -Werror bench/peers/libuv/uv_queue_work.c \
  $(pkg-config --cflags --libs libuv) -o "$peers/uv_queue_work"

peer_command() {
  case $1 in
    smartasync) echo "$build/bench/smartasync.bench.peers" ;;
    nospin) echo "$build/bench/smartasync.bench.peers --no-spin" ;;
    tokio) echo "$peers/tokio-target/release/tokio-peer" ;;
    tokioio) echo "$peers/tokio-target/release/tokio-peer --io" ;;
    libuv) echo "$peers/uv_queue_work" ;;
    python) echo "python3 bench/python_to_thread.py" ;;
  esac
}

mkdir -p "$results"
rm -rf "$results/quiet" "$results/loaded" # this script's files only: --results may name any folder
{
  echo "# machine"
  echo "date:     $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu:      $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
  echo "kernel:   $(uname -sr)"
  echo "peers:    tokio $tokio_version ($(/usr/bin/rustc --version)), libuv $(pkg-config --modversion libuv) ($(${CC:-cc} --version | head -1)), $(python3 --version)"
  echo "runs:     $runs process run(s) per peer, pool size and pass${quick:+ (quick)}"
} | tee "$results/machine.txt"

# One pass: for each pool size, R rounds of one process per peer, in the same order each time.
run_pass() {
  local pass=$1
  mkdir -p "$results/$pass"
  echo "$pass: load at start $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$results/machine.txt"
  for pool in 1 2; do
    for ((run = 1; run <= runs; ++run)); do
      for peer in smartasync tokio tokioio libuv python nospin; do
        local name="$results/$pass/$peer-pool$pool-run$run"
        echo "  $pass, pool of $pool, run $run/$runs: $peer"
        # shellcheck disable=SC2046 # the command is a program and its fixed arguments
        $(peer_command "$peer") --pool "$pool" "${rounds[@]}" "${quick[@]}" --out "$name.tsv" >"$name.txt"
      done
    done
  done
  echo "$pass: load at end $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$results/machine.txt"
}

busy=()
stop_busy() {
  if ((${#busy[@]})); then
    kill "${busy[@]}" 2>/dev/null || true
    wait "${busy[@]}" 2>/dev/null || true
  fi
  busy=()
}
trap stop_busy EXIT
trap 'stop_busy; exit 130' INT TERM

if ((quiet_pass)); then
  run_pass quiet
fi
if ((loaded)); then
  # Four processes that never sleep, on a machine of two cores: a pool that spins while others
  # wait for the core must show it here, in its time and CPU per call.
  for _ in 1 2 3 4; do
    yes >/dev/null &
    busy+=($!)
  done
  run_pass loaded
  stop_busy
fi

echo
python3 bench/peers/table.py "$results" --plot "$results/peers.dat" | tee "$results/table.txt"
python3 bench/peers/table.py --markdown "$results" >"$results/table.md"
if [[ -n $tsv ]]; then
  python3 bench/peers/table.py "$results" --tsv "$tsv" >/dev/null
fi
if command -v gnuplot >/dev/null; then
  gnuplot -e "data='$results/peers.dat'; out='$results/peers.png'; panels=$((loaded + quiet_pass)); only_loaded=$((1 - quiet_pass))" bench/peers/peers.gp
  if ((${#quick[@]} == 0 && loaded && quiet_pass)); then
    mkdir -p docs/img
    cp "$results/peers.png" docs/img/peers.png
  fi
fi
echo "results: $results (table.txt, table.md, peers.png, one .tsv and .txt per process run)"
