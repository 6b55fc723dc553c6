#!/bin/sh
# doxygen's INPUT_FILTER (docs/Doxyfile): what doxygen 1.9.4 reads differently from a compiler or
# a Markdown viewer, adjusted line for line (line numbers stay right) on the way in; the files
# themselves are not changed.
case $1 in
  */config.hpp)
    # `namespace asio = ::asio;` inside namespace smartasync looks to doxygen like an alias of
    # itself ("possible recursive namespace alias" at every use): docs/api.md describes it.
    sed -e 's/^namespace asio = ::asio;$//' "$1" ;;
  *.md)
    # Links to files outside the reference (../README.md) become their text, and `::name` in
    # code spans, which doxygen takes for a request to link to a global name, loses its `::`.
    sed -E -e 's/\[([^]]*)\]\(\.\.\/[^)]*\)/\1/g' -e 's/`::/`/g' "$1" ;;
  *) cat "$1" ;;
esac
