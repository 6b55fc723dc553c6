#!/usr/bin/env bash
# run_demo.sh BUILD_DIR - the catalogue dashboard end to end, headless, in about 15 seconds.
#
# Starts two local paginated APIs (catalog_server: the catalogue, and an edited copy that is
# slower), then catalog_dashboard configured with those two sources only. Without a browser:
# fetches the page, follows the event stream with curl -N while one sync runs to the end,
# shows the 409 for a second sync and the 403 for a cross-origin POST, searches, then sends
# SIGTERM in the middle of a second sync: cancelled, nothing committed, clean exit.
# Exits non-zero on the first failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: run_demo.sh BUILD_DIR}
dash=$build/examples/dashboard/catalog_dashboard
api=$build/examples/catalog_sync/catalog_server
# shellcheck source=../common/demo.sh
. "$here/../common/demo.sh"
demo_need "$build" "$dash" "$api" -- sqlite3 curl
wait_for() { # wait_for FILE PATTERN SECONDS
  for _ in $(seq $(($3 * 20))); do grep -q "$2" "$1" && return 0; sleep 0.05; done
  echo "run_demo: '$2' did not appear in $1 within $3 s:" >&2; cat "$1" >&2; exit 1
}
db=$work/catalog.db
records() { sqlite3 "$db" "SELECT count(*) FROM packages"; }

step "1. Two local paginated APIs: 3000 records (10-20 ms a page, 5% 429, 5% 5xx), and an edited copy (150 ms a page)"
demo_start api "$api" --port 0 --source generate 3000 --seed 7 --latency-ms 10 --jitter-ms 10 --fault-429 0.05 \
  --fault-5xx 0.05 --retry-after 1
packages=http://127.0.0.1:$port/offset/packages
demo_start edited "$api" --port 0 --source generate 3000 --seed 7 --edit --latency-ms 150
edited=http://127.0.0.1:$port/offset/packages

step "2. The dashboard, allowed to sync those two sources only"
demo_start dashboard "$dash" --port 0 --db "$db" --source "packages=$packages" --source "edited=$edited" \
  --concurrency 4 --retry-base-ms 50
dashboard_pid=$pid
curl -sf "$base/" | grep -o '<title>.*</title>'
echo "open $base/ in a browser to see the same thing"

step "3. curl -N on the event stream while POST /sync runs to the end"
curl -sN "$base/sync/events" >"$work/events" &
demo_pids+=($!)
wait_for "$work/events" '"type":"state"' 5
curl -sf -X POST "$base/sync?source=packages"; echo
echo "a second POST /sync now: $(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/sync")"
wait_for "$work/events" '"type":"completed"' 60
grep '^data:' "$work/events" | head -4
echo "..."
grep '"type":"retry"' "$work/events" | head -2 || true
echo "..."
grep '^data:' "$work/events" | tail -2
grep -q '"added":3000' "$work/events"
[[ $(records) == 3000 ]] || { echo "run_demo: expected 3000 records" >&2; exit 1; }
echo "pages: $(grep -c '"type":"page"' "$work/events"), retries: $(grep -c '"type":"retry"' "$work/events"), records: $(records)"

step "4. Safe by default: a cross-origin POST, a foreign Host, a GET that would change state"
echo "POST /sync with Origin: http://evil.example -> $(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Origin: http://evil.example' "$base/sync")"
echo "POST /sync with Host: evil.example         -> $(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Host: evil.example' "$base/sync")"
echo "POST /sync?source=http://elsewhere/        -> $(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/sync?source=http://elsewhere/")"
echo "GET /sync/cancel                           -> $(curl -s -o /dev/null -w '%{http_code}' "$base/sync/cancel")"
[[ $(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Origin: http://evil.example' "$base/sync") == 403 ]]

step "5. Search, as the page does while you type"
curl -sf "$base/search?q=network+library&limit=3"; echo

step "6. SIGTERM in the middle of a sync of the edited source: cancelled, nothing committed"
: >"$work/events2"
curl -sN "$base/sync/events" >"$work/events2" &
demo_pids+=($!)
wait_for "$work/events2" '"type":"state"' 5
curl -sf -X POST "$base/sync?source=edited"; echo
wait_for "$work/events2" '"type":"page"' 20
demo_stop "$dashboard_pid"
tail -1 "$work/dashboard.log"
grep '"type":"cancelling"\|"type":"failed"' "$work/events2"
grep -q '"cancelled":true' "$work/events2"
[[ $(records) == 3000 ]] || { echo "run_demo: the catalogue changed!" >&2; exit 1; }
echo "catalogue still: $(records) records"

echo
echo "run_demo: OK"
