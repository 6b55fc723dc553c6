// A legacy library that calls std::exit() from inside a wrapped call must end the process with
// its exit status: the default pool is then destroyed at static destruction on one of its own
// workers, which must neither join itself nor throw from the destructor (std::terminate).
// Run without arguments it starts itself with "child" and checks the child's status.
#include <smartasync/smartasync.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>
#include "common/asio_flavour.hpp"

#include SMARTASYNC_ASIO_HEADER(use_future.hpp)

#include <sys/wait.h>

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "child") {
    // The call exits only once this thread is done submitting and waits on the future: exit
    // destroys the default pool, so no other thread may still be inside it (TSan saw this
    // thread's notify in submit() racing the pool's destruction).
    static std::atomic<bool> submitted{false};
    auto legacy_fatal_error = smartasync::smart_async([] {
      while (!submitted.load())
        std::this_thread::yield();
      std::exit(7);
    });
    auto never = legacy_fatal_error.async_call(asio::use_future);
    submitted = true;
    // wait(), not get(): exit destroys the system context, which destroys the pending
    // completion and so breaks the promise (as Asio does with every pending handler at
    // shutdown); get() would then throw here and std::terminate would race exit(7).
    never.wait();
    for (;;)
      std::this_thread::sleep_for(std::chrono::hours(1));
  }
  const std::string self = std::string(argv[0]) + " child";
  const int status = std::system(self.c_str());
  if (status == -1 || !WIFEXITED(status)) {
    std::printf("FAILED: the child did not exit normally (status %d)\n", status);
    return 1;
  }
  if (WEXITSTATUS(status) != 7) {
    std::printf("FAILED: the child exited with %d, expected 7\n", WEXITSTATUS(status));
    return 1;
  }
  std::printf("the child exited with 7 from inside a wrapped call\n");
  return 0;
}
