// A process that registers a context carrier and returns from main while a call that carries
// it still runs on the default pool must exit cleanly: the call's context is restored and
// destroyed on the worker during static destruction, after main's statics (the carrier
// registry among them, when the pool was made first) are gone. With "reset", the carrier is
// unregistered before main returns, which must not matter either.
#include <smartasync/smartasync.hpp>

#include <atomic>
#include <cstdio>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>

namespace {

struct request_id {
  using value_type = std::string;
  static inline thread_local std::string current;
  static value_type capture() noexcept { return current; }
  static value_type exchange(value_type v) noexcept { return std::exchange(current, std::move(v)); }
};

} // namespace

int main(int argc, char** argv) {
  // The pool first, so that it outlives whatever is made after it.
  auto& pool = smartasync::default_pool();
  auto carried = smartasync::carry_context<request_id>();
  // Long enough not to fit a small-string buffer: its destruction frees memory.
  request_id::current = "request carried across the hop to the worker";

  static std::atomic<bool> started{false};
  static std::atomic<bool> saw_context{false};
  smartasync::async_offload(
      pool,
      [](std::stop_token token) {
        saw_context = request_id::current == "request carried across the hop to the worker";
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
  if (argc > 1 && std::string(argv[1]) == "reset")
    carried.reset();
  std::printf("returning from main with a carried call running\n");
  return 0;
}
