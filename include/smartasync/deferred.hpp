// smartasync/deferred.hpp - Asio's deferred completion token, one spelling for every Asio.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DEFERRED_HPP
#define SMARTASYNC_DEFERRED_HPP

#include "smartasync/config.hpp"

// deferred left the experimental namespace in Asio 1.24-1.26 (Boost 1.81 has both spellings);
// 1.33 removed the experimental one.
#if SMARTASYNC_ASIO_VERSION >= 102600
#include SMARTASYNC_ASIO_HEADER(deferred.hpp)
#else
#include SMARTASYNC_ASIO_HEADER(experimental/deferred.hpp)
#endif

namespace SMARTASYNC_NAMESPACE {

/// The type of smartasync::deferred: `asio::deferred_t`, or `asio::experimental::deferred_t`
/// on an Asio that has only that one.
#if SMARTASYNC_ASIO_VERSION >= 102600
using deferred_t = asio::deferred_t;
#else
using deferred_t = asio::experimental::deferred_t;
#endif

/// Asio's deferred completion token, spelled the same on every supported Asio.
/**
 * Asio moved `deferred` out of `asio::experimental` (1.24-1.26) and removed the old spelling
 * (1.33), so neither `asio::deferred` nor `asio::experimental::deferred` compiles on the whole
 * range smartasync supports (standalone Asio 1.22 to 1.38, Boost 1.81 to 1.90). This one does.
 *
 * An operation given this token does not start: it returns a deferred operation, which starts
 * when it is given a completion token of its own. That is how an operation is handed to
 * with_timeout(), or built now and launched later:
 *
 * @code
 * auto op = smartasync::async_offload(pool, [] { return count_rows(); }, smartasync::deferred);
 * int n = co_await smartasync::with_timeout(std::move(op), 2s);
 * @endcode
 *
 * @par Awaiting one directly
 * From Asio 1.28 (Boost 1.83) a coroutine can `co_await` a smartasync deferred operation
 * directly. Asio 1.22 (Debian bookworm's) has no such support, and Asio 1.26 (Boost 1.81) has
 * it only for completions without a std::exception_ptr; there, launch it as an awaitable:
 * `co_await std::move(op)(asio::use_awaitable)`, which works on every version. The library's
 * own default token stays asio::use_awaitable for that reason (see docs/design.md, section 13).
 */
inline constexpr deferred_t deferred{};

} // namespace smartasync

#endif // SMARTASYNC_DEFERRED_HPP
