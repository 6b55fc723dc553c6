// config.hpp and an Asio newer than the newest smartasync was tested with: with
// SMARTASYNC_UNVERIFIED_ASIO defined it builds warning-free (this file is built with the tests'
// -Werror), and loop detection works. (Without the macro it builds with a warning:
// tests/compile_warning/newer_asio.cpp.) The version is faked the way a newer Asio would set
// it: its version header is read first, and config.hpp finds the macro already defined.
#define SMARTASYNC_UNVERIFIED_ASIO
#if defined(SMARTASYNC_USE_BOOST_ASIO)
#include <boost/asio/version.hpp>
#undef BOOST_ASIO_VERSION
#define BOOST_ASIO_VERSION 109900
#else
#include <asio/version.hpp>
#undef ASIO_VERSION
#define ASIO_VERSION 109900
#endif

// Test that the header is self-contained (after the version above).
#include <smartasync/config.hpp>

#include <smartasync/this_thread.hpp>

#include "common/asio_flavour.hpp"

#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(post.hpp)
#include "common/catch.hpp"

using smartasync::this_thread::is_running_event_loop;

TEST_CASE("an Asio newer than the tested range builds with SMARTASYNC_UNVERIFIED_ASIO, and loop "
          "detection works on it",
          "[config]") {
  CHECK(SMARTASYNC_ASIO_VERSION == 109900);
  asio::io_context ioc;
  int on_loop = 0;
  asio::post(ioc, [&] { on_loop += is_running_event_loop() ? 1 : 0; });
  CHECK(ioc.run() == 1);
  CHECK(on_loop == 1);
  CHECK_FALSE(is_running_event_loop());
}
