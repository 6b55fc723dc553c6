// Shared helpers for smartasync's tests.
#ifndef SMARTASYNC_TESTS_COMMON_TEST_SUPPORT_HPP
#define SMARTASYNC_TESTS_COMMON_TEST_SUPPORT_HPP

#include <smartasync/diagnostics.hpp>

#include <condition_variable>
#include <mutex>
#include <vector>

namespace test_support {

// A one-shot gate: threads wait() until someone open()s it. Lets tests hold a pool worker
// busy for exactly as long as they need, with no sleeps.
class gate {
public:
  // Notifies under the lock: once a waiter has returned, open() no longer touches the gate, so
  // the waiter may destroy it at once.
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return open_; });
  }
  bool is_open() {
    std::lock_guard lock(mutex_);
    return open_;
  }

private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Collects diagnostics for the lifetime of the object, then restores the previous handler.
class diagnostics_capture {
public:
  diagnostics_capture()
      : previous_(smartasync::set_diagnostics_handler([this](const smartasync::diagnostic& d) {
          std::lock_guard lock(mutex_);
          reports_.push_back(d);
        })) {}
  ~diagnostics_capture() { smartasync::set_diagnostics_handler(previous_); }
  diagnostics_capture(const diagnostics_capture&) = delete;
  diagnostics_capture& operator=(const diagnostics_capture&) = delete;

  std::vector<smartasync::diagnostic> reports() {
    std::lock_guard lock(mutex_);
    return reports_;
  }

private:
  std::mutex mutex_;
  std::vector<smartasync::diagnostic> reports_;
  smartasync::diagnostics_handler previous_;
};

} // namespace test_support

#endif // SMARTASYNC_TESTS_COMMON_TEST_SUPPORT_HPP
