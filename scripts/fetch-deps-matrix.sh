#!/usr/bin/env bash
# Fetches the header-only dependencies of smartasync's Asio/Boost/fmt/Catch2 matrix from other
# Debian releases and unpacks them into a cache folder, WITHOUT installing anything system-wide:
# each Debian suite gets a private apt state (own sources list, lists and archive cache), then
# `apt-get download` + `dpkg -x`. The mirror is the one this machine's apt already uses (read from
# /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list); no host name is written anywhere.
#
# Usage: scripts/fetch-deps-matrix.sh [NAME...]     (default: every entry of the table below)
#   SMARTASYNC_DEPS_CACHE   where to unpack   (default: $HOME/.cache/smartasync-deps)
#   SMARTASYNC_DEBIAN_MIRROR  override the mirror read from the apt sources
# Idempotent: an entry already unpacked (stamp file present) is skipped; the suites' package lists
# are refreshed at most once a day. Prints each entry's include directory, and writes them to
# $SMARTASYNC_DEPS_CACHE/matrix.env (NAME_INCLUDE=...) for build scripts to source.
set -euo pipefail

cache=${SMARTASYNC_DEPS_CACHE:-$HOME/.cache/smartasync-deps}

# name            suite     binary packages (header-only use; see docs/asio-matrix-notes.md)
# Boost.Asio needs only libboost1.XX-dev (the whole /usr/include/boost tree; Boost.System is
# header-only). fmt 10/11: used header-only (fmt::fmt-header-only, SMARTASYNC_FMT_HEADER_ONLY);
# the shared libfmt10/11 are built for newer libstdc++ and never linked, but fmt's CMake config
# refuses to load when the library file it names is missing, so it is unpacked too. Catch2 v3's static libraries need
# gcc 14's libstdc++ and glibc 2.38: they do not link on bookworm, only in a trixie/sid root.
# Catch2 v2 is one header (plus CMake files): the libc++ row of the sid root uses it, because
# sid's libCatch2.a is built against libstdc++.
table=(
  "asio-1.18        bullseye  libasio-dev"
  "asio-1.30        trixie    libasio-dev"
  "asio-1.36        sid       libasio-dev"
  "boost-1.74       bullseye  libboost1.74-dev"
  "boost-1.81       bookworm  libboost1.81-dev"
  "boost-1.83       trixie    libboost1.83-dev"
  "boost-1.90       sid       libboost1.90-dev"
  "fmt-10           trixie    libfmt-dev libfmt10"
  "fmt-11           sid       libfmt-dev libfmt11"
  "catch2-3         trixie    libcatch2-dev"
  "catch2-2         bookworm  catch2"
)

# --- the mirror, from this machine's apt sources (shared with make-root.sh) ------------------------
# shellcheck source=debian-mirror.sh
source "$(dirname "$0")/debian-mirror.sh"

mirror=$(read_mirror || true)
if [[ -z $mirror ]]; then
  echo "fetch-deps-matrix: no Debian mirror found in /etc/apt/sources*; set SMARTASYNC_DEBIAN_MIRROR" >&2
  exit 1
fi
mirror=${mirror%/}

keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -r $keyring ]] || { echo "fetch-deps-matrix: $keyring missing (package debian-archive-keyring)" >&2; exit 1; }
command -v dpkg >/dev/null && command -v apt-get >/dev/null || { echo "needs apt-get and dpkg" >&2; exit 1; }
arch=$(dpkg --print-architecture)

# --- one private apt state per suite --------------------------------------------------------------
apt_for() { # suite -> runs apt-get with that suite's private state; remaining args passed on
  local suite=$1; shift
  local d=$cache/apt/$suite
  apt-get -q \
    -o Dir::Etc::SourceList="$d/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null \
    -o Dir::State="$d/state" -o Dir::State::Lists="$d/state/lists" -o Dir::State::status="$d/state/status" \
    -o Dir::Cache="$d/cache" -o Dir::Cache::archives="$d/cache/archives" \
    -o APT::Architecture="$arch" -o APT::Architectures="$arch" -o Acquire::Languages=none \
    -o Debug::NoLocking=true -o APT::Sandbox::User=root \
    "$@"
}

prepare_suite() { # suite: sources list + state dirs, update at most once a day
  local suite=$1 d=$cache/apt/$1
  mkdir -p "$d/state/lists/partial" "$d/cache/archives/partial" "$d/debs"
  touch "$d/state/status"
  echo "deb [signed-by=$keyring] $mirror $suite main" > "$d/sources.list"
  if [[ -z $(find "$d/state/lists" -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null | head -n1) ]]; then
    echo "--- apt-get update ($suite, private state in $d)"
    apt_for "$suite" update -qq >/dev/null
  fi
}

# --- fetch + unpack --------------------------------------------------------------------------------
env_file=$cache/matrix.env
mkdir -p "$cache"
declare -A prepared=()
want=("$@")
summary=()

for row in "${table[@]}"; do
  read -r name suite packages <<<"$row"
  read -r -a pkgs <<<"$packages"
  if ((${#want[@]})); then
    [[ " ${want[*]} " == *" $name "* ]] || continue
  fi
  dest=$cache/$name
  stamp=$dest/.unpacked
  # The stamp names every unpacked package: an entry whose package list grew is unpacked again.
  complete=$([[ -f $stamp ]] && echo 1 || echo 0)
  for p in "${pkgs[@]}"; do
    [[ $complete == 1 && " $(cat "$stamp") " == *" ${p}_"* ]] || complete=0
  done
  if [[ $complete == 1 ]]; then
    summary+=("$name: $(cat "$stamp")  ->  $dest/usr/include (cached)")
    continue
  fi
  [[ -n ${prepared[$suite]:-} ]] || { prepare_suite "$suite"; prepared[$suite]=1; }
  debs=$cache/apt/$suite/debs
  echo "--- $name: ${pkgs[*]} from $suite"
  (cd "$debs" && apt_for "$suite" download "${pkgs[@]}" >/dev/null)
  rm -rf "$dest.tmp"
  mkdir -p "$dest.tmp"
  versions=()
  for p in "${pkgs[@]}"; do
    # The newest downloaded .deb of that package (apt-get download names it pkg_version_arch.deb).
    deb=$(ls -t "$debs/${p}"_*.deb | head -n1)
    dpkg -x "$deb" "$dest.tmp"
    versions+=("$(basename "$deb" .deb)")
  done
  rm -rf "$dest"
  mv "$dest.tmp" "$dest"
  echo "${versions[*]}" > "$stamp"
  summary+=("$name: ${versions[*]}  ->  $dest/usr/include")
done

# matrix.env: one line per unpacked entry, e.g. asio_1_36_INCLUDE=/root/.cache/.../usr/include
: > "$env_file.tmp"
for d in "$cache"/*/; do
  [[ -f $d/.unpacked ]] || continue
  n=$(basename "$d")
  echo "$(echo "$n" | tr -c 'A-Za-z0-9\n' '_')_INCLUDE=${d%/}/usr/include" >> "$env_file.tmp"
done
mv "$env_file.tmp" "$env_file"

echo "=== smartasync dependency matrix in $cache (apt state in $cache/apt, not system-wide)"
printf '  %s\n' "${summary[@]}"
echo "=== include directories for build scripts: $env_file"
du -sh "$cache" 2>/dev/null | sed 's/^/  total on disk: /'
