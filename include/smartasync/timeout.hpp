// smartasync/timeout.hpp - bound an asynchronous operation by a deadline.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_TIMEOUT_HPP
#define SMARTASYNC_TIMEOUT_HPP

#include "smartasync/config.hpp"

#include "smartasync/deadline.hpp"
#include "smartasync/error.hpp"

#include SMARTASYNC_ASIO_HEADER(associated_cancellation_slot.hpp)
#include SMARTASYNC_ASIO_HEADER(associated_executor.hpp)
#include SMARTASYNC_ASIO_HEADER(async_result.hpp)
#include SMARTASYNC_ASIO_HEADER(awaitable.hpp)
#include SMARTASYNC_ASIO_HEADER(basic_waitable_timer.hpp)
#include SMARTASYNC_ASIO_HEADER(bind_executor.hpp)
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

// An error of smartasync's own other than a time-out (deadline_expired, pool_stopped,
// queue_full, ...): the operation was refused or never started, so that is the answer even
// when the deadline came first; calling it a time-out would tell the caller that it ran.
inline bool says_it_never_ran(const std::exception_ptr& error) noexcept {
  try {
    std::rethrow_exception(error);
  } catch (const system_error& e) {
    return e.code().category() == error_category() && e.code() != error::timeout;
  } catch (...) {
    return false;
  }
}

// Waits on `timer` until it expires; completes with (error_code). Unlike the timer's own
// async_wait, its handler runs the group's reaction (cancelling the bounded operation) inside a
// deadline_cancellation_scope: a pool operation cancelled there learns that its deadline passed,
// even when it was initiated without it (an awaitable, made out of with_timeout's reach).
template <typename Timer>
struct deadline_wait_initiation {
  Timer* timer;

  template <typename Handler>
  void operator()(Handler handler) const {
    auto slot = asio::get_associated_cancellation_slot(handler);
    if (slot.is_connected())
      slot.assign([t = timer](asio::cancellation_type) { t->cancel(); });
    auto ex = asio::get_associated_executor(handler, timer->get_executor());
    timer->async_wait(asio::bind_executor(ex, [h = std::move(handler)](error_code ec) mutable {
      auto s = asio::get_associated_cancellation_slot(h);
      if (s.is_connected())
        s.clear();
      deadline_cancellation_scope at_deadline(!ec);
      std::move(h)(ec);
    }));
  }
};

template <typename T, typename Executor>
asio::awaitable<T, Executor> with_timeout_until(asio::awaitable<T, Executor> op,
                                                deadline_clock::time_point deadline) {
#if SMARTASYNC_ASIO_VERSION >= 102600
  using asio::deferred;
#else
  using asio::experimental::deferred;
#endif
  auto ex = co_await asio::this_coro::executor;
  using timer_type = asio::basic_waitable_timer<deadline_clock, asio::wait_traits<deadline_clock>,
                                                Executor>;
  timer_type timer(ex, deadline);

  // A plain parallel group rather than awaitable_operators' `||`: in Asio 1.22 `||` waits for
  // the first *success*, so an operation that fails fast would still wait for the timer, and
  // it discards which side finished. wait_for_one() completes on the first completion of
  // either kind and cancels the other with terminal cancellation (what the blocking pool and
  // Asio's I/O objects honour), then waits for it, so nothing is left running.
  auto group = asio::experimental::make_parallel_group(
      asio::co_spawn(ex, std::move(op), deferred),
      asio::async_initiate<decltype(deferred) const&, void(error_code)>(
          deadline_wait_initiation<timer_type>{&timer}, deferred));
  auto result = co_await group.async_wait(
      asio::experimental::wait_for_one(asio::cancellation_type::terminal),
      asio::use_awaitable_t<Executor>{});
  detail::end_deadline_cancellation();

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
  // An offloaded call that was still queued at the deadline says so (error::deadline_expired),
  // as does one refused at submission that completed just after the deadline (pool_stopped,
  // queue_full): that is the answer then, since the call itself never ran.
  if (order[0] == 1 && !timer_error && !says_it_never_ran(op_error))
    throw system_error(make_error_code(error::timeout), "with_timeout");
  std::rethrow_exception(op_error);
}

// The clock starts here, in a coroutine's body, which runs only when awaited.
template <typename T, typename Executor>
asio::awaitable<T, Executor> with_timeout_impl(asio::awaitable<T, Executor> op,
                                               deadline_clock::duration timeout) {
  co_return co_await with_timeout_until(std::move(op), deadline_after(timeout));
}

