// smartasync/timeout.hpp - bound an asynchronous operation by a deadline.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_TIMEOUT_HPP
#define SMARTASYNC_TIMEOUT_HPP

#include "smartasync/config.hpp"

#include "smartasync/deadline.hpp"
#include "smartasync/error.hpp"

#include SMARTASYNC_ASIO_HEADER(awaitable.hpp)
#include SMARTASYNC_ASIO_HEADER(basic_waitable_timer.hpp)
#include SMARTASYNC_ASIO_HEADER(cancellation_type.hpp)
#include SMARTASYNC_ASIO_HEADER(co_spawn.hpp)
#include SMARTASYNC_ASIO_HEADER(error.hpp)
// asio::deferred left the experimental namespace in Asio 1.24-1.26; 1.33 removed the old name.
#if SMARTASYNC_ASIO_VERSION >= 102600
#include SMARTASYNC_ASIO_HEADER(deferred.hpp)
#else
#include SMARTASYNC_ASIO_HEADER(experimental/deferred.hpp)
#endif
#include SMARTASYNC_ASIO_HEADER(experimental/parallel_group.hpp)
#include SMARTASYNC_ASIO_HEADER(this_coro.hpp)
#include SMARTASYNC_ASIO_HEADER(use_awaitable.hpp)

#include <chrono>
#include <concepts>
#include <exception>
#include <system_error>
#include <type_traits>
#include <utility>

