// A process whose default pool is running a call that ignores its stop request (a hung driver)
// when main returns must still exit, within the exit grace, with main's status, and report the
// call by name. Run without arguments it starts itself with "child" and checks the child.
#include <smartasync/smartasync.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include <sys/wait.h>

using namespace std::chrono_literals;

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]).starts_with("child")) {
    if (std::string(argv[1]) == "child-api")
      smartasync::set_default_pool_exit_grace(100ms);
    // else: SMARTASYNC_EXIT_GRACE_MS, set by the parent
    static std::atomic<bool> started{false};
    auto hung = smartasync::smart_async(
        [] {
          started = true;
          for (;;) // takes no stop token: nothing asks it to return
            std::this_thread::sleep_for(10ms);
        },
        {.name = "hung driver call"});
    hung.async_call([](std::exception_ptr) {});
    while (!started)
      std::this_thread::yield();
    return 3; // the default pool is shut down at exit, after main
  }
  for (const std::string& mode : {"SMARTASYNC_EXIT_GRACE_MS=100 " + std::string(argv[0]) + " child",
                                 std::string(argv[0]) + " child-api"}) {
    const std::string command = mode + " 2>&1";
    FILE* child = popen(command.c_str(), "r");
    if (!child) {
      std::perror("popen");
      return 1;
    }
    std::string output;
    std::array<char, 256> buffer{};
    while (std::fgets(buffer.data(), static_cast<int>(buffer.size()), child))
      output += buffer.data();
    const int status = pclose(child);
    std::printf("%s:\n%s", command.c_str(), output.c_str());
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 3) {
      std::printf("FAIL: the child did not exit with main's status 3 (raw status %d)\n", status);
      return 1;
    }
    if (output.find("at exit, blocking call 'hung driver call'") == std::string::npos) {
      std::printf("FAIL: the exit report does not name the call\n");
      return 1;
    }
  }
  std::printf("ok\n");
  return 0;
}
