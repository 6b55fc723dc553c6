# cmake -DSOURCE_DIR=... -DWORK_DIR=... -DGENERATOR=... "-DOPTIONS=a;b" -P only_library_deps.cmake
# Installing needs only the library's own dependencies. On a machine where the tests' and the
# examples' are missing (hidden here with CMAKE_DISABLE_FIND_PACKAGE_<name>), a plain configure
# skips them, each with one line naming what it would need, and `cmake --install` (nothing to
# build: the library is headers) installs a usable package. Asked for explicitly, a part whose
# dependencies are missing stops the configure instead.
cmake_minimum_required(VERSION 3.23) # script mode: today's policies
set(_hide -DCMAKE_DISABLE_FIND_PACKAGE_Catch2=ON -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON)
file(REMOVE_RECURSE ${WORK_DIR})

execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build -G ${GENERATOR}
                        ${OPTIONS} ${_hide}
                OUTPUT_VARIABLE _out ERROR_VARIABLE _err RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "a default configure without the tests' and examples' dependencies failed:\n${_out}\n${_err}")
endif()
# (CMake may wrap a message's lines.)
string(REGEX REPLACE "[ \n]+" " " _flat "${_out}")
foreach(_expected IN ITEMS "smartasync: tests skipped: they need Catch2[ ,]"
                           "smartasync: examples skipped: they need [^;]*nlohmann_json 3")
  if(NOT _flat MATCHES "${_expected}")
    message(FATAL_ERROR "the configure did not say /${_expected}/:\n${_out}")
  endif()
endforeach()
string(REGEX MATCHALL "smartasync: [a-z]+ skipped: they need [^(]*" _lines "${_flat}")
list(JOIN _lines "\n  " _lines)
message(STATUS "a default configure says:\n  ${_lines}")

execute_process(COMMAND ${CMAKE_COMMAND} --install ${WORK_DIR}/build --prefix ${WORK_DIR}/prefix
                OUTPUT_VARIABLE _out ERROR_VARIABLE _err RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed:\n${_out}\n${_err}")
endif()
foreach(_file IN ITEMS include/smartasync/smartasync.hpp share/cmake/smartasync/smartasyncConfig.cmake
                       share/cmake/smartasync/smartasyncConfigVersion.cmake
                       share/pkgconfig/smartasync.pc share/pkgconfig/smartasync-boost.pc)
  if(NOT EXISTS ${WORK_DIR}/prefix/${_file})
    message(FATAL_ERROR "cmake --install did not install ${_file}")
  endif()
endforeach()

execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/explicit -G ${GENERATOR}
                        ${OPTIONS} ${_hide} -DSMARTASYNC_BUILD_TESTS=ON -DSMARTASYNC_BUILD_EXAMPLES=OFF
                OUTPUT_VARIABLE _out ERROR_VARIABLE _err RESULT_VARIABLE _rc)
string(REGEX REPLACE "[ \n]+" " " _flat "${_err}")
if(_rc EQUAL 0 OR NOT _flat MATCHES "SMARTASYNC_BUILD_TESTS=ON, but the tests need Catch2")
  message(FATAL_ERROR "-DSMARTASYNC_BUILD_TESTS=ON without Catch2 must stop the configure, saying why:\n${_out}\n${_err}")
endif()
file(REMOVE_RECURSE ${WORK_DIR})
