// smartasync/detail/pool_core.hpp - a blocking_pool's parts, and what its operations see of it.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_POOL_CORE_HPP
#define SMARTASYNC_DETAIL_POOL_CORE_HPP

#include "smartasync/config.hpp"
#include "smartasync/this_thread.hpp"
#include "smartasync/detail/admission_queue.hpp"
#include "smartasync/detail/call_site.hpp"
#include "smartasync/detail/call_watcher.hpp"
#include "smartasync/detail/pool_counters.hpp"
#include "smartasync/detail/pool_op.hpp"
#include "smartasync/detail/running_calls.hpp"
#include "smartasync/detail/worker_park.hpp"
#include "smartasync/detail/worker_threads.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <stop_token>
#include <vector>

namespace SMARTASYNC_NAMESPACE {

class blocking_pool;

namespace detail {

// What outlives a pool, for whoever may still reach for it once it is destroyed:
// - an operation's cancellation handler stays installed until its completion runs on the
//   caller's executor, which may be after the pool was shut down and destroyed (a timer firing
//   in that window): it takes `mutex` and looks at `pool`;
// - a smart_async wrapper may outlive its pool: its async form looks at `pool` before it
//   submits, and completes with error::pool_stopped once the pool is gone.
// The pool clears `pool` under `mutex` when it is destroyed, after it has completed every
// operation. (Atomic for the wrapper's unlocked look; a wrapper used concurrently with the
// pool's destruction is a race in the program, as any use of a pool being destroyed is.)
struct pool_lifeline {
  explicit pool_lifeline(blocking_pool* p) noexcept : pool(p) {}
  std::mutex mutex;
  std::atomic<blocking_pool*> pool;
};

// The parts of a blocking_pool (blocking_pool.hpp composes them and runs the workers), and the
// interface its operations (detail/offload_op.hpp) use: submit, remove, count, watch. An
// operation holds a pointer to this, never to the pool, so that nothing below the public
// headers needs blocking_pool's definition.
class pool_core {
public:
  pool_core(blocking_pool* owner, std::size_t queue_capacity, bool reject_when_full,
            std::chrono::microseconds spin, std::size_t min_threads, std::size_t max_threads,
            std::chrono::microseconds grow_after, std::chrono::milliseconds keep_alive,
            std::chrono::milliseconds report_ignored_stop_after,
            call_watcher::report_function report,
            std::chrono::milliseconds report_slow_call_after = {},
            call_watcher::slow_report_function report_slow = {})
      : owner_(owner), lifeline_(std::make_shared<pool_lifeline>(owner)),
        queue(queue_capacity, reject_when_full), park(spin),
        threads(min_threads, max_threads, grow_after, keep_alive),
        calls(threads.max()),
        watcher(report_ignored_stop_after, std::move(report),
                slow_scan(report_slow_call_after), std::move(report_slow)) {
    if (report_slow_call_after > std::chrono::milliseconds::zero()) {
      std::lock_guard lock(queue.mutex());
      calls.watch_slow_calls_locked();
    }
  }

  // --- For operations.

  // Links `op` into the FIFO (see admission_queue::submit) and wakes a worker, or arms the
  // grower, for it. `from_lane`: a serial_lane passes its turn on (the reject policy does not
  // apply). Counts a refusal.
  admission submit(pool_op* op, bool may_block, bool from_lane = false) {
    // Every operation's queue wait is measured (an undersized pool shows in a burst of a few
    // calls); read outside the lock, which the workers need too.
    op->enqueued_at_ = std::chrono::steady_clock::now();
    const admission result =
        queue.submit(op, may_block, from_lane, [this](std::unique_lock<std::mutex>& lock) {
          // A spinning worker, or one already woken, takes it without a wake-up (worker_park).
          const bool wake = park.claim_wake_for_submission_locked();
          const bool arm_grower = threads.arm_grower_if_needed_locked();
          lock.unlock();
          if (wake)
            park.wake_one();
          if (arm_grower)
            threads.wake_grower();
        });
    if (result != admission::accepted)
      counters.note_rejected();
    return result;
  }

