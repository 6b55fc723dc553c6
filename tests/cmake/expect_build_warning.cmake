# Builds TARGET in BUILD_DIR from scratch (its OBJECTS removed first, so that a second run
# compiles again) and passes when the build succeeds and its output contains EXPECTED.
# cmake -DBUILD_DIR=... -DTARGET=... -DOBJECTS=... -DEXPECTED=... -P expect_build_warning.cmake
file(REMOVE ${OBJECTS})
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET}
                RESULT_VARIABLE _result OUTPUT_VARIABLE _output ERROR_VARIABLE _output)
if(NOT _result EQUAL 0)
  message(FATAL_ERROR "${TARGET} did not build:\n${_output}")
endif()
string(FIND "${_output}" "${EXPECTED}" _found)
if(_found EQUAL -1)
  message(FATAL_ERROR "${TARGET} built without the expected warning \"${EXPECTED}\":\n${_output}")
endif()
message(STATUS "${TARGET} built with the expected warning")