namespace SMARTASYNC_NAMESPACE {

namespace detail {

template <typename T>
struct is_awaitable : std::false_type {};
template <typename T, typename Executor>
struct is_awaitable<asio::awaitable<T, Executor>> : std::true_type {};

/// An operation that is not yet an awaitable but becomes one when given use_awaitable: a
/// deferred operation (`op(smartasync::deferred)`) or any other lazy initiation.
template <typename Op>
concept deferred_operation = !is_awaitable<std::remove_cvref_t<Op>>::value &&
                             requires(Op&& op) { std::move(op)(asio::use_awaitable); };

inline bool is_deadline_expired(const std::exception_ptr& error) noexcept {
  try {
    std::rethrow_exception(error);
  } catch (const system_error& e) {
    return e.code() == error::deadline_expired;
  } catch (...) {
    return false;
  }
}

template <typename T, typename Executor>
asio::awaitable<T, Executor> with_timeout_impl(asio::awaitable<T, Executor> op,
                                               std::chrono::steady_clock::duration timeout) {
#if SMARTASYNC_ASIO_VERSION >= 102600
  using asio::deferred;
#else
  using asio::experimental::deferred;
#endif
  auto ex = co_await asio::this_coro::executor;
  asio::basic_waitable_timer<std::chrono::steady_clock, asio::wait_traits<std::chrono::steady_clock>,
                             Executor>
      timer(ex, timeout);

  // A plain parallel group rather than awaitable_operators' `||`: in Asio 1.22 `||` waits for
  // the first *success*, so an operation that fails fast would still wait for the timer, and
  // it discards which side finished. wait_for_one() completes on the first completion of
  // either kind and cancels the other with terminal cancellation (what the blocking pool and
  // Asio's I/O objects honour), then waits for it, so nothing is left running.
  auto group = asio::experimental::make_parallel_group(asio::co_spawn(ex, std::move(op), deferred),
                                                       timer.async_wait(deferred));
  auto result = co_await group.async_wait(
      asio::experimental::wait_for_one(asio::cancellation_type::terminal),
      asio::use_awaitable_t<Executor>{});

  // result = (order, op's exception_ptr, [op's value,] timer's error_code)
  const auto& order = std::get<0>(result);
  const std::exception_ptr& op_error = std::get<1>(result);
  const error_code& timer_error = std::get<std::tuple_size_v<decltype(result)> - 1>(result);

  // A success counts even if it arrived after the deadline (the operation ignored the
  // cancellation, or finished before seeing it): its side effects happened, and throwing would
  // make the caller retry work that is already done.
  if (!op_error) {
    if constexpr (std::is_void_v<T>)
      co_return;
    else
      co_return std::move(std::get<2>(result));
  }
  // The timer completed first and really expired (it completes with operation_aborted when
  // our own caller cancelled the whole thing; then the operation's error is the answer).
  // An offloaded call that was still queued at the deadline says so (error::deadline_expired):
  // that is the answer then, since the call itself never ran.
  if (order[0] == 1 && !timer_error && !is_deadline_expired(op_error))
    throw system_error(make_error_code(error::timeout), "with_timeout");
  std::rethrow_exception(op_error);
}

} // namespace detail

/// Awaits `op`, cancelling it and throwing error::timeout if it has not completed after `timeout`.
/**
 * @param op An awaitable (`asio::awaitable<T, Executor>`) or a deferred operation: anything
 *        that becomes an awaitable when given `asio::use_awaitable`, such as
 *        `timer.async_wait(smartasync::deferred)`,
 *        `smartasync::async_offload(pool, f, smartasync::deferred)` or
 *        `wrapper.async_call(args..., smartasync::deferred)`.
 * @param timeout How long to wait, measured on std::chrono::steady_clock.
 * @returns An awaitable yielding what `op` yields. It throws smartasync::system_error with
 *          error::timeout when the deadline passed first, and otherwise rethrows `op`'s own
 *          exception unchanged, so a timeout is always distinguishable from other failures.
 *
 * @par Completion signature
 * The same as `co_await op`. A non-void T must be default-constructible (a co_spawn rule).
 *
 * @par Blocking
 * Never blocks: `op` runs as a child coroutine on the awaiting coroutine's executor, next to a
 * steady_timer.
 *
 * @par Cancellation
 * At the deadline, `op` receives *terminal* per-operation cancellation (Asio I/O objects and
 * timers abort; an offloaded blocking call is removed from the pool's queue, or, when already
 * running, gets a stop request and its late result is discarded). with_timeout then waits for
 * `op` to complete before it throws, so nothing outlives it; an operation that ignores
 * cancellation therefore delays the timeout until it finishes. If `op` still completes
 * successfully, its value is returned, not discarded. Cancelling the awaiting coroutine
 * cancels `op` and the timer; the result is then `op`'s own error (usually operation_aborted),
 * not error::timeout.
 *
 * @par Thread safety
 * The usual Asio rule: the awaiting coroutine and `op` share an executor, so cancellation is
 * delivered on it.
 *
 * @par Example
 * @code
 * try {
 *   auto rows = co_await smartasync::with_timeout(query.async_call(sql, smartasync::deferred), 2s);
 * } catch (const smartasync::system_error& e) {
 *   if (e.code() == smartasync::error::timeout) { ... }
 * }
 * @endcode
 */
template <typename T, typename Executor, typename Rep, typename Period>
asio::awaitable<T, Executor> with_timeout(asio::awaitable<T, Executor> op,
                                          std::chrono::duration<Rep, Period> timeout) {
  return detail::with_timeout_impl(
      std::move(op), std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout));
}

/// Overload for deferred operations: converts `op` with asio::use_awaitable, then as above.
/**
 * The operation also carries the deadline (see with_deadline()): an offloaded call still
 * queued at the deadline never starts, and the awaitable throws error::deadline_expired
 * instead of error::timeout; a running call can read this_call::time_left().
 */
template <typename Op, typename Rep, typename Period>
  requires detail::deferred_operation<Op>
auto with_timeout(Op op, std::chrono::duration<Rep, Period> timeout) {
  const auto budget = std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout);
  return detail::with_timeout_impl(
      std::move(op)(with_deadline(std::chrono::steady_clock::now() + budget, asio::use_awaitable)),
      budget);
}

} // namespace smartasync

#endif // SMARTASYNC_TIMEOUT_HPP
