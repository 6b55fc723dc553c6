// A process that returns from main while the default pool is still busy must exit cleanly:
// the running call is asked to stop, queued calls complete with operation_aborted, threads join.
#include <smartasync/smartasync.hpp>

#include <atomic>
#include <cstdio>
#include <thread>

int main() {
  static std::atomic<int> aborted{0};
  // Static, like `aborted`: every worker writes it, and one may do so only after main has
  // returned (main waits for the first), so it must outlive main's stack frame.
  static std::atomic<bool> started{false};
  auto forever = smartasync::smart_async([](std::stop_token token) {
    started = true;
    while (!token.stop_requested())
      std::this_thread::yield();
  });
  for (std::size_t i = 0; i < smartasync::default_pool().thread_count(); ++i)
    forever.async_call([](std::exception_ptr) {});
  for (int i = 0; i < 100; ++i)
    smartasync::async_offload([] { return 1; }, [](std::exception_ptr e, int) {
      aborted += e ? 1 : 0;
    });
  while (!started)
    std::this_thread::yield();
  std::printf("returning from main with %zu calls queued\n",
              smartasync::default_pool().stats().queued);
  return 0; // ~blocking_pool for the default pool runs at static destruction
}
