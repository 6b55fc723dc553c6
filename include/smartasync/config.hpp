// smartasync/config.hpp - compiler and Asio configuration checks.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_CONFIG_HPP
#define SMARTASYNC_CONFIG_HPP

#include "smartasync/version.hpp"

// Asio 1.22 enables co_await under clang only when it finds libc++'s <experimental/coroutine>;
// clang 14 with libstdc++ has working C++20 coroutines but no such header. The CMake target
// smartasync::smartasync defines ASIO_HAS_CO_AWAIT=1 for clang; this covers users who include
// smartasync before Asio without our target.
#if defined(__clang__) && defined(__cpp_impl_coroutine) && !defined(ASIO_HAS_CO_AWAIT)
#define ASIO_HAS_CO_AWAIT 1
#endif

#include <asio/version.hpp>
#include <asio/detail/config.hpp>

#if !defined(ASIO_HAS_CO_AWAIT) || !defined(ASIO_HAS_STD_COROUTINE)
#error "smartasync needs Asio's C++20 coroutine support. With clang and libstdc++, define \
ASIO_HAS_CO_AWAIT=1 before including Asio (linking smartasync::smartasync does this)."
#endif

// Loop detection reads asio::detail::thread_context (see docs/design.md section 1). It has kept
// its shape from Asio 1.18 to 1.30; outside that range we refuse to guess.
#if ASIO_VERSION < 101800 || ASIO_VERSION >= 103100
#error "smartasync's event-loop detection is verified for Asio 1.18 to 1.30 only."
#endif

#include <cstddef>

namespace smartasync::detail {
// Destructive interference size on the machines we target, for data that different threads
// write and must not share a cache line (std::hardware_destructive_interference_size is not
// reliable across gcc and clang versions).
inline constexpr std::size_t cache_line_size = 64;
} // namespace smartasync::detail

#endif // SMARTASYNC_CONFIG_HPP
