#!/usr/bin/env bash
# run_demo.sh BUILD_DIR - the sqlite_search example end to end, in a few seconds.
#
# Builds a catalogue (this machine's apt package list, or a generated one), searches it from
# the CLI (inline call), starts the server on a free port (offloaded calls), queries it with
# curl, shows that a malformed request gets 400, and stops the server with SIGTERM.
# Exits non-zero on the first failure. SQLITE_SEARCH_DEMO_SOURCE=generate skips apt.
set -euo pipefail

build=${1:?usage: run_demo.sh BUILD_DIR}
bin=$build/examples/sqlite_search
import=$build/examples/catalog/catalog_import
for tool in "$bin/sqlite_search" "$bin/sqlite_search_server" "$import"; do
  [[ -x $tool ]] || { echo "run_demo: $tool not built (cmake --build $build --target sqlite_search sqlite_search_server catalog_import)" >&2; exit 1; }
done
command -v curl >/dev/null || { echo "run_demo: curl is needed" >&2; exit 1; }

work=$(mktemp -d)
server_pid=
guard_pid=
cleanup() {
  if [[ -n $guard_pid ]]; then kill "$guard_pid" 2>/dev/null || true; fi
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then kill "$server_pid"; wait "$server_pid" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
db=$work/catalog.db
step() { printf '\n== %s\n' "$*"; }

step "1. Build the catalogue"
# SQLITE_SEARCH_DEMO_SOURCE=generate forces the generated catalogue.
if [[ ${SQLITE_SEARCH_DEMO_SOURCE:-apt} == apt ]] && command -v apt-cache >/dev/null &&
   timeout 60 "$import" --db "$db" --from-apt; then
  queries=("asio" "sqlite database")
else
  echo "(apt-cache unavailable or not wanted: using the generated catalogue)"
  timeout 60 "$import" --db "$db" --generate 20000
  queries=("network library" "audio OR video")
fi

step "2. CLI: the wrapped search called inline"
for q in "${queries[@]}"; do
  echo "\$ sqlite_search --limit 3 '$q'"
  timeout 10 "$bin/sqlite_search" --db "$db" --limit 3 -- "$q"
done
echo "\$ sqlite_search '\"unterminated'   (a bad query is a clear error)"
if timeout 10 "$bin/sqlite_search" --db "$db" '"unterminated'; then echo "expected an error" >&2; exit 1; fi

step "3. Server: the same function awaited through the pool (--port 0)"
# Started directly, not under timeout(1): step 5 checks the server's own exit status after
# SIGTERM, and timeout would report its own 143 instead. A guard process bounds its life.
"$bin/sqlite_search_server" --db "$db" --port 0 --threads 2 >"$work/server.log" 2>&1 &
server_pid=$!
(exec >/dev/null 2>&1; sleep 60; kill -KILL "$server_pid") &
guard_pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's|.*listening on http://[^:]*:\([0-9]*\)/.*|\1|p' "$work/server.log")
  [[ -n $port ]] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.05
done
[[ -n $port ]] || { echo "server did not start" >&2; cat "$work/server.log" >&2; exit 1; }
cat "$work/server.log"
base=http://127.0.0.1:$port

expect() { # expect STATUS URL [curl args...]
  local want=$1 url=$2; shift 2
  local got
  got=$(curl -sS --max-time 10 -o "$work/body" -w '%{http_code}' "$@" "$url")
  printf '%s -> %s %s\n' "$url" "$got" "$(head -c 300 "$work/body")"
  [[ $got == "$want" ]] || { echo "expected HTTP $want" >&2; exit 1; }
}
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
kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=
tail -2 "$work/server.log"
[[ $status == 0 ]] || { echo "server exited with $status" >&2; exit 1; }
echo
echo "run_demo: OK"
