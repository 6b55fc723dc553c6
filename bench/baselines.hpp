// bench/baselines.hpp - what a user would write instead of smartasync, written as well as we can.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_BENCH_BASELINES_HPP
#define SMARTASYNC_BENCH_BASELINES_HPP

#include <asio/associated_allocator.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/bind_allocator.hpp>
#include <asio/dispatch.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <asio/thread_pool.hpp>

#include <exception>
#include <utility>

namespace bench {

// The lean hand-written offload: post the call to an asio::thread_pool, then dispatch the
// completion to the handler's associated executor (kept alive by a work guard) with the
// handler's associated allocator. Same completion signature as smartasync, so exceptions
// travel too. No cancellation, no queue bound, no context-destruction safety: that is the
// point of comparison, the cost of the bare mechanism.
template <typename F, typename Token>
auto lean_offload(asio::thread_pool& pool, F f, Token&& token) {
  using result = decltype(f());
  return asio::async_initiate<Token, void(std::exception_ptr, result)>(
      [&pool](auto handler, F f) {
        auto work = asio::make_work_guard(asio::get_associated_executor(handler));
        asio::post(pool, [handler = std::move(handler), work = std::move(work),
                          f = std::move(f)]() mutable {
          std::exception_ptr error;
          result value{};
          try {
            value = f();
          } catch (...) {
            error = std::current_exception();
          }
          auto alloc = asio::get_associated_allocator(handler);
          asio::dispatch(work.get_executor(),
                         asio::bind_allocator(alloc, [handler = std::move(handler), error,
                                                      value = std::move(value)]() mutable {
                           std::move(handler)(error, std::move(value));
                         }));
          work.reset();
        });
      },
      token, std::move(f));
}

} // namespace bench

#endif // SMARTASYNC_BENCH_BASELINES_HPP
