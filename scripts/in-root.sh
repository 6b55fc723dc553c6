#!/usr/bin/env bash
# Runs a command inside a root made by scripts/make-root.sh, with /proc, /dev and the given host
# folders bind-mounted at the same paths, in the caller's working directory (which must be one of
# them or below one). A clean environment: PATH, HOME=/root, LC_ALL=C.UTF-8, plus NAME=VALUE
# words before the command.
#
# Usage: scripts/in-root.sh ROOT DIR... -- [NAME=VALUE...] COMMAND [ARG...]
#
# Every mount is made in a private mount namespace (unshare): the host never sees them, and they
# go away with the command however it ends (error, Ctrl-C, kill -9), so no mount is ever left
# behind and deleting the root can never reach into a bind-mounted source tree. The root is held
# with a shared lock, so make-root.sh does not rebuild it meanwhile.
set -euo pipefail

usage() { echo "usage: $0 ROOT DIR... -- [NAME=VALUE...] COMMAND [ARG...]" >&2; exit 2; }
(($# >= 3)) || usage
root=$(realpath "$1")
shift
dirs=()
while (($#)) && [[ $1 != -- ]]; do
  [[ -d $1 ]] || { echo "in-root: $1 is not a directory" >&2; exit 2; }
  dirs+=("$(realpath "$1")")
  shift
done
[[ ${1:-} == -- ]] || usage
shift
(($#)) || usage
inside=
for d in "${dirs[@]}"; do [[ $PWD/ == "$d"/* ]] && inside=1; done
[[ -n $inside ]] || { echo "in-root: the working directory $PWD is not below any of: ${dirs[*]}" >&2; exit 2; }
[[ -f $root/.smartasync-root ]] || { echo "in-root: $root is not a finished root of make-root.sh" >&2; exit 1; }

exec {lock}>"$(dirname "$root")/.$(basename "$root").lock"
flock -s "$lock"

# shellcheck disable=SC2016 # expanded by the inner shell
exec unshare --mount --propagation private bash -euc '
  root=$1 cwd=$2 n=$3
  shift 3
  dirs=("${@:1:n}")
  shift "$n"
  mount -t proc proc "$root/proc"
  mount --bind /dev "$root/dev"
  for d in "${dirs[@]}"; do
    mkdir -p "$root$d"
    mount --bind "$d" "$root$d"
  done
  exec chroot "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
    HOME=/root LC_ALL=C.UTF-8 /bin/sh -c "cd \"\$0\" && exec /usr/bin/env \"\$@\"" "$cwd" "$@"
' _ "$root" "$PWD" "${#dirs[@]}" "${dirs[@]}" "$@"
