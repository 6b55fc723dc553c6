#!/usr/bin/env bash
# Prepares a Debian root (debootstrap --variant=minbase) holding the newest compilers and standard
# libraries of a Debian suite, for the matrix rows of scripts/test.sh that bookworm cannot build:
# sid (default): g++-16 (libstdc++ 16), clang-21 with libc++ 21, Asio 1.36, fmt 11, Catch2 v3.
# The mirror is the one this machine's apt already uses (scripts/debian-mirror.sh); nothing is
# installed on the machine itself except debootstrap.
#
# Usage: scripts/make-root.sh [sid|trixie|bookworm]     prints the root's path (only that) on stdout
#   SMARTASYNC_ROOTS  cache folder of the roots (default /var/cache/smartasync-roots)
# The root is stamped with its suite and package list: a second run is a no-op; a different package
# list rebuilds it. It is built in <root>.new and renamed only once complete, so an interrupted run
# leaves no half-built root behind (the next run starts over). Mounts (/proc for apt) live in a
# private mount namespace (unshare), so they vanish with the process, even if it is killed.
set -euo pipefail
cd "$(dirname "$0")/.."

suite=${1:-sid}
case $suite in
  # The newest gcc and clang in the suite's package index (sid: g++ is 16, clang is 21; 22 and 23
  # are experimental snapshots), and the libraries the tests need. libc++ comes with libc++abi.
  sid) packages=(g++-16 clang-21 libc++-21-dev libc++abi-21-dev
                 cmake ninja-build ccache libasio-dev libfmt-dev libcatch2-dev) ;;
  trixie) packages=(g++-14 clang-19 libc++-19-dev libc++abi-19-dev
                    cmake ninja-build ccache libasio-dev libfmt-dev libcatch2-dev) ;;
  # A user's bookworm machine with only what the library needs (standalone Asio, no Boost), for
  # scripts/package.sh: the Debian package installed into it must serve a find_package and a
  # pkg-config consumer, and the source tree must install with nothing more.
  bookworm) packages=(g++ make cmake pkg-config libasio-dev libfmt-dev) ;;
  *) echo "make-root: unknown suite '$suite' (sid, trixie or bookworm)" >&2; exit 2 ;;
esac

roots=${SMARTASYNC_ROOTS:-/var/cache/smartasync-roots}
root=$roots/$suite
stamp_name=.smartasync-root
want="suite=$suite variant=minbase packages=${packages[*]}"
mkdir -p "$roots"

# One builder at a time per root, and never while scripts/in-root.sh uses it (shared lock there).
exec {lock}>"$roots/.$suite.lock"
flock -x "$lock"

if [[ -f $root/$stamp_name && $(head -n1 "$root/$stamp_name") == "$want" ]]; then
  echo "make-root: $suite root is ready ($(sed -n 2p "$root/$stamp_name"))" >&2
  echo "$root"
  exit 0
fi

# Refuses to delete a directory with anything mounted below it (a bind-mounted source tree would
# be deleted with it). Our own mounts are private to their namespace and never show up here.
remove_tree() {
  local dir=$1
  [[ -e $dir ]] || return 0
  if awk -v p="$dir" '$5 == p || index($5, p "/") == 1 { found = 1 } END { exit !found }' \
       /proc/self/mountinfo; then
    echo "make-root: something is mounted below $dir; unmount it first:" >&2
    awk -v p="$dir" '$5 == p || index($5, p "/") == 1 { print "  " $5 }' /proc/self/mountinfo >&2
    exit 1
  fi
  rm -rf --one-file-system "$dir"
}

if ! command -v debootstrap >/dev/null; then
  echo "make-root: installing debootstrap" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi
# shellcheck source=debian-mirror.sh
source scripts/debian-mirror.sh
mirror=$(read_mirror) || { echo "make-root: no Debian mirror in /etc/apt/sources*; set SMARTASYNC_DEBIAN_MIRROR" >&2; exit 1; }

new=$root.new
log=$roots/$suite.log
echo "make-root: building the $suite root in $new (log: $log)" >&2
[[ -e $root ]] && echo "make-root: the existing root's stamp differs or is missing; rebuilding" >&2
remove_tree "$new"
start=$SECONDS

# 1. The base system.
if ! nice -n 10 debootstrap --variant=minbase "$suite" "$new" "$mirror" >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  echo "make-root: debootstrap $suite failed (log: $log)" >&2
  exit 1
fi
t_base=$((SECONDS - start))

# The root's apt follows this machine's on the one setting a mirror may need: a snapshot mirror's
# Release files are past their Valid-Until, and the machine's apt is told not to check it.
eval "$(apt-config shell host_valid_until Acquire::Check-Valid-Until)"
if [[ ${host_valid_until:-} == false ]]; then
  echo 'Acquire::Check-Valid-Until "false"; // as on the machine that built this root (make-root.sh)' \
    >"$new/etc/apt/apt.conf.d/80smartasync-valid-until"
fi

# 2. The toolchain, in the root, with /proc mounted in a private mount namespace.
# shellcheck disable=SC2016 # expanded by the inner shell
if ! unshare --mount --propagation private env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C \
     DEBIAN_FRONTEND=noninteractive bash -euc '
       new=$1; shift
       mount -t proc proc "$new/proc"
       chroot "$new" apt-get update -qq
       nice -n 10 chroot "$new" apt-get install -y -q --no-install-recommends "$@"
       chroot "$new" apt-get clean
       umount "$new/proc"' _ "$new" "${packages[@]}" >>"$log" 2>&1; then
  tail -n 20 "$log" >&2
  echo "make-root: installing ${packages[*]} in the $suite root failed (log: $log)" >&2
  exit 1
fi
t_total=$((SECONDS - start))

versions=$(chroot "$new" dpkg-query -W -f '${Package}=${Version} ' "${packages[@]}")
{
  echo "$want"
  echo "built $(date -u +%FT%TZ) in ${t_total} s (debootstrap ${t_base} s); ${versions% }"
} >"$new/$stamp_name"
remove_tree "$root"
mv "$new" "$root"
echo "make-root: $suite root ready in ${t_total} s (debootstrap ${t_base} s), $(du -sh --one-file-system "$root" | cut -f1)" >&2
echo "$root"
