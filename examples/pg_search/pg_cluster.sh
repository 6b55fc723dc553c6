#!/usr/bin/env bash
# pg_cluster.sh - a throwaway PostgreSQL cluster for the demo and the tests.
#
#   pg_cluster.sh create DIR   initdb in DIR/data, start it on a free loopback port with its own
#                              socket folder DIR/socket; prints the libpq connection string
#                              (also written to DIR/conninfo)
#   pg_cluster.sh stop DIR     stop the server (fast: running queries are terminated), keep the data
#   pg_cluster.sh start DIR    start it again on the same port
#   pg_cluster.sh destroy DIR  stop it if running and remove DIR
#
# Run as root, the cluster belongs to an unprivileged user (PG_CLUSTER_USER, default nobody):
# PostgreSQL refuses to run as root. Trust authentication, loopback only, fsync off: a cluster
# for one test run, never for data. Binaries: PG_BINDIR, else pg_config --bindir, else the
# newest /usr/lib/postgresql/*/bin, else PATH.
set -euo pipefail

usage() { echo "usage: pg_cluster.sh create|stop|start|destroy DIR" >&2; exit 2; }
(($# == 2)) || usage
action=$1 dir=$2
# The server and pg_ctl run from / (as_owner) and postgres from its data folder: every path
# they get must be absolute, whatever the caller's working directory.
if [[ $action != create ]]; then
  if [[ -d $dir ]]; then
    dir=$(cd "$dir" && pwd)
  elif [[ $action != destroy ]]; then
    echo "pg_cluster: $dir: no such folder (make one with: pg_cluster.sh create $dir)" >&2
    exit 1
  fi
fi

bindir=${PG_BINDIR:-}
if [[ -z $bindir ]] && command -v pg_config >/dev/null && [[ -x $(pg_config --bindir)/initdb ]]; then
  bindir=$(pg_config --bindir)
fi
if [[ -z $bindir ]]; then
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
fi
if [[ -z $bindir || ! -x $bindir/initdb ]]; then
  initdb_path=$(command -v initdb || true)
  [[ -n $initdb_path ]] || { echo "pg_cluster: initdb not found (Debian: apt-get install postgresql)" >&2; exit 1; }
  bindir=$(dirname "$initdb_path")
fi

owner=
if [[ $(id -u) -eq 0 ]]; then owner=${PG_CLUSTER_USER:-nobody}; fi
as_owner() {
  if [[ -n $owner ]]; then (cd / && runuser -u "$owner" -- "$@"); else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_server() {
  local port=$1
  as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 -s \
    -o "-p $port -k $dir/socket -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=60" \
    start
}

case $action in
create)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  mkdir -p "$dir/data" "$dir/socket"
  if [[ -n $owner ]]; then
    # The owner must reach DIR (a mktemp folder is root's, mode 700) and own what is inside.
    chmod 755 "$dir"
    chown "$owner" "$dir" "$dir/data" "$dir/socket"
  fi
  chmod 700 "$dir/data"
  as_owner test -w "$dir/data" ||
    { echo "pg_cluster: user $owner cannot reach $dir (each folder above it needs o+x); use a folder of its own, e.g. \$(mktemp -d)" >&2; exit 1; }
  as_owner "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; echo "pg_cluster: initdb failed" >&2; exit 1; }
  # The port is free when chosen, and may be taken before the server binds it: try again.
  for attempt in 1 2 3; do
    port=$(free_port)
    if start_server "$port"; then break; fi
    [[ $attempt == 3 ]] && { cat "$dir/server.log" >&2; echo "pg_cluster: the server did not start" >&2; exit 1; }
  done
  echo "$port" >"$dir/port"
  echo "host=127.0.0.1 port=$port dbname=postgres user=postgres" >"$dir/conninfo"
  cat "$dir/conninfo"
  ;;
stop)
  as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -s stop
  ;;
start)
  start_server "$(cat "$dir/port")"
  ;;
destroy)
  if [[ -f $dir/data/postmaster.pid ]]; then
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -s stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  ;;
*) usage ;;
esac
