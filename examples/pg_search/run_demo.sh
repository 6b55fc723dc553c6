#!/usr/bin/env bash
# run_demo.sh BUILD_DIR - the pg_search example end to end on a throwaway PostgreSQL cluster.
#
# Creates a cluster in a temporary folder (pg_cluster.sh: initdb, a free loopback port, its own
# socket folder, an unprivileged owner when run as root), imports the catalogue, searches it
# from the CLI (inline call) and from the HTTP server (offloaded), cancels slow queries (a
# timeout) and shows with pg_stat_activity that the server stopped running them, stops the
# HTTP server with SIGTERM, and removes the cluster (on any exit, failures included).
# PG_SEARCH_DEMO_SOURCE=generate skips apt.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: run_demo.sh BUILD_DIR}
bin=$build/examples/pg_search
for tool in pg_import pg_search pg_search_server pg_cancel_bench; do
  [[ -x $bin/$tool ]] || { echo "run_demo: $bin/$tool not built (cmake --build $build --target $tool)" >&2; exit 1; }
done
for tool in curl psql python3; do
  command -v $tool >/dev/null || { echo "run_demo: $tool is needed (scripts/install-deps.sh)" >&2; exit 1; }
done

work=$(mktemp -d)
cluster=$(mktemp -d) # a folder of its own: under root, its unprivileged owner must reach it
servers=()
cleanup() {
  for pid in "${servers[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  done
  "$here/pg_cluster.sh" destroy "$cluster" || true
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }

step "1. A throwaway PostgreSQL cluster"
pg=$("$here/pg_cluster.sh" create "$cluster")
echo "conninfo: $pg   (data, socket and log in $cluster)"

step "2. Import the catalogue (COPY, one transaction)"
if [[ ${PG_SEARCH_DEMO_SOURCE:-apt} == apt ]] && command -v apt-cache >/dev/null &&
   timeout 120 "$bin/pg_import" --pg "$pg" --from-apt; then
  queries=("asio" "sqlite & database")
else
  echo "(apt-cache unavailable or not wanted: using the generated catalogue)"
  timeout 120 "$bin/pg_import" --pg "$pg" --generate 20000
  queries=("network & library" "audio | video")
fi

step "3. CLI: the wrapped search called inline"
for q in "${queries[@]}"; do
  echo "\$ pg_search --limit 3 '$q'"
  timeout 20 "$bin/pg_search" --pg "$pg" --limit 3 -- "$q"
done
echo "\$ pg_search 'sqlite database'   (to_tsquery wants an operator: a clear error, exit 2)"
status=0
timeout 20 "$bin/pg_search" --pg "$pg" 'sqlite database' || status=$?
[[ $status == 2 ]] || { echo "expected exit 2, got $status" >&2; exit 1; }

start_server() { # start_server LOG ARGS...: starts pg_search_server, sets $port
  local log=$1; shift
  "$bin/pg_search_server" --pg "$pg" --port 0 "$@" >"$log" 2>&1 &
  servers+=($!)
  port=
  for _ in $(seq 200); do
    port=$(sed -n 's|.*listening on http://[^:]*:\([0-9]*\)/.*|\1|p' "$log")
    [[ -n $port ]] && break
    kill -0 "${servers[-1]}" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.05
  done
  [[ -n $port ]] || { echo "server did not start" >&2; cat "$log" >&2; exit 1; }
  cat "$log"
}
expect() { # expect STATUS URL
  local got
  got=$(curl -sS --max-time 20 -o "$work/body" -w '%{http_code}' "$2")
  printf '%s -> %s %s\n' "$2" "$got" "$(head -c 300 "$work/body")"
  [[ $got == "$1" ]] || { echo "expected HTTP $1" >&2; exit 1; }
}
active_searches() {
  psql "$pg" -Atc "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_search_server' AND state = 'active'"
}

step "4. Server: the same function awaited through the pool"
start_server "$work/server.log" --threads 2
base=http://127.0.0.1:$port
expect 200 "$base/health"
expect 200 "$base/ready"
expect 200 "$base/search?q=$(printf %s "${queries[0]}" | sed 's/ /+/g; s/&/%26/g')&limit=2"
expect 400 "$base/search?q=sqlite+database"
expect 400 "$base/search?q=%26%26"

step "5. A slow query cancelled by a timeout is gone from the database server"
echo "\$ pg_cancel_bench --runs 3   (SELECT pg_sleep(30), cancelled after 200 ms)"
timeout 60 "$bin/pg_cancel_bench" --pg "$pg" --runs 3 --timeout-ms 200
echo
echo "The HTTP server, every search made slow (--debug-delay-ms 30000), --search-timeout-ms 300:"
start_server "$work/slow.log" --threads 2 --debug-delay-ms 30000 --search-timeout-ms 300
expect 504 "http://127.0.0.1:$port/search?q=${queries[0]// /+}"
left=$(active_searches)
echo "searches still active on the database server after the 504: $left"
[[ $left == 0 ]] || { echo "expected the cancelled search to be gone" >&2; exit 1; }

step "6. Stop the servers (SIGTERM): exit status 0 and a count"
for pid in "${servers[@]}"; do
  kill -TERM "$pid"
  status=0
  wait "$pid" || status=$?
  [[ $status == 0 ]] || { echo "server $pid exited with $status" >&2; exit 1; }
done
tail -1 "$work/server.log"
tail -1 "$work/slow.log"
servers=()
echo
echo "run_demo: OK (the cluster is removed on exit)"
