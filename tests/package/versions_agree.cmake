# cmake -DSOURCE_DIR=... -DPREFIX=... -DPKG_CONFIG=... -P versions_agree.cmake
# One version, said five times: include/smartasync/version.hpp (the source of truth), the
# installed CMake package, both pkg-config files, debian/changelog and CHANGELOG.md must agree.
cmake_minimum_required(VERSION 3.23) # script mode: today's policies
file(STRINGS ${SOURCE_DIR}/include/smartasync/version.hpp _line REGEX "^#define SMARTASYNC_VERSION [0-9]+")
string(REGEX MATCH "[0-9]+" _number "${_line}")
math(EXPR _major "${_number} / 100000")
math(EXPR _minor "${_number} / 100 % 1000")
math(EXPR _patch "${_number} % 100")
set(header "${_major}.${_minor}.${_patch}")
set(failures)
macro(expect what value)
  if(NOT "${value}" STREQUAL header)
    string(APPEND failures "\n  ${what}: '${value}'")
  else()
    message(STATUS "${what}: ${value}")
  endif()
endmacro()

# The comment next to the number must not lie either.
if(NOT _line MATCHES "// ${header}$")
  string(APPEND failures "\n  version.hpp's comment: '${_line}'")
endif()

file(GLOB_RECURSE _version_file ${PREFIX}/*/smartasyncConfigVersion.cmake)
if(NOT _version_file)
  message(FATAL_ERROR "no smartasyncConfigVersion.cmake under ${PREFIX}")
endif()
include(${_version_file})
expect("CMake package (${_version_file})" "${PACKAGE_VERSION}")

foreach(_pc IN ITEMS smartasync smartasync-boost)
  file(GLOB_RECURSE _pc_file ${PREFIX}/*/${_pc}.pc)
  get_filename_component(_pc_dir "${_pc_file}" DIRECTORY)
  set(ENV{PKG_CONFIG_PATH} "${_pc_dir}")
  execute_process(COMMAND ${PKG_CONFIG} --modversion ${_pc} OUTPUT_VARIABLE _pc_version
                  OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc)
  expect("pkg-config --modversion ${_pc}" "${_pc_version}")
endforeach()

# Debian: "libsmartasync (UPSTREAM-REVISION) ..." on the first line.
file(STRINGS ${SOURCE_DIR}/debian/changelog _first LIMIT_COUNT 1)
if(_first MATCHES "^[a-z0-9.+-]+ \\(([0-9][^)]*)-[^-)]+\\) ")
  expect("debian/changelog" "${CMAKE_MATCH_1}")
else()
  string(APPEND failures "\n  debian/changelog: cannot read the version of '${_first}'")
endif()

# CHANGELOG.md (Keep a Changelog): a "## [X.Y.Z] - YYYY-MM-DD" entry for this version.
file(STRINGS ${SOURCE_DIR}/CHANGELOG.md _entries REGEX "^## \\[[0-9]")
set(_changelog "none")
foreach(_entry IN LISTS _entries)
  if(_entry MATCHES "^## \\[([^]]+)\\] - [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]$")
    if(CMAKE_MATCH_1 STREQUAL header)
      set(_changelog "${CMAKE_MATCH_1}")
    endif()
  endif()
endforeach()
expect("CHANGELOG.md entry" "${_changelog}")

if(failures)
  message(FATAL_ERROR "version.hpp says ${header}, but:${failures}")
endif()
