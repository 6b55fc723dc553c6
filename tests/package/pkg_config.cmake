# cmake -DPKG_CONFIG=... -DPC_PATH=DIR -DMODULE=smartasync[-boost] -DCXX=... "-DCXX_FLAGS=..."
#       "-DDEPS_CFLAGS=..." -DSOURCE=consumer.cpp -DOUTPUT=FILE -DEXPECTED_VERSION=X.Y.Z -P pkg_config.cmake
# A consumer that knows nothing of CMake: compiled and linked with `pkg-config --cflags --libs`
# and nothing else, then run. (DEPS_CFLAGS is empty when Asio, Boost and fmt are the system's;
# a matrix row passes the include directories of the ones it unpacked elsewhere.)
cmake_minimum_required(VERSION 3.23) # script mode: today's policies
set(ENV{PKG_CONFIG_PATH} "${PC_PATH}")
execute_process(COMMAND ${PKG_CONFIG} --print-errors --cflags --libs ${MODULE}
                OUTPUT_VARIABLE _flags ERROR_VARIABLE _errors RESULT_VARIABLE _rc
                OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "pkg-config --cflags --libs ${MODULE} (PKG_CONFIG_PATH=${PC_PATH}) failed:\n${_errors}")
endif()
message(STATUS "pkg-config --cflags --libs ${MODULE}: ${_flags}")
separate_arguments(_flags UNIX_COMMAND "${_flags}")
separate_arguments(_cxx_flags UNIX_COMMAND "${CXX_FLAGS}")
separate_arguments(_deps_flags UNIX_COMMAND "${DEPS_CFLAGS}")
set(_command ${CXX} -std=c++20 ${_cxx_flags} ${_deps_flags} -Wall -Wextra -Wpedantic -Werror
    "-DSMARTASYNC_EXPECTED_VERSION_STRING=\"${EXPECTED_VERSION}\"" ${SOURCE} -o ${OUTPUT} ${_flags})
list(JOIN _command " " _shown)
message(STATUS "${_shown}")
execute_process(COMMAND ${_command} RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "the pkg-config consumer did not build")
endif()
execute_process(COMMAND ${OUTPUT} RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "the pkg-config consumer failed: ${_rc}")
endif()
