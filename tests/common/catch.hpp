// Catch2 v2 (bookworm: one header, main from common/catch_main.cpp) or v3 (trixie, sid: a
// library with its own main), whichever tests/CMakeLists.txt found. It says which through
// SMARTASYNC_CATCH2_MAJOR, because both may be visible at once (a root with sid's v3 in
// /usr/include building against bookworm's v2 header, for libc++); without it, v3 if present.
#ifndef SMARTASYNC_TESTS_COMMON_CATCH_HPP
#define SMARTASYNC_TESTS_COMMON_CATCH_HPP

#if !defined(SMARTASYNC_CATCH2_MAJOR)
#if __has_include(<catch2/catch_all.hpp>)
#define SMARTASYNC_CATCH2_MAJOR 3
#else
#define SMARTASYNC_CATCH2_MAJOR 2
#endif
#endif

#if SMARTASYNC_CATCH2_MAJOR >= 3
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif

#include <string>

namespace test_support {

// A string matcher for "contains this substring": v2 calls it Contains, v3 ContainsSubstring
// (v3's Contains matches a range's element).
inline auto contains_substring(const std::string& s) {
#if SMARTASYNC_CATCH2_MAJOR >= 3
  return Catch::Matchers::ContainsSubstring(s);
#else
  return Catch::Matchers::Contains(s);
#endif
}

} // namespace test_support

#endif
