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
# shellcheck source=../common/demo.sh
. "$here/../common/demo.sh"
demo_need "$build" "$bin/pg_import" "$bin/pg_search" "$bin/pg_search_server" "$bin/pg_cancel_bench" -- curl psql python3
cluster=$(mktemp -d) # a folder of its own: under root, its unprivileged owner must reach it
demo_on_exit() { "$here/pg_cluster.sh" destroy "$cluster"; }
apt_queries=("asio" "sqlite & database") generated_queries=("network & library" "audio | video")

step "1. A throwaway PostgreSQL cluster"
pg=$("$here/pg_cluster.sh" create "$cluster")
echo "conninfo: $pg   (data, socket and log in $cluster)"

step "2. Import the catalogue (COPY, one transaction)"
demo_import "${PG_SEARCH_DEMO_SOURCE:-apt}" "$bin/pg_import" --pg "$pg"

step "3. CLI: the wrapped search called inline"
demo_search_each pg_search "$bin/pg_search" --pg "$pg"
echo "\$ pg_search 'sqlite database'   (to_tsquery wants an operator: a clear error, exit 2)"
status=0
timeout 20 "$bin/pg_search" --pg "$pg" 'sqlite database' || status=$?
[[ $status == 2 ]] || { echo "expected exit 2, got $status" >&2; exit 1; }

start_server() { demo_start "$1" "$bin/pg_search_server" --pg "$pg" --port 0 "${@:2}"; servers+=("$pid"); }
servers=()
active_searches() {
  psql "$pg" -Atc "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_search_server' AND state = 'active'"
}

step "4. Server: the same function awaited through the pool"
start_server server --threads 2
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
start_server slow --threads 2 --debug-delay-ms 30000 --search-timeout-ms 300
expect 504 "http://127.0.0.1:$port/search?q=${queries[0]// /+}"
left=$(active_searches)
echo "searches still active on the database server after the 504: $left"
[[ $left == 0 ]] || { echo "expected the cancelled search to be gone" >&2; exit 1; }

step "6. Stop the servers (SIGTERM): exit status 0 and a count"
for server in "${servers[@]}"; do demo_stop "$server"; done
tail -1 "$work/server.log"
tail -1 "$work/slow.log"
echo
echo "run_demo: OK (the cluster is removed on exit)"
