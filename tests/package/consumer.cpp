// A downstream program: uses the documented API exactly as a user would, through either
// find_package(smartasync) or add_subdirectory(smartasync).
#include <smartasync/smartasync.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>

#include <cstdio>
#include <cstdlib>

int main() {
  smartasync::blocking_pool pool{1, 8};
  auto twice = smartasync::smart_async(pool, [](int x) { return 2 * x; });
  asio::io_context ioc;
  auto result = asio::co_spawn(ioc, [&]() -> asio::awaitable<int> {
    co_return co_await twice.async(20) + twice(1);
  }, asio::use_future);
  ioc.run();
  const int value = result.get();
  std::printf("smartasync %d.%d.%d consumer: %d\n", SMARTASYNC_VERSION_MAJOR,
              SMARTASYNC_VERSION_MINOR, SMARTASYNC_VERSION_PATCH, value);
  return value == 42 ? EXIT_SUCCESS : EXIT_FAILURE;
}
