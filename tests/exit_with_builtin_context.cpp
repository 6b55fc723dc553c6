// The built-in carriers (smartasync::request_id, a carried_thread_local) cost nothing until a
// program uses one: declaring them registers nothing. Once used they are carried without
// registration, and a process that returns from main while a call carrying them still runs on
// the default pool must exit cleanly: the call's context is restored and destroyed on the
// worker during static destruction.
#include <smartasync/smartasync.hpp>

#include <atomic>
#include <cstdio>
#include <stop_token>
#include <string>
#include <thread>

namespace {

using trace_span = smartasync::carried_thread_local<std::string, struct trace_span_tag>;

} // namespace

int main() {
  // The pool first, so that it outlives whatever is made after it.
  auto& pool = smartasync::default_pool();
  if (smartasync::detail::carrier_registry::instance().active() != nullptr) {
    std::fprintf(stderr, "a carrier is registered before any was used\n");
    return 1;
  }
  // Long enough not to fit a small-string buffer: their destruction frees memory.
  smartasync::request_id::current() = "request carried across the hop to the worker";
  trace_span::current() = "span carried across the hop to the worker, too";
  if (smartasync::detail::carrier_registry::instance().active() == nullptr) {
    std::fprintf(stderr, "using the built-in carriers did not start carrying them\n");
    return 1;
  }

  static std::atomic<bool> started{false};
  static std::atomic<bool> saw_context{false};
  smartasync::async_offload(
      pool,
      [](std::stop_token token) {
        saw_context = smartasync::request_id::current() ==
                          "request carried across the hop to the worker" &&
                      trace_span::current() == "span carried across the hop to the worker, too";
        started = true;
        // Still running when main returns: the pool's destructor asks it to stop.
        while (!token.stop_requested())
          std::this_thread::yield();
      },
      [](std::exception_ptr) {});
  while (!started)
    std::this_thread::yield();
  if (!saw_context) {
    std::fprintf(stderr, "the call did not see the carried context\n");
    return 1;
  }
  std::printf("returning from main with a call carrying the built-in context running\n");
  return 0;
}
