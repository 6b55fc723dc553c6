// The names of the process's threads, as top -H, ps -L and gdb show them (Linux).
#ifndef SMARTASYNC_TESTS_COMMON_THREAD_NAMES_HPP
#define SMARTASYNC_TESTS_COMMON_THREAD_NAMES_HPP

#if defined(__linux__)
#include "eventually.hpp"

#include <dirent.h>
#include <pthread.h>

#include <fstream>
#include <string>

namespace test_support {

inline std::string this_thread_name() {
  char name[16] = {};
  pthread_getname_np(pthread_self(), name, sizeof name);
  return name;
}

// How many of the process's threads are called `name` now.
inline int threads_named(const std::string& name) {
  int count = 0;
  if (DIR* tasks = opendir("/proc/self/task")) {
    while (const dirent* task = readdir(tasks)) {
      if (task->d_name[0] == '.')
        continue;
      std::ifstream comm(std::string("/proc/self/task/") + task->d_name + "/comm");
      std::string line;
      if (std::getline(comm, line) && line == name)
        ++count;
    }
    closedir(tasks);
  }
  return count;
}

// Waits (a generous bound, only to turn "never" into a failure) until `count` threads are
// called `name`: a thread names itself once it runs, a moment after it was started.
inline bool eventually_threads_named(const std::string& name, int count) {
  return eventually([&] { return threads_named(name) == count; });
}

} // namespace test_support

#endif // defined(__linux__)
#endif // SMARTASYNC_TESTS_COMMON_THREAD_NAMES_HPP
