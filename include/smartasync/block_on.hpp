// smartasync/block_on.hpp - run an awaitable to completion from synchronous code.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_BLOCK_ON_HPP
#define SMARTASYNC_BLOCK_ON_HPP

#include "smartasync/config.hpp"

#include "smartasync/blocking_context.hpp"
#include "smartasync/blocking_pool.hpp"
#include "smartasync/detail/block_on_context.hpp"
#include "smartasync/diagnostics.hpp"
#include "smartasync/error.hpp"
#include "smartasync/source_location.hpp"
#include "smartasync/this_thread.hpp"

#include SMARTASYNC_ASIO_HEADER(awaitable.hpp)
#include SMARTASYNC_ASIO_HEADER(co_spawn.hpp)
#include SMARTASYNC_ASIO_HEADER(error.hpp)
#include SMARTASYNC_ASIO_HEADER(execution_context.hpp)
#include SMARTASYNC_ASIO_HEADER(is_executor.hpp)
#include SMARTASYNC_ASIO_HEADER(execution/executor.hpp)

#include "smartasync/detail/format.hpp"

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>

namespace SMARTASYNC_NAMESPACE {

/// The executor of the shared background loop that block_on and sync_stream use by default.
/**
 * Public and stable. One io_context run by one thread, started on first use and stopped and
 * joined at static destruction. Useful to co_spawn work that should share that loop (a
 * producer feeding a sync_stream, a timer a block_on'd awaitable waits for).
 *
 * @par Thread safety
 * Safe to call from any thread. Do not use it (or block_on without an executor) from the
 * destructor of a static object constructed before the first use of the loop.
 */
inline asio::io_context::executor_type background_executor() {
  return detail::block_on_context::instance().get_executor();
}

namespace detail {

struct block_on_wait {
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  std::exception_ptr error;
  // Set when the waiting thread is a pool worker: it helps that pool while it waits, and is
  // woken through it (helped_done is guarded by the pool's mutex).
  blocking_pool* helped_pool = nullptr;
  bool helped_done = false;
};

template <typename T>
struct block_on_state : block_on_wait {
  std::optional<T> value;
};

template <>
struct block_on_state<void> : block_on_wait {};

/// The co_spawn completion handler: hands the result to the waiting thread. If the execution
/// context is destroyed before the coroutine finishes, Asio destroys this handler without
/// calling it; the destructor then wakes the waiter with operation_aborted instead of leaving
/// it blocked forever.
template <typename T>
class block_on_handler {
public:
  explicit block_on_handler(std::shared_ptr<block_on_state<T>> state) : state_(std::move(state)) {}
  block_on_handler(block_on_handler&& other) noexcept : state_(std::move(other.state_)) {}
  block_on_handler& operator=(block_on_handler&&) = delete;

  ~block_on_handler() {
    if (state_) {
      finish(std::make_exception_ptr(system_error(
          asio::error::operation_aborted,
          "block_on: the execution context was shut down before the awaitable completed")));
    }
  }

  template <typename... Result>
  void operator()(std::exception_ptr error, Result&&... result) {
    std::unique_lock lock(state_->mutex);
    if constexpr (sizeof...(Result) != 0) {
      if (!error)
        state_->value.emplace(std::forward<Result>(result)...);
    }
    lock.unlock();
    finish(std::move(error));
  }

private:
  void finish(std::exception_ptr error) {
    auto state = std::move(state_);
    {
      std::lock_guard lock(state->mutex);
      state->error = std::move(error);
      state->done = true;
      // Notify under the lock: the waiter may return (and drop its reference) the moment it
      // sees done, and we still hold our own reference, so the state stays alive either way.
      state->done_cv.notify_one();
    }
    if (state->helped_pool)
      worker_helping::notify_helpers(*state->helped_pool, [&] { state->helped_done = true; });
  }

