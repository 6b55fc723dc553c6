// Waiting in a test for what another thread makes true soon, at no known moment.
#ifndef SMARTASYNC_TESTS_COMMON_EVENTUALLY_HPP
#define SMARTASYNC_TESTS_COMMON_EVENTUALLY_HPP

#include <chrono>
#include <thread>

namespace test_support {

/// Polls `ready` every millisecond until it holds: true then, false after 30 s. The bound
/// asserts no timing; it only turns "never" into a failure instead of a hung test.
template <typename Ready>
bool eventually(Ready ready) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!ready()) {
    if (std::chrono::steady_clock::now() > give_up)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

} // namespace test_support

#endif // SMARTASYNC_TESTS_COMMON_EVENTUALLY_HPP
