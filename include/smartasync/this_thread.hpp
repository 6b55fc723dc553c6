// smartasync/this_thread.hpp - what kind of thread is this?
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_THIS_THREAD_HPP
#define SMARTASYNC_THIS_THREAD_HPP

#include "smartasync/config.hpp"

#include SMARTASYNC_ASIO_HEADER(detail/call_stack.hpp)
#include SMARTASYNC_ASIO_HEADER(detail/thread_context.hpp)

#include <concepts>

namespace SMARTASYNC_NAMESPACE {

class blocking_pool;

namespace detail {
// The one Asio internal smartasync depends on (docs/design.md section 1): the per-thread stack
// of running schedulers, read by is_running_event_loop() (top()) and by allow_blocking's check
// (contains()). Checked here, in every build, so that an Asio that changed it stops the build
// with a message that names it, instead of an error deep in a template or wrong detection.
template <typename Stack, typename Key>
concept asio_thread_call_stack = requires(Key* key) {
  { Stack::top() } -> std::convertible_to<const void*>;
  { Stack::contains(key) } -> std::convertible_to<const void*>;
};
static_assert(asio_thread_call_stack<asio::detail::call_stack<asio::detail::thread_context,
                                                              asio::detail::thread_info_base>,
                                     asio::detail::thread_context>,
              "This Asio changed asio::detail::call_stack<thread_context, thread_info_base> "
              "(static top() and contains(thread_context*)), which smartasync reads to detect "
              "event-loop threads (docs/design.md section 1). This smartasync cannot run on it: "
              "use an Asio it was tested with, or a smartasync release that supports this one.");

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
