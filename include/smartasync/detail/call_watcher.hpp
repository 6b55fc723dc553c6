// smartasync/detail/call_watcher.hpp - reports running calls that take too long, on one thread.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_CALL_WATCHER_HPP
#define SMARTASYNC_DETAIL_CALL_WATCHER_HPP

#include "smartasync/config.hpp"
#include "smartasync/detail/call_site.hpp"
#include "smartasync/detail/pool_op.hpp"
#include "smartasync/detail/thread_name.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace SMARTASYNC_NAMESPACE::detail {

// A call a pool worker has been running for longer than the slow-call threshold.
struct slow_call {
  call_identity who{};
  std::thread::id thread{};
  std::chrono::steady_clock::duration running{};
};

// One thread that watches a pool's running calls for two reasons:
//
// - Cancelled calls whose callers wait for them to return (pool_options::
//   report_ignored_stop_after): one still running `after` its stop request is reported, then
//   again each time its overrun doubles. The pool hands them over (watch) and takes them back
//   (returned); an operation is identified only by its address, never touched.
// - Calls that simply run long (pool_options::report_slow_call_after): the pool keeps what each
//   worker runs and since when (running_calls); the watcher asks it to look (`scan`) when the
//   earliest running call reaches the threshold, and each call found past it is reported.
//   While no call runs, the scan says so (time_point::max()) and the watcher sleeps until the
//   pool says a call started (calls_started), so an idle pool costs no wake-up.
//
// The thread starts on first need, so a pool whose calls never run never has one.
class call_watcher {
public:
  using clock = std::chrono::steady_clock;
  // Says that `who` is still running `overrun` after its stop request. Called on the watcher's
  // thread, without its lock; must not throw.
  using report_function = std::function<void(const call_identity& who, clock::duration overrun)>;
  // Looks at the running calls (`now` is the time of the look): appends those running past the
  // slow-call threshold, each once, to `due`, and returns when to look again
  // (time_point::max(): when calls_started() says so). Called on the watcher's thread, without
  // its lock; must not throw.
  using scan_function = std::function<clock::time_point(clock::time_point now,
                                                        std::vector<slow_call>& due)>;
  // Says that a call has been running past the threshold. On the watcher's thread, without its
  // lock; must not throw.
  using slow_report_function = std::function<void(const slow_call&)>;

  // Zero or less `after`: watches no ignored stop. An empty `scan`: watches no slow call.
  call_watcher(std::chrono::milliseconds after, report_function report,
               scan_function scan = {}, slow_report_function report_slow = {})
      : after_(after), report_(std::move(report)), scan_(std::move(scan)),
        report_slow_(std::move(report_slow)) {}
  call_watcher(const call_watcher&) = delete;
  call_watcher& operator=(const call_watcher&) = delete;
  ~call_watcher() { stop(); }

  // `op` was asked to stop and keeps running: watch it until returned(op).
  // Precondition: the caller holds a reference to `op` for the duration of the call.
  void watch(const pool_op* op, call_identity who) noexcept {
    if (after_ <= std::chrono::milliseconds::zero())
      return;
    const auto now = clock::now();
    std::lock_guard lock(mutex_);
    if (stopping_ || !start_locked())
      return; // no thread: the call is still waited for, only not reported
    try {
      watched_.push_back({op, who, now, now + after_});
    } catch (...) {
      return;
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

  // A call started while the watcher was waiting for one (the last scan found none): look
  // again. On a worker, outside the pool lock.
  void calls_started() noexcept {
    if (!scan_)
      return;
    std::lock_guard lock(mutex_);
    if (stopping_ || !start_locked())
      return;
    scan_requested_ = true;
    cv_.notify_one();
  }

  // Ends the watching thread and joins it; later calls do nothing. Called once the pool's
  // workers are joined (every watched operation has returned), or at exit.
  void stop() noexcept {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable())
      thread_.join();
  }

  // How many calls are watched now for an ignored stop.
  std::size_t watched() const {
    std::lock_guard lock(mutex_);
    return watched_.size();
  }

  // How many times the watcher has woken up to look at the running calls (for tests: an idle
  // pool adds none).
  std::uint64_t scans() const noexcept { return scans_.load(std::memory_order_relaxed); }

private:
  struct watched_stop {
    const pool_op* op;
    call_identity who;
    clock::time_point stop_requested_at, report_at;
  };

  // Under mutex_: the thread runs, or is started now. False when none can be had.
  bool start_locked() noexcept {
    if (thread_.joinable())
      return true;
    try {
      thread_ = std::thread([this] { run(); });
      return true;
    } catch (...) {
      return false;
    }
  }

  void run() {
    name_this_thread(watcher_thread_name);
    std::unique_lock lock(mutex_);
    auto next_scan = clock::time_point::max();
    std::vector<slow_call> slow;
    while (!stopping_) {
      auto now = clock::now();
      if (scan_ && (scan_requested_ || now >= next_scan)) {
        scan_requested_ = false;
        lock.unlock();
        scans_.fetch_add(1, std::memory_order_relaxed);
        slow.clear();
        next_scan = scan_(now, slow);
        for (const slow_call& call : slow)
          report_slow_(call);
        lock.lock();
        continue;
      }
      auto wake_at = next_scan;
      std::vector<std::pair<call_identity, clock::duration>> due;
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
  const scan_function scan_;
  const slow_report_function report_slow_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<watched_stop> watched_;
  bool scan_requested_ = false;
  bool stopping_ = false;
  std::atomic<std::uint64_t> scans_{0};
  std::thread thread_;
};

} // namespace SMARTASYNC_NAMESPACE::detail

#endif // SMARTASYNC_DETAIL_CALL_WATCHER_HPP