  std::shared_ptr<block_on_state<T>> state_;
};

/// Reports block_on_from_loop: first at each call site, then at a bounded rate (a hot loop must
/// not flood the handler; see set_report_repeat_interval).
inline void report_block_on_from_loop(const smartasync::source_location& where) {
  const auto unreported = report_due(diagnostic_kind::block_on_from_loop, where);
  if (!unreported)
    return;
  report(diagnostic{
      .kind = diagnostic_kind::block_on_from_loop,
      .message = fmt::format(
          "block_on at {}:{} blocks thread {}, which is running an event loop: every other "
          "handler of that loop waits until the awaitable completes. co_await the awaitable "
          "(or co_spawn it) instead.{}",
          where.file_name(), where.line(), detail::thread_text(std::this_thread::get_id()),
          more_since(*unreported)),
      .name = "",
      .where = where,
      .duration = {},
      .thread = std::this_thread::get_id(),
  });
}

template <typename Executor>
void check_block_on_thread(const Executor& ex, const smartasync::source_location& where) {
  if (detail::runs_on_this_thread(ex)) {
    throw system_error(
        make_error_code(error::deadlock),
        fmt::format("block_on at {}:{} was called on a thread that runs the execution context "
                    "it would wait on, so the awaitable could never run; co_await it instead "
                    "of calling block_on",
                    where.file_name(), where.line()));
  }
  if (!this_thread::may_block())
    detail::report_block_on_from_loop(where);
}

template <typename T, typename AwaitableExecutor, typename Executor>
T block_on_impl(const Executor& ex, asio::awaitable<T, AwaitableExecutor> a,
                const smartasync::source_location& where) {
  detail::check_block_on_thread(ex, where);
  auto state = std::make_shared<block_on_state<T>>();
  // On a pool worker, the awaitable may offload to that very pool; if every worker waited here
  // nothing could run it, so a waiting worker runs the pool's queued work meanwhile.
  state->helped_pool = this_thread::current_pool();
  asio::co_spawn(ex, std::move(a), block_on_handler<T>(state));
  if (state->helped_pool)
    worker_helping::help_until(*state->helped_pool, [&] { return state->helped_done; });
  std::unique_lock lock(state->mutex);
  state->done_cv.wait(lock, [&] { return state->done; });
  if (state->error)
    std::rethrow_exception(state->error);
  if constexpr (!std::is_void_v<T>)
    return std::move(*state->value);
}

} // namespace detail

/// Runs `a` to completion on the shared background loop and returns its result.
/**
 * @param a The awaitable to run. It is started by this call and finishes before it returns.
 * @param where The call site, used in error messages and diagnostics; leave it defaulted.
 * @returns The awaitable's result; an exception it throws (of any type) is rethrown here.
 *
 * @par Blocking
 * The calling thread blocks until the awaitable completes; the awaitable runs on the shared
 * background loop (see background_executor()), never on the calling thread. Any number of
 * threads may call block_on at once; their awaitables interleave on that one loop.
 *
 * @par On a pool worker
 * Called inside an offloaded call, the waiting worker runs its pool's queued calls until the
 * awaitable completes, so an awaitable that offloads to the same pool cannot deadlock it,
 * even with one thread.
 *
 * @par Misuse
 * Called on the background loop's own thread (from a coroutine that block_on started, say) it
 * throws smartasync::system_error with error::deadlock instead of hanging. Called on a thread running
 * another event loop it works, but stalls that loop; it reports
 * diagnostic_kind::block_on_from_loop (first per call site, then at a bounded rate).
 *
 * @par Cancellation
 * None: the caller is a plain thread with nothing to cancel from. Bound the wait with
 * with_timeout inside the awaitable if needed. If the loop is shut down first (the process is
 * exiting) it throws smartasync::system_error(asio::error::operation_aborted).
 *
 * @par Thread safety
 * Safe to call concurrently from any number of threads.
 *
 * @par Example
 * @code
 * int n = smartasync::block_on(count_rows(db)); // from main(), a test, a worker thread
 * @endcode
 */
template <typename T, typename AwaitableExecutor>
  requires std::is_convertible_v<asio::io_context::executor_type, AwaitableExecutor>
T block_on(asio::awaitable<T, AwaitableExecutor> a,
           smartasync::source_location where = smartasync::source_location::current()) {
  return detail::block_on_impl(background_executor(), std::move(a), where);
}

/// Runs `a` to completion on `ex` and returns its result.
/**
 * @param ex Where the awaitable runs. Some thread must be running its execution context
 *        (io_context::run, a thread_pool), otherwise this call waits until one does.
 * @param a The awaitable to run.
 * @param where The call site; leave it defaulted.
 * @returns The awaitable's result, or rethrows its exception.
 *
 * @par Blocking
 * The calling thread blocks; the awaitable runs on `ex`.
 *
 * @par Misuse
 * Throws smartasync::system_error(error::deadlock) without running anything when the calling thread
 * runs the execution context behind `ex` (checked through running_in_this_thread(), the inner
 * executor of a strand, or the io_context/thread_pool behind an any_io_executor). A thread
 * running some *other* loop is allowed and reported (diagnostic_kind::block_on_from_loop).
 *
 * @par Thread safety
 * Safe to call concurrently from any number of threads.
 *
 * @par Example
 * @code
 * asio::io_context io;
 * std::jthread runner([&] { auto g = asio::make_work_guard(io); io.run(); });
 * auto page = smartasync::block_on(io.get_executor(), fetch(url));
 * @endcode
 */
template <typename Executor, typename T, typename AwaitableExecutor>
  requires(asio::execution::is_executor<Executor>::value || asio::is_executor<Executor>::value)
T block_on(const Executor& ex, asio::awaitable<T, AwaitableExecutor> a,
           smartasync::source_location where = smartasync::source_location::current()) {
  return detail::block_on_impl(ex, std::move(a), where);
}

/// Runs `a` to completion on `context`'s executor; the same as block_on(context.get_executor(), a).
template <typename ExecutionContext, typename T, typename AwaitableExecutor>
  requires std::is_convertible_v<ExecutionContext&, asio::execution_context&>
T block_on(ExecutionContext& context, asio::awaitable<T, AwaitableExecutor> a,
           smartasync::source_location where = smartasync::source_location::current()) {
  return detail::block_on_impl(context.get_executor(), std::move(a), where);
}

} // namespace smartasync

#endif // SMARTASYNC_BLOCK_ON_HPP
