#!/usr/bin/env bash
# Builds the Debian package and tests it as a user would meet it.
#  1. `dpkg-buildpackage -us -uc -b` on a copy of the source tree (git's files, so nothing from a
#     build folder) in build/package/: libsmartasync-dev_<version>_all.deb;
#  2. lintian on it: no error and no warning;
#  3. in a clean Debian bookworm root holding only the library's own dependencies
#     (scripts/make-root.sh bookworm, built once and cached; scripts/in-root.sh runs in it):
#     the source tree configures and installs with nothing more (the tests and examples skipped,
#     one line each); then the .deb is installed (dpkg checks its Depends) and an outside
#     consumer builds and runs with find_package, and another with pkg-config only; a Boost
#     user there (no Boost) is told to install libboost1.81-dev; then the package is purged,
#     leaving the root clean for the next run.
# Usage: scripts/package.sh [--no-root]   (--no-root: steps 1 and 2 only)
# Needs debhelper, lintian (scripts/install-deps.sh installs them) and, for the root, debootstrap.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
out=$PWD/build/package

version=$(dpkg-parsechangelog -S Version)
upstream=${version%-*}
header=$(sed -n 's|^#define SMARTASYNC_VERSION [0-9]* // \(.*\)$|\1|p' include/smartasync/version.hpp)
[[ $upstream == "$header" ]] ||
  { echo "package: debian/changelog says $version, include/smartasync/version.hpp $header" >&2; exit 1; }

# 1. The package, from a copy: dpkg-buildpackage writes its results next to the tree it builds.
rm -rf "$out"
src=$out/smartasync-$upstream
mkdir -p "$src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$src" 2>/dev/null ||
    git ls-files -z --cached --others --exclude-standard |
      while IFS= read -r -d '' f; do [[ -e $f ]] && cp --parents "$f" "$src"; done
else
  tar --exclude=./build -cf - . | tar -xf - -C "$src"
fi
echo "=== dpkg-buildpackage -us -uc -b ($((SECONDS - start)) s)"
(cd "$src" && dpkg-buildpackage -us -uc -b >"$out/dpkg-buildpackage.log" 2>&1) ||
  { tail -n 40 "$out/dpkg-buildpackage.log"; echo "package: dpkg-buildpackage failed (log: $out/dpkg-buildpackage.log)" >&2; exit 1; }
deb=$out/libsmartasync-dev_${version}_all.deb
[[ -f $deb ]] || { echo "package: $deb was not built" >&2; ls "$out" >&2; exit 1; }
echo "built $deb:"
dpkg-deb --field "$deb" Package Version Architecture Depends | sed 's/^/  /'
dpkg-deb --contents "$deb" | awk '{print "  " $6}' | grep -E '\.(hpp|cmake|pc)$|/doc/' | sed -n '1,200p' |
  awk '/\.hpp$/ {h++; next} {print} END {print "  (" h " headers)"}'

# 2. lintian: an error or a warning fails (the one overridden warning says why, in debian/).
echo "=== lintian ($((SECONDS - start)) s)"
lintian --allow-root --fail-on error,warning --display-level '>=warning' "$out"/smartasync_"${version}"_*.changes ||
  { echo "package: lintian reports errors or warnings (above)" >&2; exit 1; }

[[ ${1:-} == --no-root ]] && { echo "=== package built and checked in $((SECONDS - start)) s"; exit 0; }

# 3. A clean bookworm root.
echo "=== bookworm root ($((SECONDS - start)) s)"
root=$(scripts/make-root.sh bookworm)
in_root() { scripts/in-root.sh "$root" "$PWD" -- "$@"; }
work=$out/root
mkdir -p "$work"
# A previous run killed half-way may have left the package installed.
in_root dpkg --purge libsmartasync-dev >/dev/null 2>&1
trap 'in_root dpkg --purge libsmartasync-dev >/dev/null || true' EXIT

# 3a. Installing from source needs nothing but the library's dependencies.
echo "=== install from source with only the library's dependencies ($((SECONDS - start)) s)"
log=$(in_root cmake -S . -B "$work/source-build") || { echo "$log"; exit 1; }
grep -E "smartasync: .* skipped" <<<"$log" | sed 's/^/  /'
grep -q "smartasync: tests skipped" <<<"$log" && grep -q "smartasync: examples skipped" <<<"$log" ||
  { echo "$log"; echo "package: a configure without the tests' dependencies did not skip them" >&2; exit 1; }
in_root cmake --install "$work/source-build" --prefix "$work/source-prefix" >/dev/null

# 3b. The .deb (dpkg checks its Depends), and outside consumers of it: find_package, and
# pkg-config only. (The Boost flavour's are tested on the host, in scripts/test.sh's Boost rows.)
echo "=== install the .deb, build consumers ($((SECONDS - start)) s)"
in_root dpkg -i "$deb" >/dev/null
in_root cmake -S tests/package/find_package -B "$work/find_package" -DSMARTASYNC_EXPECTED_VERSION="$upstream" \
  >"$work/find_package.log" || { cat "$work/find_package.log"; exit 1; }
in_root cmake --build "$work/find_package" >>"$work/find_package.log" || { cat "$work/find_package.log"; exit 1; }
echo "  find_package: $(in_root "$work/find_package/consumer" 2>>"$work/find_package.log")"
in_root cmake -DPKG_CONFIG=pkg-config -DPC_PATH= -DMODULE=smartasync -DCXX=g++ -DEXPECTED_VERSION="$upstream" \
  -DSOURCE="$PWD/tests/package/consumer.cpp" -DOUTPUT="$work/pkg_config_consumer" \
  -P tests/package/pkg_config.cmake >"$work/pkg_config.log" 2>&1 || { cat "$work/pkg_config.log"; exit 1; }
echo "  pkg-config ($(sed -n 's/.*pkg-config --cflags --libs smartasync: //p' "$work/pkg_config.log")):" \
     "$(in_root "$work/pkg_config_consumer" 2>/dev/null)"

# 3c. A Boost user on this machine (no Boost) is told what to install.
if log=$(in_root cmake -S tests/package/component_missing -B "$work/component_missing" 2>&1); then
  echo "$log"; echo "package: find_package(smartasync COMPONENTS boost) succeeded without Boost" >&2; exit 1
fi
grep -q "libboost1.81-dev" <<<"$log" ||
  { echo "$log"; echo "package: find_package(... COMPONENTS boost) without Boost did not name libboost1.81-dev" >&2; exit 1; }
echo "  find_package(smartasync COMPONENTS boost) without Boost: fails, naming libboost1.81-dev"
echo "=== the Debian package passed in $((SECONDS - start)) s"
