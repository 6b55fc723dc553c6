# Sourced by fetch-deps-matrix.sh and make-root.sh: prints the Debian mirror this machine's apt
# already uses (the first non-security `deb` URI of /etc/apt/sources.list.d/*.sources, then of the
# one-line /etc/apt/sources.list format), or SMARTASYNC_DEBIAN_MIRROR when set. No host name is
# written anywhere in the project.
read_mirror() {
  local f uri
  if [[ -n ${SMARTASYNC_DEBIAN_MIRROR:-} ]]; then echo "${SMARTASYNC_DEBIAN_MIRROR%/}"; return; fi
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -r $f ]] || continue
    # First stanza of Types: deb whose suites are not the security ones.
    uri=$(awk '
      BEGIN { RS = ""; FS = "\n" }
      {
        types = ""; uris = ""; suites = ""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^[ \t]*#/) continue
          if ($i ~ /^Types:/)  types  = $i
          if ($i ~ /^URIs:/)   { uris = $i; sub(/^URIs:[ \t]*/, "", uris); split(uris, u, /[ \t]+/); uris = u[1] }
          if ($i ~ /^Suites:/) suites = $i
        }
        if (types ~ /(^|[ \t])deb([ \t]|$)/ && uris != "" && suites !~ /security/) { print uris; exit }
      }' "$f")
    [[ -n $uri ]] && { echo "${uri%/}"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -r $f ]] || continue
    # deb [options] URI suite components...
    uri=$(sed -E -n '/^[ \t]*deb[ \t]/{ /security/d; s/^[ \t]*deb[ \t]+(\[[^]]*\][ \t]+)?([^ \t]+).*/\2/p; }' "$f" | head -n1)
    [[ -n $uri ]] && { echo "${uri%/}"; return; }
  done
  return 1
}
