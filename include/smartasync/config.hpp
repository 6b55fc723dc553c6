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

// The oldest Asio with everything smartasync is built on (per-operation cancellation, the
// recycling allocator, channels, parallel_group) is 1.22. Loop detection reads Asio's per-thread
// call stack (asio::detail::call_stack<thread_context, thread_info_base>, see docs/design.md
// section 1), unchanged from 1.18 to 1.38; tests/this_thread.test.cpp fails if that stops
// holding (it runs against 1.22, 1.30 and 1.36; 1.38's call_stack was read, as Boost 1.90's).
// A newer Asio is refused until it has been checked, unless the user opts in.
#if ASIO_VERSION < 102200
#error "smartasync needs standalone Asio 1.22 or newer (tested: 1.22, 1.30, 1.36); this Asio is older."
#elif ASIO_VERSION > 103899 && !defined(SMARTASYNC_UNVERIFIED_ASIO)
#error "smartasync accepts standalone Asio 1.22 to 1.38 (tested: 1.22, 1.30, 1.36); this one is \
newer. Define SMARTASYNC_UNVERIFIED_ASIO to try it (and run smartasync's tests/this_thread.test.cpp)."
#endif

#include <cstddef>

namespace smartasync::detail {
// Destructive interference size on the machines we target, for data that different threads
// write and must not share a cache line (std::hardware_destructive_interference_size is not
// reliable across gcc and clang versions).
inline constexpr std::size_t cache_line_size = 64;
} // namespace smartasync::detail

#endif // SMARTASYNC_CONFIG_HPP
