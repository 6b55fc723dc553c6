// smartasync/this_thread.hpp - what kind of thread is this?
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_THIS_THREAD_HPP
#define SMARTASYNC_THIS_THREAD_HPP

#include "smartasync/config.hpp"

#include SMARTASYNC_ASIO_HEADER(detail/call_stack.hpp)
#include SMARTASYNC_ASIO_HEADER(detail/thread_context.hpp)

namespace SMARTASYNC_NAMESPACE {

class blocking_pool;

namespace detail {
// Set by each pool worker for its whole life; read by nested calls.
inline thread_local blocking_pool* current_pool_ = nullptr;
} // namespace detail

namespace this_thread {

/// True when this thread is inside an Asio execution context's run loop.
/**
 * Covers `io_context::run`, `run_one`, `poll`, `poll_one`, `asio::thread_pool` threads, and
 * strands on any of them: everything that runs handlers. A blocking call here stalls every
 * other handler of that context.
 *
 * @par Cost
 * One thread-local load: no lock, no allocation.
 */
inline bool is_running_event_loop() noexcept {
  // The per-thread stack of the thread contexts (schedulers) this thread is running, read
  // directly: thread_context::top_of_thread_call_stack() returns the same thing but is absent
  // from Asio 1.18 (Boost 1.74) and an out-of-line call under ASIO_SEPARATE_COMPILATION.
  // call_stack<> has the same shape in every Asio from 1.18 to 1.38 (Boost 1.90).
  return asio::detail::call_stack<asio::detail::thread_context,
                                  asio::detail::thread_info_base>::top() != nullptr;
}

/// The smartasync::blocking_pool this thread is a worker of, or nullptr.
inline blocking_pool* current_pool() noexcept { return detail::current_pool_; }

} // namespace this_thread
} // namespace smartasync

#endif // SMARTASYNC_THIS_THREAD_HPP
