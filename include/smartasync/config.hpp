// smartasync/config.hpp - which Asio (standalone or Boost), and compiler and version checks.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_CONFIG_HPP
#define SMARTASYNC_CONFIG_HPP

#include "smartasync/version.hpp"

// SMARTASYNC_UNVERIFIED_ASIO: define it (before including smartasync, or on the command line)
// to accept without a warning an Asio newer than the newest smartasync was tested with
// (standalone Asio 1.38, Boost 1.90). Without it such an Asio builds with a compiler warning that
// says so; under -Werror that warning stops the build, as -Werror asks, so a strict build notices
// the untested combination and accepts it with one definition. Either way this_thread.hpp checks
// the one Asio internal smartasync depends on, and a change to it fails the build naming it.

// Two flavours from one source tree. By default smartasync uses standalone Asio (namespace
// ::asio, std::error_code). With SMARTASYNC_USE_BOOST_ASIO defined (the CMake target
// smartasync::smartasync-boost defines it) it uses Boost.Asio (namespace ::boost::asio,
// boost::system::error_code), so that completions carry the error type the rest of a Boost
// program expects. Inside the library and in user code, smartasync::asio, smartasync::error_code
// and smartasync::system_error name the flavour's namespace and types.
//
// Each flavour lives in its own inline namespace (smartasync::standalone_asio or
// smartasync::boost_asio): a program that links one library built on each flavour gets two
// distinct sets of symbols instead of an ODR violation. Users never name it.
#if defined(SMARTASYNC_USE_BOOST_ASIO)

// Older Boost.Asio enables co_await under clang only with libc++'s <experimental/coroutine>.
#if defined(__clang__) && defined(__cpp_impl_coroutine) && !defined(BOOST_ASIO_HAS_CO_AWAIT)
#define BOOST_ASIO_HAS_CO_AWAIT 1
#endif
#include <boost/asio/version.hpp>
#include <boost/asio/detail/config.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#define SMARTASYNC_ASIO_VERSION BOOST_ASIO_VERSION
/// Includes Asio header `name` of the flavour in use: `#include SMARTASYNC_ASIO_HEADER(post.hpp)`.
#define SMARTASYNC_ASIO_HEADER(name) <boost/asio/name>
/// The flavour's namespace, for specialising Asio templates at global scope.
#define SMARTASYNC_ASIO_NAMESPACE boost::asio
#define SMARTASYNC_NAMESPACE smartasync::inline boost_asio
#if !defined(BOOST_ASIO_HAS_CO_AWAIT) || !defined(BOOST_ASIO_HAS_STD_COROUTINE)
#error "smartasync needs Boost.Asio's C++20 coroutine support (BOOST_ASIO_HAS_CO_AWAIT)."
#endif
// The oldest Boost tested is bookworm's 1.81 (Boost.Asio 1.26); 1.78-1.80 are in no Debian
// release, so they are refused rather than guessed at.
#if BOOST_ASIO_VERSION < 102600
#error "smartasync needs Boost 1.81 or newer (Boost.Asio 1.26; tested: Boost 1.81, 1.83, 1.90); this Boost is older."
#elif BOOST_ASIO_VERSION > 103899 && !defined(SMARTASYNC_UNVERIFIED_ASIO)
// A newer Boost is let through with a warning (see SMARTASYNC_UNVERIFIED_ASIO below).
#pragma GCC warning "smartasync was tested with Boost 1.81 to 1.90 (Boost.Asio 1.26 to 1.38); this Boost is \
newer. The one Asio internal smartasync relies on is checked at compile time. Define \
SMARTASYNC_UNVERIFIED_ASIO to silence this warning."
#endif

namespace boost::asio {}
namespace SMARTASYNC_NAMESPACE {
namespace asio = ::boost::asio;
/// The error code type of the flavour's completions: boost::system::error_code.
using error_code = boost::system::error_code;
/// The exception smartasync throws for an error code: boost::system::system_error.
using system_error = boost::system::system_error;
} // namespace SMARTASYNC_NAMESPACE

#else // standalone Asio

// Asio 1.22 enables co_await under clang only when it finds libc++'s <experimental/coroutine>;
// clang 14 with libstdc++ has working C++20 coroutines but no such header. The CMake target
// smartasync::smartasync defines ASIO_HAS_CO_AWAIT=1 for clang; this covers users who include
// smartasync before Asio without our target.
#if defined(__clang__) && defined(__cpp_impl_coroutine) && !defined(ASIO_HAS_CO_AWAIT)
#define ASIO_HAS_CO_AWAIT 1
#endif
#include <asio/version.hpp>
#include <asio/detail/config.hpp>

#include <system_error>

#define SMARTASYNC_ASIO_VERSION ASIO_VERSION
/// Includes Asio header `name` of the flavour in use: `#include SMARTASYNC_ASIO_HEADER(post.hpp)`.
#define SMARTASYNC_ASIO_HEADER(name) <asio/name>
/// The flavour's namespace, for specialising Asio templates at global scope.
#define SMARTASYNC_ASIO_NAMESPACE asio
#define SMARTASYNC_NAMESPACE smartasync::inline standalone_asio
#if !defined(ASIO_HAS_CO_AWAIT) || !defined(ASIO_HAS_STD_COROUTINE)
#error "smartasync needs Asio's C++20 coroutine support. With clang and libstdc++, define \
ASIO_HAS_CO_AWAIT=1 before including Asio (linking smartasync::smartasync does this)."
#endif
// The oldest Asio with everything smartasync is built on (per-operation cancellation, the
// recycling allocator, channels, parallel_group) is 1.22. Loop detection reads Asio's per-thread
// call stack (asio::detail::call_stack<thread_context, thread_info_base>, see docs/design.md
// section 1), unchanged from 1.18 to 1.38: this_thread.hpp checks its shape at compile time and
// stops the build with a static_assert naming it if a newer Asio changed it. So a newer Asio is
// let through, with a warning (see SMARTASYNC_UNVERIFIED_ASIO below).
#if ASIO_VERSION < 102200
#error "smartasync needs standalone Asio 1.22 or newer (tested: 1.22, 1.30, 1.36); this Asio is older."
#elif ASIO_VERSION > 103899 && !defined(SMARTASYNC_UNVERIFIED_ASIO)
#pragma GCC warning "smartasync was tested with standalone Asio 1.22 to 1.38; this Asio is newer. \
The one Asio internal smartasync relies on is checked at compile time. Define \
SMARTASYNC_UNVERIFIED_ASIO to silence this warning."
#endif

namespace asio {}
namespace SMARTASYNC_NAMESPACE {
namespace asio = ::asio;
/// The error code type of the flavour's completions: std::error_code.
using error_code = std::error_code;
/// The exception smartasync throws for an error code: std::system_error.
using system_error = std::system_error;
} // namespace SMARTASYNC_NAMESPACE

#endif // flavour

#include <cstddef>

namespace SMARTASYNC_NAMESPACE::detail {
// Destructive interference size on the machines we target, for data that different threads
// write and must not share a cache line (std::hardware_destructive_interference_size is not
// reliable across gcc and clang versions).
inline constexpr std::size_t cache_line_size = 64;

// static_cast for a conversion that narrows on some targets and is the identity on others
// (std::uint64_t to std::size_t): written inline, it draws gcc's -Wuseless-cast where the two
// types coincide, in the code of users who build with that warning.
template <typename To, typename From>
constexpr To narrow(From value) noexcept {
  return static_cast<To>(value);
}
} // namespace smartasync::detail

#endif // SMARTASYNC_CONFIG_HPP
