// smartasync/offload.hpp - run a blocking callable on a pool, complete through any token.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_OFFLOAD_HPP
#define SMARTASYNC_OFFLOAD_HPP

#include "smartasync/config.hpp"
#include "smartasync/blocking_pool.hpp"
#include "smartasync/detail/call_target.hpp"
#include "smartasync/detail/offload_op.hpp"

#include SMARTASYNC_ASIO_HEADER(async_result.hpp)
#include SMARTASYNC_ASIO_HEADER(use_awaitable.hpp)

#include <stop_token>
#include <type_traits>
#include <utility>

namespace SMARTASYNC_NAMESPACE {

namespace detail {

struct initiate_offload {
  blocking_pool* pool;

  template <typename Handler, typename Work>
  void operator()(Handler&& handler, Work&& work) const {
    using op_type = offload_op<std::decay_t<Handler>, std::decay_t<Work>>;
    (new op_type(*pool, std::forward<Handler>(handler), std::forward<Work>(work)))->start();
  }
};

// The callable of abandon_on_cancel(): forwards to `work`, and says so to offload_op.
template <typename Work>
struct abandoning_work {
  Work work;
  static constexpr bool abandons_on_cancel() noexcept { return true; }
  decltype(auto) operator()()
    requires std::is_invocable_v<Work&>
  {
    return work();
  }
  decltype(auto) operator()(std::stop_token token)
    requires(!std::is_invocable_v<Work&> && std::is_invocable_v<Work&, std::stop_token>)
  {
    return work(std::move(token));
  }
};

// A wrapper's initiation: submits to the pool while it exists. Looked at when the operation is
// launched (a deferred one may be launched long after it was made).
struct initiate_smart_call {
  std::shared_ptr<pool_lifeline> lifeline; // null: the default pool

  template <typename Handler, typename Work>
  void operator()(Handler&& handler, Work&& work) const {
    blocking_pool* pool = lifeline ? lifeline->pool.load(std::memory_order_acquire)
                                   : &default_pool();
    if (!pool) [[unlikely]]
      return complete_pool_gone::complete<Handler, Work>(std::forward<Handler>(handler));
    initiate_offload{pool}(std::forward<Handler>(handler), std::forward<Work>(work));
  }
};

} // namespace detail

/// Opts one call out of waiting: a terminal cancellation of the running call completes at once.
/**
 * By default a running call that is cancelled (with_timeout, `||`, a cancellation slot) gets
 * a stop request and its caller is completed with operation_aborted only after the call has
 * returned, so that everything the call references outlives it. Passed through this function,
 * the caller is completed at once and the call keeps running on the worker with nobody
 * waiting for it. A call a worker has taken but not yet begun never begins: its caller is
 * completed as for a queued call (operation_aborted, or deadline_expired at its deadline).
 *
 * @par Hazard
 * The abandoned call must own everything it touches: capture by value (or shared_ptr), never
 * a reference to the caller's locals, a coroutine's frame or anything the caller may destroy
 * once it has been completed. A reference capture here is a use-after-free.
 *
 * @par Example
 * @code
 * // Owns its data: safe to abandon; the timeout fires at 50 ms even if the call takes 2 s.
 * co_await smartasync::with_timeout(
 *     smartasync::async_offload(pool, smartasync::abandon_on_cancel([url] { return ping(url); }),
 *                               smartasync::deferred), 50ms);
 * @endcode
 */
template <typename Work>
detail::abandoning_work<std::decay_t<Work>> abandon_on_cancel(Work&& work) {
  return {std::forward<Work>(work)};
}

/// A nullary callable, or one whose only parameter is a std::stop_token.
template <typename T>
concept offloadable =
    std::is_invocable_v<std::decay_t<T>&> || std::is_invocable_v<std::decay_t<T>&, std::stop_token>;

/// The result type an offloaded `Work` completes with (decayed; may be void).
template <offloadable Work>
using offload_result_t = detail::work_result_t<std::decay_t<Work>>;

/// The completion signature of offloading `Work`.
template <offloadable Work>
using offload_signature_t = detail::signature_for_result_t<offload_result_t<Work>>;

/// Runs `work` on `pool` and completes through `token`.
/**
 * @param pool The pool whose worker runs `work`. It must outlive the operation.
 * @param work A callable taking no arguments or one std::stop_token; decay-copied.
 * @param token Any Asio completion token: a callback, asio::use_awaitable (the default),
 * asio::use_future, smartasync::deferred, asio::detached, ...
 *
 * @par Completion signature
 * `void(std::exception_ptr, R)`, or `void(std::exception_ptr)` when `work` returns void.
 * The exception_ptr carries whatever `work` threw (of any type), smartasync::system_error with
 * asio::error::operation_aborted when cancelled or shut down, or error::queue_full /
 * error::pool_stopped when not accepted.
 *
 * @par Blocking
 * `work` runs on a pool worker. The handler runs through its associated executor (a coroutine
 * resumes on its own executor, a strand stays a strand); a handler without one runs on the
 * worker. Called from one of `pool`'s own workers, `work` runs inline (a pool never waits on
 * itself) and the handler is still never invoked inside this call. With full_policy::wait and
 * a full queue, a thread that is not running an event loop blocks here until space frees.
 *
 * @par Cancellation
 * Per-operation cancellation through the handler's associated slot. Queued: any type; the
 * operation is removed and completes with operation_aborted. Running: terminal only; a
 * stop-aware `work` receives a stop request, and the handler completes with operation_aborted
 * once `work` has returned (whatever it returned is discarded), so `work` may safely refer to
 * the caller's locals. A call that ignores the request for long is reported
 * (pool_options::report_ignored_stop_after). To complete at once instead, leaving the call
 * running unobserved, pass abandon_on_cancel(work) (read its hazard first).
 *
 * @par Example
 * @code
 * int n = co_await smartasync::async_offload(pool, [] { return count_rows(); });
 * @endcode
 */
template <offloadable Work, typename CompletionToken = asio::use_awaitable_t<>>
auto async_offload(blocking_pool& pool, Work&& work, CompletionToken&& token = CompletionToken()) {
  return asio::async_initiate<CompletionToken, offload_signature_t<Work>>(
      detail::initiate_offload{&pool}, token, std::forward<Work>(work));
}

/// Runs `work` on default_pool(); otherwise as async_offload(pool, work, token).
template <offloadable Work, typename CompletionToken = asio::use_awaitable_t<>>
auto async_offload(Work&& work, CompletionToken&& token = CompletionToken()) {
  return async_offload(default_pool(), std::forward<Work>(work),
                       std::forward<CompletionToken>(token));
}

} // namespace smartasync

#endif // SMARTASYNC_OFFLOAD_HPP
