// Catch2 v2 only: v3 links Catch2::Catch2WithMain instead (see tests/CMakeLists.txt).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
