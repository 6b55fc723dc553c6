// fuzz/property.hpp - how the parser targets check a property: a violation aborts, naming it,
// so that libFuzzer keeps the input as a finding.
#ifndef SMARTASYNC_FUZZ_PROPERTY_HPP
#define SMARTASYNC_FUZZ_PROPERTY_HPP

#include <cstdio>
#include <cstdlib>

namespace fuzz {

[[noreturn]] inline void property_violated(const char* target, const char* property) {
  std::fprintf(stderr, "\n%s: property violated: %s\n", target, property);
  std::abort();
}

} // namespace fuzz

// FUZZ_TARGET_NAME is the target's name, defined before this header is included.
#define FUZZ_CHECK(cond, property)                                                                 \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      ::fuzz::property_violated(FUZZ_TARGET_NAME, property);                                       \
  } while (0)

#endif // SMARTASYNC_FUZZ_PROPERTY_HPP
