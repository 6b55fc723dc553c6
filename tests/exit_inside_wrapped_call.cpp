// A legacy library that calls std::exit() from inside a wrapped call must end the process with
// its exit status: the default pool is then destroyed at static destruction on one of its own
// workers, which must neither join itself nor throw from the destructor (std::terminate).
// Run without arguments it starts itself with "child" and checks the child's status.
#include <smartasync/smartasync.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>
#include <asio/use_future.hpp>

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
    auto never = legacy_fatal_error.async(asio::use_future);
    submitted = true;
    never.get(); // never returns: the call exits
    return 1;
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
