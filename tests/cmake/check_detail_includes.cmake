# Fails when a header under include/smartasync/detail/ includes a public concept header.
# Internals sit below the concepts: a concept header (blocking_pool.hpp, offload.hpp, ...)
# includes detail/ parts, never the other way round. A detail/ header may include other detail/
# headers and the vocabulary headers below, which declare types and hooks every layer shares
# and include no concept themselves.
# Usage: cmake -DINCLUDE_DIR=<repo>/include -P check_detail_includes.cmake
set(_vocabulary config.hpp version.hpp error.hpp source_location.hpp diagnostics.hpp this_thread.hpp)

file(GLOB _details ${INCLUDE_DIR}/smartasync/detail/*.hpp)
if(NOT _details)
  message(FATAL_ERROR "no headers under ${INCLUDE_DIR}/smartasync/detail")
endif()
set(_violations)
foreach(_header IN LISTS _details)
  file(STRINGS ${_header} _includes REGEX "^[ \t]*#[ \t]*include[ \t]*[\"<]smartasync/")
  foreach(_line IN LISTS _includes)
    string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*[\"<]smartasync/([^\">]+)[\">].*" "\\1" _target "${_line}")
    if(_target MATCHES "^detail/")
      continue()
    endif()
    list(FIND _vocabulary ${_target} _at)
    if(_at EQUAL -1)
      get_filename_component(_name ${_header} NAME)
      list(APPEND _violations "detail/${_name} includes smartasync/${_target}")
    endif()
  endforeach()
endforeach()

# The vocabulary must stay below detail/ too: it may include only itself and detail/format.hpp.
foreach(_word IN LISTS _vocabulary)
  file(STRINGS ${INCLUDE_DIR}/smartasync/${_word} _includes REGEX "^[ \t]*#[ \t]*include[ \t]*[\"<]smartasync/")
  foreach(_line IN LISTS _includes)
    string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*[\"<]smartasync/([^\">]+)[\">].*" "\\1" _target "${_line}")
    list(FIND _vocabulary ${_target} _at)
    if(_at EQUAL -1 AND NOT _target STREQUAL "detail/format.hpp")
      list(APPEND _violations "${_word} (vocabulary) includes smartasync/${_target}")
    endif()
  endforeach()
endforeach()

if(_violations)
  list(JOIN _violations "\n  " _text)
  message(FATAL_ERROR "upward includes (a detail/ part must not depend on a concept header):\n  ${_text}")
endif()
list(LENGTH _details _count)
message(STATUS "${_count} detail/ headers include no concept header")
