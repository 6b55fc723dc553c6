#!/usr/bin/env bash
# Installs what smartasync's builds, tests, examples and benchmarks need, from Debian packages.
# llvm brings llvm-symbolizer, without which sanitizer reports on a fresh machine show <null> frames.
# postgresql brings initdb and the server (in /usr/lib/postgresql/VERSION/bin): pg_search's demo
# and tests start throwaway clusters of their own, not the system's (whose service may not run).
# chromium, node and npm run examples/dashboard's page in a real browser (the asan and gcc presets of scripts/test.sh).
# Safe to run again: it only calls apt-get when something is missing.
# Usage: scripts/install-deps.sh [PACKAGE...]   (PACKAGE: also install these, e.g. what a
# benchmark alone needs: scripts/bench-peers.sh, scripts/bench-instructions.sh)
set -euo pipefail

packages=(
  cmake ninja-build g++ clang libclang-rt-14-dev llvm ccache pkg-config
  libasio-dev libfmt-dev catch2
  libsqlite3-dev sqlite3 libhttp-parser-dev nlohmann-json3-dev libcpp-httplib-dev
  libcurl4-openssl-dev curl python3 gnuplot-nox libcli11-dev zlib1g-dev
  python3-prometheus-client # the test that parses the metrics exposition with a real parser
  libpq-dev postgresql # examples/pg_search: libpq, and the server its demo and tests start
  chromium # examples/dashboard's browser test (the asan and gcc presets), driven by playwright-core from npm
  doxygen debhelper lintian # the API reference (scripts/docs.sh); the Debian package (scripts/package.sh)
  "$@"
)
# The browser test also needs node and npm. Debian's are packages `nodejs` and `npm`; a machine
# may have them from elsewhere (NodeSource's nodejs brings npm, and conflicts with Debian's), so
# they are asked for only when the commands are missing.
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo_cmd=""
  [[ $(id -u) -eq 0 ]] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
