// A legacy library that calls std::exit() from inside a wrapped call must end the process with
// its exit status: the default pool is then destroyed at static destruction on one of its own
// workers, which must neither join itself nor throw from the destructor (std::terminate).
// Run without arguments it starts itself with "child" and checks the child's status.
#include <smartasync/smartasync.hpp>

#include <cstdio>
#include <cstdlib>
#include <future>
#include <string>
#include <asio/use_future.hpp>

#include <sys/wait.h>

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "child") {
    auto legacy_fatal_error = smartasync::smart_async([] { std::exit(7); });
    legacy_fatal_error.async(asio::use_future).get(); // never returns: the call exits
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
