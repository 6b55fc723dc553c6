#!/usr/bin/env bash
# run_demo.sh BUILD_DIR - the catalog_sync example end to end, in about 20 seconds.
#
# Starts the local paginated API (catalog_server) on a free port with some latency and injected
# 429/5xx, syncs it into a fresh SQLite catalogue with 8 requests in flight, edits the catalogue
# server-side and syncs again (the diff counts), syncs an API that caps the page size silently and
# sends no total (all of it arrives), shows the deletion guard refusing an empty snapshot, shows
# that a failing run (a page that stays malformed) and an interrupted run (SIGINT) leave the
# catalogue untouched, and finally searches the synced catalogue with the sqlite_search CLI.
# Exits non-zero on the first failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: run_demo.sh BUILD_DIR}
bin=$build/examples/catalog_sync
search=$build/examples/sqlite_search/sqlite_search
# shellcheck source=../common/demo.sh
. "$here/../common/demo.sh"
demo_need "$build" "$bin/catalog_server" "$bin/catalog_sync" "$search" -- sqlite3
db=$work/catalog.db

server_pid=
start_server() { # start_server ARGS... ; sets server_pid and base
  demo_start server "$bin/catalog_server" --port 0 --source generate 3000 --seed 7 "$@"
  server_pid=$pid
}
stop_server() { if [[ -n $server_pid ]]; then demo_stop "$server_pid"; fi; server_pid=; }
fingerprint() { sqlite3 "$db" "SELECT count(*), total(length(name || version || description)) FROM packages"; }
sync() { timeout 60 "$bin/catalog_sync" --db "$db" --concurrency 8 --retry-base-ms 50 "$@"; }
# A sync that must fail: exit status $1, output containing $2, the catalogue ($good) unchanged.
sync_refused() {
  local expected=$1 message=$2 status=0
  shift 2
  sync "$@" >"$work/out" 2>&1 || status=$?
  cat "$work/out"
  [[ $status == "$expected" ]] || { echo "expected exit status $expected, got $status" >&2; exit 1; }
  grep -qF "$message" "$work/out" || { echo "expected the output to say: $message" >&2; exit 1; }
  [[ $(fingerprint) == "$good" ]] || { echo "the catalogue changed!" >&2; exit 1; }
  echo "catalogue still: $(fingerprint)"
}

step "1. A local paginated API: 3000 records, 10-20 ms a page, 5% 429 (Retry-After: 1), 5% 5xx"
start_server --latency-ms 10 --jitter-ms 10 --fault-429 0.05 --fault-5xx 0.05 --retry-after 1

step "2. First sync into a fresh catalogue: offset/limit, 8 in flight (plain lines: not a terminal)"
sync --url "$base/offset/packages" --style offset | tee "$work/out"
grep -q "3000 added, 0 updated, 0 deleted" "$work/out"

step "3. The server's catalogue changes; a cursor-paginated re-sync reports the diff"
stop_server
start_server --latency-ms 10 --edit
sync --url "$base/cursor/packages" --style cursor | tee "$work/out"
grep -q "25 added, 300 updated, 150 deleted" "$work/out"
good=$(fingerprint)
echo "catalogue now: $good (rows, bytes)"

step "4. A filter that matches nothing: the deletion guard refuses to empty the catalogue (exit 3)"
sync_refused 3 "refusing to delete 2875 of the catalogue's 2875 records" \
  --url "$base/offset/packages?section=nosuch" --style offset

step "5. An API that sends bare arrays without a total and caps limit=100 at 50: all of it arrives"
stop_server
start_server --latency-ms 10 --bare-offset --max-page-size 50
capped=$work/capped.db
timeout 60 "$bin/catalog_sync" --db "$capped" --concurrency 8 --page-size 100 --url "$base/offset/packages" \
  | tee "$work/out"
grep -q "continuing with pages of 50" "$work/out"
grep -q "3000 added, 0 updated, 0 deleted" "$work/out"
[[ $(sqlite3 "$capped" "SELECT count(*) FROM packages") == 3000 ]] || { echo "records are missing!" >&2; exit 1; }

step "6. A page that stays malformed: the run fails, naming the page; the catalogue is untouched"
stop_server
start_server --latency-ms 5 --fault-page 7:malformed
sync_refused 1 "page 8 failed after 3 attempts: malformed JSON" \
  --url "$base/page/packages" --style page --retries 3

step "7. Ctrl-C in the middle of a slow sync: a clean stop, nothing committed"
stop_server
start_server --latency-ms 200 --source generate 3000 --seed 99
# Started directly (not through timeout or a function) so that the signal reaches it.
"$bin/catalog_sync" --db "$db" --url "$base/offset/packages" --concurrency 2 >"$work/out" 2>&1 &
sync_pid=$!
sleep 1.5
kill -INT "$sync_pid"
status=0
wait "$sync_pid" || status=$?
cat "$work/out"
[[ $status == 130 ]] || { echo "expected exit status 130, got $status" >&2; exit 1; }
[[ $(fingerprint) == "$good" ]] || { echo "the catalogue changed!" >&2; exit 1; }
echo "catalogue still: $(fingerprint)"
stop_server

step "8. The synced catalogue, searched with the sqlite_search CLI"
echo "\$ sqlite_search --db catalog.db --limit 3 'network library'"
timeout 10 "$search" --db "$db" --limit 3 network library

echo
echo "run_demo: OK"
