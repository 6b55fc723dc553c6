// An Asio newer than the newest smartasync was tested with, and no SMARTASYNC_UNVERIFIED_ASIO:
// it builds, with a warning that says how to silence it.
// expected: Define SMARTASYNC_UNVERIFIED_ASIO to silence this warning
#if defined(SMARTASYNC_USE_BOOST_ASIO)
#include <boost/asio/version.hpp>
#undef BOOST_ASIO_VERSION
#define BOOST_ASIO_VERSION 109900
#else
#include <asio/version.hpp>
#undef ASIO_VERSION
#define ASIO_VERSION 109900
#endif

#include <smartasync/this_thread.hpp>

bool on_loop() { return smartasync::this_thread::is_running_event_loop(); }