template <typename Op>
using timeout_awaitable_t = decltype(std::declval<Op>()(
    with_deadline(deadline_clock::time_point{}, asio::use_awaitable)));

// The same for a deferred operation, which is launched only now, carrying the deadline.
template <typename Op>
timeout_awaitable_t<Op> with_timeout_deferred(Op op, deadline_clock::duration timeout) {
  const auto deadline = deadline_after(timeout);
  co_return co_await with_timeout_until(
      std::move(op)(with_deadline(deadline, asio::use_awaitable)), deadline);
}

} // namespace detail

/// Awaits `op`, cancelling it if it has not completed `timeout` after the co_await.
/**
 * @param op An awaitable (`asio::awaitable<T, Executor>`) or a deferred operation: anything
 *        that becomes an awaitable when given `asio::use_awaitable`, such as
 *        `timer.async_wait(smartasync::deferred)`,
 *        `smartasync::async_offload(pool, f, smartasync::deferred)` or
 *        `wrapper.async_call(args..., smartasync::deferred)`.
 * @param timeout How long to wait, measured on std::chrono::steady_clock from the co_await
 *        (not from the call to with_timeout: the result can be made first and awaited later).
 * @returns An awaitable yielding what `op` yields. At the deadline it throws
 *          smartasync::system_error with
 *          - error::deadline_expired when `op` was an offloaded call still queued: it never
 *            started (so retrying it is safe) and the pool counts it as `expired`; likewise
 *            a refusal that completes just after the deadline (error::pool_stopped,
 *            error::queue_full) is thrown as it is;
 *          - error::timeout otherwise: the operation ran and did not finish in time (an
 *            offloaded call is counted as `timed_out`).
 *          Any other failure of `op` is rethrown unchanged, so a timeout is always
 *          distinguishable from other failures. The answer and the count are the same whether
 *          `op` is an awaitable (`w.async_call(x)`) or a deferred operation (`w.async_call(x, smartasync::deferred)`).
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
 * `op` to complete before it throws, so nothing outlives it.
 *
 * **A timeout on a call that ignores its stop token returns only when the call returns.** The
 * stop request is all a running blocking call can be given; a call that never checks its
 * std::stop_token (a driver blocked in a socket read) delays the timeout until it finishes: a
 * 20 ms timeout on a 200 ms call returns after 200 ms. The answer is an interrupter: a
 * std::stop_callback in the call that aborts the blocking operation (`sqlite3_interrupt`,
 * `PQcancel`, closing the socket); see "the interrupter hook" in the guide. (Or, for a call
 * that owns all its state, abandon_on_cancel(), which completes at once and lets it run on.)
 *
 * If `op` still completes successfully, its value is returned, not discarded. Cancelling the
 * awaiting coroutine cancels `op` and the timer; the result is then `op`'s own error (usually
 * operation_aborted), not error::timeout.
 *
 * @par Thread safety
 * The usual Asio rule: the awaiting coroutine and `op` share an executor, so cancellation is
 * delivered on it.
 *
 * @par Example
 * @code
 * try {
 *   auto rows = co_await smartasync::with_timeout(query.async_call(sql), 2s);
 * } catch (const smartasync::system_error& e) {
 *   if (e.code() == smartasync::error::deadline_expired) { ... } // never started
 *   if (e.code() == smartasync::error::timeout) { ... }          // ran, and overran
 * }
 * @endcode
 */
template <typename T, typename Executor, typename Rep, typename Period>
asio::awaitable<T, Executor> with_timeout(asio::awaitable<T, Executor> op,
                                          std::chrono::duration<Rep, Period> timeout) {
  return detail::with_timeout_impl(
      std::move(op), std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout));
}

/// Overload for deferred operations: launches `op` with asio::use_awaitable at the co_await,
/// then as above.
/**
 * The operation also carries the deadline (see with_deadline()), so a worker reaching the call
 * after the deadline does not start it either, and a running call can read
 * this_call::time_left() and this_call::deadline(). (An awaitable was initiated out of
 * with_timeout's reach: its call cannot read them.)
 */
template <typename Op, typename Rep, typename Period>
  requires detail::deferred_operation<Op>
detail::timeout_awaitable_t<Op> with_timeout(Op op, std::chrono::duration<Rep, Period> timeout) {
  return detail::with_timeout_deferred(
      std::move(op), std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout));
}

} // namespace smartasync

#endif // SMARTASYNC_TIMEOUT_HPP
