#!/usr/bin/env bash
# Generates the API reference (HTML) from the public headers' doc comments with doxygen
# (docs/Doxyfile; Debian's doxygen, which scripts/install-deps.sh installs): docs/api.md is the
# front page, include/smartasync/*.hpp the reference (detail/ is left out). Every public name
# must be documented: a warning from doxygen fails the run (a phase of scripts/test.sh).
# Usage: scripts/docs.sh [OUTPUT_DIR]   (default build/docs; open OUTPUT_DIR/html/index.html)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/docs}
command -v doxygen >/dev/null || { echo "docs: doxygen is missing (Debian: doxygen)" >&2; exit 1; }
version=$(sed -n 's|^#define SMARTASYNC_VERSION [0-9]* // \(.*\)$|\1|p' include/smartasync/version.hpp)
# Only what this script writes is replaced (OUTPUT_DIR may hold other things).
rm -rf "$out/html" "$out/warnings.log"
mkdir -p "$out"
# The Doxyfile, then what depends on this run. WARN_AS_ERROR=FAIL_ON_WARNINGS: doxygen reports
# every warning, then exits non-zero.
if ! { cat docs/Doxyfile; echo "OUTPUT_DIRECTORY = $out"; echo "PROJECT_NUMBER = $version"; } |
     doxygen - 2>"$out/warnings.log"; then
  cat "$out/warnings.log" >&2
  echo "docs: doxygen reported $(grep -c ': \(warning\|error\):' "$out/warnings.log") problems (above);" \
       "document every public name, or fix the comment doxygen cannot read" >&2
  exit 1
fi
[[ ! -s $out/warnings.log ]] || { cat "$out/warnings.log" >&2; exit 1; }
echo "docs: the reference of smartasync $version is in $out/html/index.html"
