// Test that the header is self-contained.
#include <smartasync/detail/thread_name.hpp>

#include "common/thread_names.hpp"

#include "common/catch.hpp"

#include <cstring>
#include <string>
#include <thread>

using smartasync::detail::name_this_thread;

TEST_CASE("every name the library gives fits in the 15 characters Linux shows", "[thread_name]") {
  for (const char* name : {smartasync::detail::worker_thread_name,
                           smartasync::detail::grower_thread_name,
                           smartasync::detail::watcher_thread_name,
                           smartasync::detail::background_thread_name})
    CHECK(std::strlen(name) <= 15);
}

#if defined(__linux__)
TEST_CASE("name_this_thread names the calling thread only", "[thread_name]") {
  const std::string before = test_support::this_thread_name();
  std::string inside;
  std::thread([&] {
    name_this_thread(smartasync::detail::worker_thread_name);
    inside = test_support::this_thread_name();
  }).join();
  CHECK(inside == "sa.pool-worker");
  CHECK(test_support::this_thread_name() == before);
}

TEST_CASE("a name too long for the platform leaves the thread's name as it was", "[thread_name]") {
  std::string inside;
  std::thread([&] {
    name_this_thread("short");
    name_this_thread("a name of more than fifteen characters");
    inside = test_support::this_thread_name();
  }).join();
  CHECK(inside == "short");
}
#endif
