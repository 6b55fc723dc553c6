// child_process.hpp - runs one of the example's programs as a child, for tests that need a real
// process: its exit status, its output, signals, and resource limits set before exec.
#ifndef SQLITE_SEARCH_TESTS_CHILD_PROCESS_HPP
#define SQLITE_SEARCH_TESTS_CHILD_PROCESS_HPP

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace sqlite_search::testing {

class child_process {
public:
  /// Starts `args` (args[0] is the program) with stdout and stderr in `output_file`; with
  /// `max_files`, RLIMIT_NOFILE is lowered to it in the child before exec.
  child_process(const std::vector<std::string>& args, std::filesystem::path output_file,
                std::optional<rlim_t> max_files = std::nullopt)
      : output_(std::move(output_file)) {
    std::vector<char*> argv;
    for (const auto& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ < 0)
      throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      // Only async-signal-safe calls between fork and exec.
      const int fd = ::open(output_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd < 0)
        ::_exit(127);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::close(fd);
      if (max_files) {
        const rlimit limit{*max_files, *max_files};
        if (::setrlimit(RLIMIT_NOFILE, &limit) != 0)
          ::_exit(126);
      }
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  ~child_process() {
    if (!exited_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }

  pid_t pid() const noexcept { return pid_; }
  void signal(int sig) const { ::kill(pid_, sig); }

  /// Waits for the exit; the exit status, 128 + N for signal N. A child still running after
  /// `limit` is killed and -1 returned (a hang fails the test instead of stalling it).
  int wait(std::chrono::seconds limit = std::chrono::seconds(30)) {
    const auto give_up = std::chrono::steady_clock::now() + limit;
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > give_up) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        exited_ = true;
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    exited_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  /// Everything the child wrote so far.
  std::string output() const {
    std::ifstream in(output_);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }

  /// Waits until the output contains `text` (true) or the child exits or `limit` passes (false).
  bool wait_for_output(const std::string& text, std::chrono::seconds limit = std::chrono::seconds(20)) {
    const auto give_up = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < give_up) {
      if (output().find(text) != std::string::npos)
        return true;
      int status = 0;
      if (!exited_ && ::waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return output().find(text) != std::string::npos;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

private:
  pid_t pid_ = -1;
  bool exited_ = false;
  std::filesystem::path output_;
};

/// Runs a program to completion: its exit status and output.
struct run_result {
  int status;
  std::string output;
};

inline run_result run(const std::vector<std::string>& args, const std::filesystem::path& output_file) {
  child_process child(args, output_file);
  const int status = child.wait();
  return {status, child.output()};
}

} // namespace sqlite_search::testing

#endif // SQLITE_SEARCH_TESTS_CHILD_PROCESS_HPP
