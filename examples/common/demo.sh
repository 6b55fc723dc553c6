# demo.sh - what every example's run_demo.sh shares; sourced, never run: `. "$here/../common/demo.sh"`.
#
# Gives a demo: demo_need (its programs and commands, or a clear error), $work (a temporary
# folder), step (a heading), demo_start (a server in the background, its port read from its
# log), demo_stop (SIGTERM, then its exit status checked), expect (an HTTP status), and a
# cleanup on any exit, failures included, that kills what demo_start started, runs the demo's
# own demo_on_exit if it defines one, and removes $work.
# Distributed under the Boost Software License, Version 1.0.

# demo_need BUILD_DIR PROGRAM... [-- COMMAND...]: each PROGRAM (a path) must be built, each
# COMMAND on PATH.
demo_need() {
  local build=$1 missing=() p
  shift
  while (($#)) && [[ $1 != -- ]]; do
    [[ -x $1 ]] || missing+=("$(basename "$1")")
    shift
  done
  if ((${#missing[@]})); then
    echo "run_demo: not built: ${missing[*]} (cmake --build $build --target ${missing[*]})" >&2
    exit 1
  fi
  (($#)) && shift
  for p in "$@"; do
    command -v "$p" >/dev/null || { echo "run_demo: $p is needed (scripts/install-deps.sh)" >&2; exit 1; }
  done
}

step() { printf '\n== %s\n' "$*"; }

work=$(mktemp -d)
demo_pids=()      # killed (KILL) by the cleanup: servers and other background commands
demo_watchdogs=() # stopped (TERM) by the cleanup
_demo_cleanup() {
  local pid
  for pid in "${demo_watchdogs[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${demo_pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  done
  if declare -F demo_on_exit >/dev/null; then demo_on_exit || true; fi
  rm -rf "$work"
}
trap _demo_cleanup EXIT

# demo_start NAME COMMAND...: starts COMMAND in the background (output in $work/NAME.log), waits
# for the port it prints ("listening on http://HOST:PORT/" or "port PORT"), and sets $port, $pid
# and $base. Not under timeout(1), so that demo_stop sees the program's own exit status; the
# cleanup kills it on any exit, and a watchdog after $DEMO_SERVER_SECONDS (default 300).
demo_start() {
  local log=$work/$1.log
  shift
  "$@" >"$log" 2>&1 &
  pid=$!
  demo_pids+=("$pid")
  # The watchdog's sleep ends with it (TERM from the cleanup), so nothing outlives the demo.
  (exec >/dev/null 2>&1; trap 'kill "$s" 2>/dev/null; exit 0' TERM
   sleep "${DEMO_SERVER_SECONDS:-300}" & s=$!; wait "$s"; kill -KILL "$pid") &
  demo_watchdogs+=($!)
  port=
  for _ in $(seq 200); do
    port=$(sed -n -e 's|.*listening on http://[^:]*:\([0-9]*\)/.*|\1|p' -e 's/^port \([0-9]*\)$/\1/p' "$log" | head -1)
    [[ -n $port ]] && break
    kill -0 "$pid" 2>/dev/null || { echo "run_demo: $1 exited:" >&2; cat "$log" >&2; exit 1; }
    sleep 0.05
  done
  [[ -n $port ]] || { echo "run_demo: $1 did not start" >&2; cat "$log" >&2; exit 1; }
  head -1 "$log"
  base=http://127.0.0.1:$port
}

# demo_stop PID [EXPECTED_STATUS]: SIGTERM, wait, and fail unless it exits with EXPECTED_STATUS
# (default 0). A stopped server's status is its own: the graceful shutdown is part of the demo.
demo_stop() {
  local status=0
  kill -TERM "$1"
  wait "$1" || status=$?
  [[ $status == "${2:-0}" ]] || { echo "run_demo: process $1 exited with $status, expected ${2:-0}" >&2; exit 1; }
}

# demo_import SOURCE IMPORT_COMMAND...: fills a catalogue with IMPORT_COMMAND --from-apt (this
# machine's package list) when SOURCE is apt and apt-cache exists, else --generate 20000, and
# sets $queries to the demo's $apt_queries or $generated_queries accordingly.
demo_import() {
  local source=$1
  shift
  if [[ $source == apt ]] && command -v apt-cache >/dev/null && timeout 120 "$@" --from-apt; then
    queries=("${apt_queries[@]}")
    return
  fi
  echo "(apt-cache unavailable or not wanted: using the generated catalogue)"
  timeout 120 "$@" --generate 20000
  queries=("${generated_queries[@]}")
}

# demo_search_each NAME COMMAND...: runs COMMAND --limit 3 -- QUERY for each of $queries,
# showing the command line as NAME's.
demo_search_each() {
  local name=$1 q
  shift
  for q in "${queries[@]}"; do
    echo "\$ $name --limit 3 '$q'"
    timeout 20 "$@" --limit 3 -- "$q"
  done
}

# expect STATUS URL [CURL_ARGS...]: one request; fails unless the answer has that status.
expect() {
  local want=$1 url=$2 got
  shift 2
  got=$(curl -sS --max-time 20 -o "$work/body" -w '%{http_code}' "$@" "$url")
  printf '%s -> %s %s\n' "$url" "$got" "$(head -c 300 "$work/body")"
  [[ $got == "$want" ]] || { echo "run_demo: expected HTTP $want" >&2; exit 1; }
}
