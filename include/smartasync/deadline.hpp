// smartasync/deadline.hpp - deadlines that the blocking pool understands.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DEADLINE_HPP
#define SMARTASYNC_DEADLINE_HPP

#include "smartasync/config.hpp"
#include "smartasync/detail/call_deadline.hpp"

#include SMARTASYNC_ASIO_HEADER(async_result.hpp)

#include <algorithm>
#include <chrono>
#include <optional>
#include <type_traits>
#include <utility>

namespace SMARTASYNC_NAMESPACE {


/// A completion token adapter: the operation initiated with it carries `deadline`.
/**
 * Returned by with_deadline(). Pass it where a completion token goes; it forwards to `token`.
 */
template <typename CompletionToken>
struct deadline_token {
  /// The completion token the operation completes through.
  CompletionToken token;
  /// The deadline, when given as a time point.
  std::chrono::steady_clock::time_point deadline;
  /// The deadline, when given as a budget: measured from the initiation (for
  /// asio::use_awaitable, the co_await; for a deferred operation, when it is finally launched).
  std::optional<std::chrono::steady_clock::duration> budget{};
};

/// Gives the operation initiated with the returned token a deadline the pool understands.
/**
 * smartasync's pool operations (async_offload, a smart_async wrapper's async form, a
 * serial_lane) initiated with it carry `deadline`:
 * - still queued when the deadline has passed, the call never starts: it completes with
 *   smartasync::error::deadline_expired, checked when a worker reaches it. with_timeout()
 *   sets the same deadline and also completes the caller at the deadline while the call is
 *   still queued.
 * - running, the callable can read the time it has left with this_call::time_left(); the
 *   deadline does not interrupt it (with_timeout does, through its stop_token).
 * - pool_stats counts `expired` (never started) apart from `timed_out` (cancelled while
 *   running, after its deadline).
 * Any other operation initiated with the token ignores the deadline; the token otherwise
 * behaves as `token`.
 *
 * @par Example
 * @code
 * auto rows = co_await smartasync::async_offload(
 *     pool, [&] { return db.search(q); },
 *     smartasync::with_deadline(std::chrono::steady_clock::now() + 200ms, asio::use_awaitable));
 * @endcode
 */
template <typename CompletionToken>
deadline_token<std::decay_t<CompletionToken>>
with_deadline(std::chrono::steady_clock::time_point deadline, CompletionToken&& token) {
  return {std::forward<CompletionToken>(token), deadline};
}

/// As with_deadline(now + `budget`, token), where "now" is when the operation is initiated.
/**
 * The budget starts with the initiation, not with the token: an operation made with
 * `with_deadline(200ms, asio::use_awaitable)` and awaited later has 200 ms from the co_await,
 * and a deferred operation made with `with_deadline(200ms, deferred)` has 200 ms from the
 * moment it is launched.
 */
template <typename Rep, typename Period, typename CompletionToken>
deadline_token<std::decay_t<CompletionToken>> with_deadline(std::chrono::duration<Rep, Period> budget,
                                                            CompletionToken&& token) {
  return {std::forward<CompletionToken>(token), detail::no_deadline,
          std::chrono::duration_cast<std::chrono::steady_clock::duration>(budget)};
}

/// What a blocking call can ask about itself while it runs.
namespace this_call {

/// The deadline of the call running on this thread (offloaded with with_deadline() or under
/// with_timeout()), or std::chrono::steady_clock::time_point::max() when it has none.
inline std::chrono::steady_clock::time_point deadline() noexcept {
  return detail::call_deadline_;
}

/// The time left until deadline(): negative once it has passed, duration::max() without one.
inline std::chrono::steady_clock::duration time_left() noexcept {
  const auto deadline = detail::call_deadline_;
  if (deadline == detail::no_deadline)
    return std::chrono::steady_clock::duration::max();
  return deadline - std::chrono::steady_clock::now();
}

} // namespace this_call

} // namespace smartasync

// The token adapter: the inner token's async_result, with the deadline set for the synchronous
// extent of the real initiation (which use_awaitable and deferred run later than here).
template <typename CompletionToken, typename... Signatures>
struct SMARTASYNC_ASIO_NAMESPACE::async_result<smartasync::deadline_token<CompletionToken>,
                                               Signatures...> {
  template <typename Initiation>
  struct init_wrapper {
    Initiation initiation;
    std::chrono::steady_clock::time_point deadline;
    std::optional<std::chrono::steady_clock::duration> budget;

    template <typename Handler, typename... Args>
    void operator()(Handler&& handler, Args&&... args) && {
      // A budget is measured from here, the real initiation, however long ago the token was made.
      smartasync::detail::initiation_deadline_scope scope(
          budget ? smartasync::detail::deadline_after(*budget) : deadline);
      std::move(initiation)(std::forward<Handler>(handler), std::forward<Args>(args)...);
    }
  };

  template <typename Initiation, typename RawToken, typename... Args>
  static auto initiate(Initiation&& initiation, RawToken&& token, Args&&... args) {
    return SMARTASYNC_ASIO_NAMESPACE::async_initiate<CompletionToken, Signatures...>(
        init_wrapper<std::decay_t<Initiation>>{std::forward<Initiation>(initiation),
                                               token.deadline, token.budget},
        token.token, std::forward<Args>(args)...);
  }
};

#endif // SMARTASYNC_DEADLINE_HPP
