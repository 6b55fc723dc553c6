// smartasync/detail/running_calls.hpp - which call each of a pool's workers is in, and since when.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_RUNNING_CALLS_HPP
#define SMARTASYNC_DETAIL_RUNNING_CALLS_HPP

#include "smartasync/config.hpp"
#include "smartasync/detail/call_site.hpp"
#include "smartasync/detail/call_watcher.hpp"
#include "smartasync/detail/pool_op.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

namespace SMARTASYNC_NAMESPACE::detail {

// One record per worker slot: the call the worker is in, for the slow-call scan (the call
// watcher's, detail/call_watcher.hpp) and for naming the calls still running at exit
// (worker_threads::join_at_exit).
//
// Everything is guarded by the pool lock (`_locked` members), except each call's start time:
// its worker stores it outside the lock, on the slot's own cache line.
class running_calls {
public:
  using clock = std::chrono::steady_clock;

  explicit running_calls(std::size_t slots) : slots_(slots) {}

  // --- On worker `slot`, around each call.

  // What the worker runs from now on. True when the caller must tell the call watcher, once it
  // has released the pool lock, that a call started (the watcher waits for one: scan_locked).
  bool running_locked(std::size_t slot, const pool_op& op) noexcept {
    slot_record& r = slots_[slot];
    r.busy = true;
    op.identify(r.who);
    ++r.call;
    r.thread = std::this_thread::get_id();
    // Unknown until started(): a scan meanwhile counts the call as starting now.
    r.started.store(0, std::memory_order_relaxed);
    if (!watcher_waits_)
      return false; // read only: the line stays shared between the workers
    watcher_waits_ = false;
    return true;
  }
  // Outside the pool lock: the call started at `at` (the pool's one clock read for the
  // operation), and then returned. A word of the slot's own line each: the scan reads them
  // under the pool lock, where running_locked's reset is visible to it, so it never pairs a
  // call with an earlier call's start.
  void started(std::size_t slot, clock::time_point at) noexcept {
    slots_[slot].started.store(at.time_since_epoch().count(), std::memory_order_relaxed);
  }
  void returned(std::size_t slot) noexcept {
    slots_[slot].started.store(returned_mark, std::memory_order_relaxed);
  }
  void idle_locked(std::size_t slot) noexcept { slots_[slot].busy = false; }

  // The call worker `slot` is in, if any (join_at_exit's report).
  bool busy_locked(std::size_t slot) const noexcept { return slots_[slot].busy; }
  const call_identity& who_locked(std::size_t slot) const noexcept { return slots_[slot].who; }

  // --- The slow-call watch.

  // Calls are watched: the first call to start wakes the watcher (running_locked).
  void watch_slow_calls_locked() noexcept { watcher_waits_ = true; }
  // Appends to `due` each running call that has run `threshold` by `now` and was not reported
  // yet, marking it reported; returns when the next running call reaches the threshold, or
  // time_point::max() when none is running that was not reported (the next call to start then
  // wakes the watcher).
  clock::time_point scan_locked(clock::time_point now, clock::duration threshold,
                                std::vector<slow_call>& due) {
    auto next = clock::time_point::max();
    for (slot_record& r : slots_) {
      if (!r.busy || r.reported == r.call)
        continue;
      const clock::rep start = r.started.load(std::memory_order_relaxed);
      if (start == returned_mark)
        continue; // returned: the worker is on its way to idle_locked
      const clock::time_point since = start == 0 ? now : clock::time_point(clock::duration(start));
      if (now - since >= threshold) {
        r.reported = r.call;
        due.push_back({r.who, r.thread, now - since});
        continue;
      }
      next = std::min(next, since + threshold);
    }
    watcher_waits_ = next == clock::time_point::max();
    return next;
  }
  // Calls that ran past the slow-call threshold, ever (each counted once, by the watcher,
  // after its report went to the diagnostics hook or was held back by the rate limit: whoever
  // sees the count sees the report). Any thread, no lock.
  void count_slow_call() noexcept { slow_calls_.fetch_add(1, std::memory_order_release); }
  std::uint64_t slow_calls() const noexcept { return slow_calls_.load(std::memory_order_acquire); }

private:
  // A line of its own: its worker writes `started` outside the pool lock on every call.
  struct alignas(cache_line_size) slot_record {
    bool busy = false;          // pool lock
    call_identity who{};        // pool lock
    std::uint64_t call = 0;     // pool lock: calls started in the slot
    std::uint64_t reported = 0; // pool lock: the last one the scan found slow
    std::thread::id thread{};   // pool lock
    // When the call started (steady_clock ticks); 0 until known, returned_mark once returned.
    std::atomic<clock::rep> started{0};
  };
  static constexpr clock::rep returned_mark = -1;

  std::vector<slot_record> slots_;
  bool watcher_waits_ = false; // pool lock: the call watcher waits for a call to start
  std::atomic<std::uint64_t> slow_calls_{0};
};

} // namespace SMARTASYNC_NAMESPACE::detail

#endif // SMARTASYNC_DETAIL_RUNNING_CALLS_HPP