  // Unlinks `op` if it is still queued; true if it was (the caller then owns its handler). Its
  // outcome is counted under the pool lock, cancelled or (`expired`) expired: a shutdown that
  // finds the queue empty then also finds it counted.
  bool try_remove(pool_op* op, bool expired) {
    return queue.try_remove(op, [&] {
      expired ? counters.note_expired(/*taken=*/false) : counters.note_cancelled();
    });
  }

  // A nested call runs inline on the worker that makes it; it is counted as submitted and
  // started like any other.
  void note_nested_start(pool_op* op) {
    op->enqueued_at_ = std::chrono::steady_clock::now(); // its start: it never queues
    queue.count_inline_start();
  }
  void note_returned(const pool_op* op) noexcept { counters.note_returned(op); }
  void note_finished(bool failed) noexcept { counters.note_finished(failed); }
  void note_cancelled() noexcept { counters.note_cancelled(); }
  void note_timed_out() noexcept { counters.note_timed_out(); }
  void note_expired(bool taken) noexcept { counters.note_expired(taken); }
  void note_returned_unrun() noexcept { counters.note_returned_unrun(); }

  // A running operation was asked to stop and its caller waits for it to return: watch it,
  // and report it while it keeps running (pool_options::report_ignored_stop_after).
  void watch_ignored_stop(const pool_op* op, call_identity who) noexcept {
    watcher.watch(op, who);
  }
  // On the worker, after a call that was asked to stop has returned.
  void stopped_call_returned(const pool_op* op) noexcept { watcher.returned(op); }

  // Stopped by shutdown(cancel), seen by stop-aware callables.
  std::stop_token stop_token() const noexcept { return stop_source.get_token(); }
  const std::shared_ptr<pool_lifeline>& lifeline() const noexcept { return lifeline_; }
  // This thread is one of the pool's workers.
  bool is_current() const noexcept { return current_pool_ == owner_; }
  blocking_pool* owner() const noexcept { return owner_; }

private:
  // The watcher's look at the running calls: under the pool lock, a few loads per worker.
  // Empty (nothing watched) for a threshold of zero.
  call_watcher::scan_function slow_scan(std::chrono::milliseconds threshold) {
    if (threshold <= std::chrono::milliseconds::zero())
      return {};
    return [this, threshold](std::chrono::steady_clock::time_point now,
                             std::vector<slow_call>& due) {
      std::lock_guard lock(queue.mutex());
      return calls.scan_locked(now, threshold, due);
    };
  }

  blocking_pool* const owner_;
  const std::shared_ptr<pool_lifeline> lifeline_;

public:
  // --- The parts, for the pool that composes them (see docs/design.md, the pool's map).
  // Laid out so that the submitters' side and the workers' side do not share cache lines
  // beyond the lock and the queue, which they share by necessity.

  std::stop_source stop_source;
  admission_queue queue;               // the FIFO and the pool lock
  worker_park park;                    // the workers without an operation
  worker_threads threads;              // started, grown, retired, joined
  running_calls calls;                 // the call each worker is in, and since when
  pool_counters counters;              // outcomes and timings
  call_watcher watcher;                // slow calls, and cancelled calls that keep running
};

// The core of a pool destroyed from inside a call on this worker (~blocking_pool): the worker
// still counts and delivers that call's outcome through it, and frees it as it leaves its loop.
// A plain pointer, not a smart one: a pool destroyed at exit (std::exit inside a call) may run
// after this thread's thread_local destructors.
inline thread_local pool_core* orphaned_core_ = nullptr;

// How the library's own code reaches a pool's core (offload_op, smart_async's wrappers).
// Defined in blocking_pool.hpp, which every caller with a blocking_pool includes.
struct pool_access {
  static pool_core& core(blocking_pool& pool) noexcept;
  static const pool_core& core(const blocking_pool& pool) noexcept;
  static std::shared_ptr<pool_lifeline> lifeline(const blocking_pool& pool);
};

} // namespace detail
} // namespace SMARTASYNC_NAMESPACE

#endif // SMARTASYNC_DETAIL_POOL_CORE_HPP
