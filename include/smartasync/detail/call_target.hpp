// smartasync/detail/call_target.hpp - where a smart_async wrapper's calls run.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_CALL_TARGET_HPP
#define SMARTASYNC_DETAIL_CALL_TARGET_HPP

#include "smartasync/config.hpp"
#include "smartasync/blocking_pool.hpp"
#include "smartasync/error.hpp"
#include "smartasync/offload.hpp"

#include SMARTASYNC_ASIO_HEADER(associated_allocator.hpp)
#include SMARTASYNC_ASIO_HEADER(associated_executor.hpp)
#include SMARTASYNC_ASIO_HEADER(bind_allocator.hpp)
#include SMARTASYNC_ASIO_HEADER(post.hpp)
#include SMARTASYNC_ASIO_HEADER(system_executor.hpp)

#include <exception>
#include <memory>
#include <type_traits>
#include <utility>

namespace SMARTASYNC_NAMESPACE {
namespace detail {

// Completes a call whose pool is gone with error::pool_stopped, through the handler's
// executor (never inside the initiating call), as a pool that is shut down would.
struct complete_pool_gone {
  template <typename Handler, typename Work>
  static void complete(Handler&& handler) {
    using result_type = work_result_t<std::decay_t<Work>>;
    // A handler without an executor of its own completes on the system executor: there is no
    // pool left to run it, and Asio 1.37+'s default (an inline executor) cannot take a post.
    auto executor = asio::get_associated_executor(handler, asio::system_executor());
    auto allocator = asio::get_associated_allocator(handler);
    asio::post(executor,
               asio::bind_allocator(allocator, [h = std::forward<Handler>(handler)]() mutable {
                 auto error = std::make_exception_ptr(
                     system_error(make_error_code(smartasync::error::pool_stopped)));
                 if constexpr (std::is_void_v<result_type>)
                   std::move(h)(std::move(error));
                 else
                   std::move(h)(std::move(error), result_type{});
               }));
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

// Where a smart_async_function<F, Executor> sends its calls. The sync form calls
// `run_sync(call)` off the loop (after the loop check on one); the async form initiates with
// `initiation()`. The specialisations for the lanes live in serial_lane.hpp.
template <typename Executor>
struct call_target;

template <>
struct call_target<blocking_pool> {
  blocking_pool* pool; // nullptr: default_pool(), resolved on each async use
  // The pool's, when one was given: the wrapper may outlive the pool, and then its async form
  // completes with error::pool_stopped instead of reaching for freed memory.
  std::shared_ptr<pool_lifeline> lifeline;

  explicit call_target(blocking_pool* p)
      : pool(p), lifeline(p ? pool_access::lifeline(*p) : nullptr) {}

  blocking_pool& executor_pool() const { return pool ? *pool : default_pool(); }
  initiate_smart_call initiation() const { return {lifeline}; }
};

} // namespace detail
} // namespace smartasync

#endif // SMARTASYNC_DETAIL_CALL_TARGET_HPP
