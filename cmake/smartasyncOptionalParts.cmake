# Tests, examples and benchmarks are on by default in a top-level build, but a machine holding
# only the library's own dependencies (a compiler, CMake, Asio or Boost, fmt) must still be able
# to configure and install smartasync. So a part left at its default whose dependencies are
# missing is skipped with one line naming what it would need; a part asked for explicitly
# (-DSMARTASYNC_BUILD_EXAMPLES=ON, as the presets and scripts/test.sh do) is an error instead.
#
# smartasync_defaulted_parts(): call before the option()s, to note which were left at default.
# smartasync_check_part(PART ...): PART is TESTS, EXAMPLES or BENCHMARKS; the rest are what it
# needs, as "what it needs|Debian package" pairs for the missing ones, computed by the caller.

macro(smartasync_defaulted_parts)
  foreach(_part IN ITEMS TESTS EXAMPLES BENCHMARKS)
    # Decided on the first configure: later runs see the option in the cache either way.
    if(NOT DEFINED CACHE{SMARTASYNC_BUILD_${_part}})
      set(SMARTASYNC_BUILD_${_part}_DEFAULTED ${PROJECT_IS_TOP_LEVEL} CACHE INTERNAL
          "SMARTASYNC_BUILD_${_part} was left at its default on the first configure")
    endif()
  endforeach()
endmacro()

# Appends "LABEL" to _missing when find_package(PACKAGE ARGS... QUIET) finds nothing (a macro:
# _missing is the caller's).
macro(_smartasync_probe_package label package)
  find_package(${package} ${ARGN} QUIET)
  if(NOT ${package}_FOUND)
    list(APPEND _missing "${label}")
  endif()
endmacro()

# Probes what the examples need without defining anything they do not define themselves:
# the same find_package() calls, QUIET. Keep in step with examples/*/CMakeLists.txt.
function(smartasync_missing_for_examples out)
  set(_missing)
  if(NOT SMARTASYNC_ASIO_INCLUDE_DIR)
    list(APPEND _missing "standalone Asio|libasio-dev")
  endif()
  _smartasync_probe_package("SQLite3|libsqlite3-dev" SQLite3)
  _smartasync_probe_package("nlohmann_json 3|nlohmann-json3-dev" nlohmann_json 3)
  _smartasync_probe_package("CLI11|libcli11-dev" CLI11 CONFIG)
  _smartasync_probe_package("libcurl|libcurl4-openssl-dev" CURL)
  _smartasync_probe_package("zlib|zlib1g-dev" ZLIB)
  _smartasync_probe_package("libpq|libpq-dev" PostgreSQL)
  find_path(_smartasync_http_parser_h http_parser.h)
  if(NOT _smartasync_http_parser_h)
    list(APPEND _missing "http_parser|libhttp-parser-dev")
  endif()
  find_path(_smartasync_httplib_h httplib.h)
  if(NOT _smartasync_httplib_h)
    list(APPEND _missing "cpp-httplib|libcpp-httplib-dev")
  endif()
  if(SMARTASYNC_BUILD_TESTS)
    _smartasync_probe_package("Catch2 (the examples' tests)|catch2" Catch2)
  endif()
  set(${out} ${_missing} PARENT_SCOPE)
endfunction()

# Turns PART off for this configure (not in the cache: installing the missing packages and
# configuring again builds it) with one line, or stops if PART was asked for explicitly.
function(smartasync_check_part part)
  if(NOT SMARTASYNC_BUILD_${part} OR NOT ARGN)
    return()
  endif()
  set(_what)
  set(_packages)
  foreach(_pair IN LISTS ARGN)
    string(REPLACE "|" ";" _pair "${_pair}")
    list(GET _pair 0 _name)
    list(GET _pair 1 _package)
    list(APPEND _what "${_name}")
    list(APPEND _packages "${_package}")
  endforeach()
  list(JOIN _what ", " _what)
  list(JOIN _packages " " _packages)
  string(TOLOWER "${part}" _lower)
  if(SMARTASYNC_BUILD_${part}_DEFAULTED)
    message(STATUS "smartasync: ${_lower} skipped: they need ${_what} (Debian: ${_packages}); "
                   "-DSMARTASYNC_BUILD_${part}=OFF says so and silences this")
    set(SMARTASYNC_BUILD_${part} OFF PARENT_SCOPE)
  else()
    message(FATAL_ERROR "smartasync: SMARTASYNC_BUILD_${part}=ON, but the ${_lower} need ${_what} "
                        "(Debian: ${_packages})")
  endif()
endfunction()
