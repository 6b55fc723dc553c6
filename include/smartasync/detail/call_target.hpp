// smartasync/detail/call_target.hpp - where a smart_async wrapper's calls run.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_CALL_TARGET_HPP
#define SMARTASYNC_DETAIL_CALL_TARGET_HPP

#include "smartasync/config.hpp"
#include "smartasync/error.hpp"
#include "smartasync/detail/offload_op.hpp"

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

// Where a smart_async_function<F, Executor> sends its calls. The sync form calls
// `run_sync(call)` off the loop (after the loop check on one); the async form initiates with
// `initiation()`. The specialisations live beside what they send to: the pool's in
// smart_async.hpp, the lanes' in serial_lane.hpp.
template <typename Executor>
struct call_target;

} // namespace detail
} // namespace smartasync

#endif // SMARTASYNC_DETAIL_CALL_TARGET_HPP
