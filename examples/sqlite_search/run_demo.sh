#!/usr/bin/env bash
# run_demo.sh BUILD_DIR - the sqlite_search example end to end, in a few seconds.
#
# Builds a catalogue (this machine's apt package list, or a generated one), searches it from
# the CLI (inline call), starts the server on a free port (offloaded calls), queries it with
# curl, shows that a malformed request gets 400, and stops the server with SIGTERM.
# Exits non-zero on the first failure. SQLITE_SEARCH_DEMO_SOURCE=generate skips apt.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: run_demo.sh BUILD_DIR}
bin=$build/examples/sqlite_search
import=$build/examples/catalog/catalog_import
# shellcheck source=../common/demo.sh
. "$here/../common/demo.sh"
demo_need "$build" "$bin/sqlite_search" "$bin/sqlite_search_server" "$import" -- curl
db=$work/catalog.db

apt_queries=("asio" "sqlite database") generated_queries=("network library" "audio OR video")

step "1. Build the catalogue"
# SQLITE_SEARCH_DEMO_SOURCE=generate forces the generated catalogue.
demo_import "${SQLITE_SEARCH_DEMO_SOURCE:-apt}" "$import" --db "$db"

step "2. CLI: the wrapped search called inline"
demo_search_each sqlite_search "$bin/sqlite_search" --db "$db"
echo "\$ sqlite_search '\"unterminated'   (a bad query is a clear error)"
if timeout 10 "$bin/sqlite_search" --db "$db" '"unterminated'; then echo "expected an error" >&2; exit 1; fi

step "3. Server: the same function awaited through the pool (--port 0)"
demo_start server "$bin/sqlite_search_server" --db "$db" --port 0 --threads 2
server_pid=$pid

expect 200 "$base/health"   # liveness: the event loop answers
expect 200 "$base/ready"    # readiness: a probe search through the pool works
expect 200 "$base/search?q=$(printf %s "${queries[0]}" | sed 's/ /+/g')&limit=2"
expect 400 "$base/search?q=%22unterminated"
expect 404 "$base/no/such/path"

step "4. A malformed request gets 400 (and the server lives on)"
reply=$(printf 'THIS IS NOT HTTP\r\n\r\n' | timeout 5 curl -sS --max-time 5 telnet://127.0.0.1:"$port" 2>/dev/null || true)
echo "$reply" | head -1
[[ $reply == "HTTP/1.1 400"* ]] || { echo "expected a 400 status line" >&2; exit 1; }
expect 200 "$base/health"

step "5. Bad options are refused with a clear message (exit 2)"
if "$bin/sqlite_search_server" --db "$db" --port 70000; then echo "expected --port 70000 to be refused" >&2; exit 1; fi

step "6. Stop the server (SIGTERM): queued searches get 503 at once, running ones a grace"
demo_stop "$server_pid"
tail -2 "$work/server.log"
echo
echo "run_demo: OK"
