// A downstream program: uses the documented API exactly as a user would, through either
// find_package(smartasync) or add_subdirectory(smartasync), with either Asio flavour
// (smartasync::smartasync or smartasync::smartasync-boost): smartasync::asio names the one in use.
#include <smartasync/smartasync.hpp>

#include SMARTASYNC_ASIO_HEADER(co_spawn.hpp)
#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(use_future.hpp)

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>

namespace net = smartasync::asio;

int main() {
  smartasync::blocking_pool pool{1, 8};
  auto twice = smartasync::smart_async(pool, [](int x) { return 2 * x; });
  net::io_context ioc;
  auto result = net::co_spawn(ioc, [&]() -> net::awaitable<int> {
    co_return co_await twice.async_call(20) + twice(1);
  }, net::use_future);
  ioc.run();
  const int value = result.get();

  // Errors arrive in the flavour's own types.
#if defined(SMARTASYNC_USE_BOOST_ASIO)
  static_assert(std::is_same_v<smartasync::error_code, boost::system::error_code>);
  const char* flavour = "Boost.Asio";
#else
  static_assert(std::is_same_v<smartasync::error_code, std::error_code>);
  const char* flavour = "standalone Asio";
#endif
  const smartasync::error_code timeout = smartasync::error::timeout;
  const bool errors_ok = timeout == smartasync::error::timeout &&
                         timeout.message() == "the operation timed out";

  // The header's version is the one the package says (find_package, pkg-config).
#if defined(SMARTASYNC_EXPECTED_VERSION_STRING)
  char header_version[32];
  std::snprintf(header_version, sizeof header_version, "%d.%d.%d", SMARTASYNC_VERSION_MAJOR,
                SMARTASYNC_VERSION_MINOR, SMARTASYNC_VERSION_PATCH);
  if (std::strcmp(header_version, SMARTASYNC_EXPECTED_VERSION_STRING) != 0) {
    std::fprintf(stderr, "the header says %s, the package %s\n", header_version,
                 SMARTASYNC_EXPECTED_VERSION_STRING);
    return EXIT_FAILURE;
  }
#endif

  std::printf("smartasync %d.%d.%d consumer on %s %d: %d\n", SMARTASYNC_VERSION_MAJOR,
              SMARTASYNC_VERSION_MINOR, SMARTASYNC_VERSION_PATCH, flavour,
              SMARTASYNC_ASIO_VERSION, value);
  return value == 42 && errors_ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
