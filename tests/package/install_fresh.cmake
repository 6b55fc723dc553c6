# Installs the build tree BUILD_DIR into PREFIX, emptied first: files that an earlier layout
# left there would otherwise be found by the consumers instead of what this build installs.
file(REMOVE_RECURSE "${PREFIX}")
execute_process(COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${PREFIX}"
                RESULT_VARIABLE result)
if(result)
  message(FATAL_ERROR "cmake --install failed: ${result}")
endif()
