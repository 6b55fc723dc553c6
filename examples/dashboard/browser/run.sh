#!/usr/bin/env bash
# run.sh DASHBOARD_EXE WORK_DIR [test|bench] - the dashboard's page in Debian's headless Chromium.
#
# Installs playwright-core from browser/package-lock.json into WORK_DIR (npm ci: the npm cache
# first; no browser is downloaded, the system's /usr/bin/chromium is driven), starts
# catalog_dashboard on its demo sources with a fresh catalogue, and runs dashboard.test.mjs:
#   test   (ctest): search, a sync to 100 % with its counts, a sync cancelled mid-way that leaves
#          the catalogue unchanged, a cross-origin POST refused; a screenshot in WORK_DIR; last,
#          SIGTERM (SERVER_PID) right after a sync began, and what the page then says.
#   bench: progress-event latency (server -> page) and search latency idle vs during a sync.
# Finally stops the server with SIGTERM and checks that it exits cleanly.
set -euo pipefail
exe=${1:?usage: run.sh DASHBOARD_EXE WORK_DIR [test|bench]}
work=${2:?usage: run.sh DASHBOARD_EXE WORK_DIR [test|bench]}
mode=${3:-test}
here=$(cd "$(dirname "$0")" && pwd)
chromium=${CHROMIUM:-/usr/bin/chromium}
[[ -x $chromium ]] || { echo "run.sh: $chromium is missing: scripts/install-deps.sh installs Debian's chromium" >&2; exit 1; }
command -v npm >/dev/null || { echo "run.sh: npm is missing (Debian: nodejs, npm)" >&2; exit 1; }

mkdir -p "$work"
cp "$here/package.json" "$here/package-lock.json" "$here/dashboard.test.mjs" "$work/"
cd "$work"
# playwright-core downloads nothing by itself; the variable makes sure of it.
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefer-offline --no-audit --no-fund --loglevel=error

if [[ $mode == bench ]]; then
  args=(--demo-records 50000 --demo-latency-ms 20 --demo-faults 0 --concurrency 8)
else
  # Slow enough (30 pages, 2 in flight, ~150 ms a page) to cancel a sync mid-way; some 429s
  # and 5xx so that retries show.
  args=(--demo-records 3000 --demo-latency-ms 150 --demo-faults 0.03 --concurrency 2)
fi
rm -f catalog.db catalog.db-wal catalog.db-shm
"$exe" --port 0 --db catalog.db --retry-base-ms 50 "${args[@]}" >server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
port=
for _ in $(seq 200); do
  port=$(sed -n 's/^port \([0-9]*\)$/\1/p' server.log)
  [[ -n $port ]] && break
  kill -0 $server 2>/dev/null || { cat server.log >&2; exit 1; }
  sleep 0.05
done
[[ -n $port ]] || { echo "run.sh: the dashboard did not start" >&2; cat server.log >&2; exit 1; }
head -1 server.log

status=0
CHROMIUM=$chromium SERVER_PID=$server node dashboard.test.mjs "http://127.0.0.1:$port" "$work" "$mode" || status=$?

# The test's last step sends SIGTERM itself (it waits until the page shows the outcome, which
# comes after the server logged the signal); a second one during the exit would kill the
# process with 143 (the signal handler is gone by then), so it is sent only when none was.
grep -q '^catalog_dashboard: signal' server.log || kill -TERM $server 2>/dev/null || true
server_status=0
wait $server || server_status=$?
trap - EXIT
tail -1 server.log
[[ $server_status == 0 ]] || { echo "run.sh: the dashboard exited with $server_status after SIGTERM" >&2; cat server.log >&2; exit 1; }
exit $status
