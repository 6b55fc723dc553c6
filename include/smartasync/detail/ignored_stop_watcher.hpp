// smartasync/detail/ignored_stop_watcher.hpp - reports running calls that ignore a stop request.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_IGNORED_STOP_WATCHER_HPP
#define SMARTASYNC_DETAIL_IGNORED_STOP_WATCHER_HPP

#include "smartasync/config.hpp"
#include "smartasync/detail/call_site.hpp"
#include "smartasync/detail/pool_op.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace SMARTASYNC_NAMESPACE::detail {

// Running calls that were asked to stop and whose callers wait for them to return
// (pool_options::report_ignored_stop_after). A call still running `after` its stop request is
// reported, then again each time its overrun doubles. The thread that times them starts on
// first need, so a pool whose calls all stop promptly never has one.
//
// An operation is identified only by its address, never touched: the worker that returns from
// it removes it (returned()) before it completes the operation.
class ignored_stop_watcher {
public:
  using clock = std::chrono::steady_clock;
  // Says that `who` is still running `overrun` after its stop request. Called on the watcher's
  // thread, without its lock; must not throw.
  using report_function = std::function<void(const call_identity& who, clock::duration overrun)>;

  // Zero or less `after`: watches nothing, reports nothing.
  ignored_stop_watcher(std::chrono::milliseconds after, report_function report)
      : after_(after), report_(std::move(report)) {}
  ignored_stop_watcher(const ignored_stop_watcher&) = delete;
  ignored_stop_watcher& operator=(const ignored_stop_watcher&) = delete;
  ~ignored_stop_watcher() { stop(); }

  // `op` was asked to stop and keeps running: watch it until returned(op).
  // Precondition: the caller holds a reference to `op` for the duration of the call.
  void watch(const pool_op* op, call_identity who) noexcept {
    if (after_ <= std::chrono::milliseconds::zero())
      return;
    const auto now = clock::now();
    std::lock_guard lock(mutex_);
    if (stopping_)
      return;
    try {
      if (!thread_.joinable())
        thread_ = std::thread([this] { run(); });
      watched_.push_back({op, who, now, now + after_});
    } catch (...) {
      return; // no thread, no memory: the call is still waited for, only not reported
    }
    cv_.notify_one();
  }

  // On the worker, after a call that was asked to stop has returned.
  void returned(const pool_op* op) noexcept {
    if (after_ <= std::chrono::milliseconds::zero())
      return;
    std::lock_guard lock(mutex_);
    std::erase_if(watched_, [&](const watched_stop& w) { return w.op == op; });
  }

  // Ends the watching thread and joins it; later watch() calls do nothing. Called once the
  // pool's workers are joined (every watched operation has returned).
  void stop() noexcept {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable())
      thread_.join();
  }

  // How many calls are watched now.
  std::size_t watched() const {
    std::lock_guard lock(mutex_);
    return watched_.size();
  }

private:
  struct watched_stop {
    const pool_op* op;
    call_identity who;
    clock::time_point stop_requested_at, report_at;
  };

  void run() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      auto wake_at = clock::time_point::max();
      std::vector<std::pair<call_identity, clock::duration>> due;
      const auto now = clock::now();
      for (watched_stop& w : watched_) {
        if (now >= w.report_at) {
          const auto overrun = now - w.stop_requested_at;
          due.emplace_back(w.who, overrun);
          w.report_at = now + overrun; // the next report when the overrun has doubled
        }
        wake_at = std::min(wake_at, w.report_at);
      }
      if (!due.empty()) {
        lock.unlock();
        for (const auto& [who, overrun] : due)
          report_(who, overrun);
        lock.lock();
        continue;
      }
      if (wake_at == clock::time_point::max())
        cv_.wait(lock);
      else
        cv_.wait_until(lock, wake_at);
    }
  }

  const std::chrono::milliseconds after_;
  const report_function report_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<watched_stop> watched_;
  bool stopping_ = false;
  std::thread thread_;
};

} // namespace SMARTASYNC_NAMESPACE::detail

#endif // SMARTASYNC_DETAIL_IGNORED_STOP_WATCHER_HPP
