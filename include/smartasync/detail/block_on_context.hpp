// smartasync/detail/block_on_context.hpp - the shared background loop and deadlock detection.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_BLOCK_ON_CONTEXT_HPP
#define SMARTASYNC_DETAIL_BLOCK_ON_CONTEXT_HPP

#include "smartasync/config.hpp"
#include "smartasync/detail/thread_name.hpp"

#include SMARTASYNC_ASIO_HEADER(execution/context.hpp)
#include SMARTASYNC_ASIO_HEADER(executor_work_guard.hpp)
#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(query.hpp)
#include SMARTASYNC_ASIO_HEADER(detail/scheduler.hpp)

#include <thread>

namespace SMARTASYNC_NAMESPACE::detail {

/// One io_context run by one thread, created on first use and shut down at static destruction.
/**
 * block_on and sync_stream need *some* loop to run coroutines on when the caller has none. A
 * single thread is enough: the coroutines it runs are expected to wait (on I/O, timers, the
 * blocking pool), not to compute.
 */
class block_on_context {
public:
  static block_on_context& instance() {
    // A function-local static: thread-safe lazy start, and its destructor runs at exit, after
    // every static constructed later (which may still use it) has gone.
    static block_on_context context;
    return context;
  }

  block_on_context(const block_on_context&) = delete;
  block_on_context& operator=(const block_on_context&) = delete;

  ~block_on_context() {
    // stop() rather than letting the loop run dry: a detached coroutine that never ends must not
    // hang the process at exit. Unfinished operations are destroyed by ~io_context, which wakes
    // any block_on still waiting with operation_aborted instead of leaving it blocked forever.
    guard_.reset();
    context_.stop();
    thread_.join();
  }

  asio::io_context::executor_type get_executor() noexcept { return context_.get_executor(); }

private:
  block_on_context() : guard_(context_.get_executor()), thread_([this] { run(); }) {}

  void run() noexcept {
    name_this_thread(background_thread_name);
    // A handler that throws would otherwise end the thread and every later block_on with it.
    for (;;) {
      try {
        context_.run();
        return;
      } catch (...) {
      }
    }
  }

  asio::io_context context_{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
};

/// True when the calling thread runs the execution context behind `ex` (waiting on it here
/// could never end).
/**
 * Checks, in order: the executor's own running_in_this_thread() (io_context, thread_pool,
 * strand), the inner executor of an adapter such as a strand (a thread running the io_context
 * under a strand deadlocks even when it is not inside the strand), and the scheduler behind a
 * polymorphic executor (any_io_executor) over an io_context or a thread_pool.
 */
template <typename Executor>
bool runs_on_this_thread(const Executor& ex) {
  if constexpr (requires { ex.running_in_this_thread(); }) {
    if (ex.running_in_this_thread())
      return true;
  }
  if constexpr (requires { ex.get_inner_executor(); }) {
    if (detail::runs_on_this_thread(ex.get_inner_executor()))
      return true;
  }
  if constexpr (requires { asio::query(ex, asio::execution::context); }) {
    // Polymorphic executors (any_io_executor) hide their type; ask the context instead. Both
    // io_context and thread_pool run a detail::scheduler service whose can_dispatch() is the
    // same per-thread call-stack lookup running_in_this_thread() does. has_service first, so
    // an unrelated context never gets a scheduler created in it.
    asio::execution_context& context = asio::query(ex, asio::execution::context);
    if (asio::has_service<asio::detail::scheduler>(context))
      return asio::use_service<asio::detail::scheduler>(context).can_dispatch();
  }
  return false;
}

} // namespace smartasync::detail

#endif // SMARTASYNC_DETAIL_BLOCK_ON_CONTEXT_HPP
