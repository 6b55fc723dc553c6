// smartasync/detail/worker_park.hpp - where a pool's idle workers wait, spinning then parked.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_WORKER_PARK_HPP
#define SMARTASYNC_DETAIL_WORKER_PARK_HPP

#include "smartasync/config.hpp"
#include "smartasync/detail/admission_queue.hpp"
#include "smartasync/detail/pool_counters.hpp"
#include "smartasync/detail/pool_op.hpp"

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>

#if defined(__linux__)
#include <sys/resource.h>
#endif

namespace SMARTASYNC_NAMESPACE::detail {

// How often this thread was switched out while still runnable: preempted, or yielded to a
// thread that wanted its core. In a VM, time the host takes the virtual CPU away does not
// count, only threads of this machine competing for the core. Linux only; elsewhere 0.
inline long involuntary_switches() noexcept {
#if defined(__linux__) && defined(RUSAGE_THREAD)
  rusage usage{};
  if (getrusage(RUSAGE_THREAD, &usage) == 0)
    return usage.ru_nivcsw;
#endif
  return 0;
}

// The workers that have no operation: at most one spins, looking for the next operation
// without the lock (work that arrives within pool_options::spin_before_park is taken without
// a futex wake-up on either side); the others are parked on a condition variable, and a
// submission wakes one only if none is on its way already. Its counts are guarded by the pool
// lock (admission_queue::mutex()); every member with `_locked` expects it held.
class worker_park {
public:
  using clock = std::chrono::steady_clock;

  explicit worker_park(std::chrono::microseconds spin) noexcept
      : spin_(std::max(spin, std::chrono::microseconds::zero())) {}

  // A submission was admitted: true if the caller must wake a worker (wake_one(), once it has
  // released the lock). None when one is already on its way or spinning: a futex wake-up
  // costs the waker microseconds, and the submitter is usually an event loop; a burst pays for
  // one, and the woken worker passes the wake-up on while work remains.
  bool claim_wake_for_submission_locked() noexcept {
    const bool wake = waking_ == 0 && spinning_ == 0 && idle_ > 0;
    if (wake)
      ++waking_;
    return wake;
  }
  // A worker took an operation and more is queued: true if the caller must wake another.
  bool claim_wake_to_pass_on_locked() noexcept {
    const bool wake = waking_ == 0 && idle_ > 0;
    if (wake)
      ++waking_;
    return wake;
  }
  void wake_one() noexcept { work_cv_.notify_one(); }
  void wake_all() noexcept { work_cv_.notify_all(); }

  // May a worker that just finished an operation (at `finished`) spin for the next one?
  // One at a time, and not while spinning is suppressed on an oversubscribed machine.
  bool may_spin_locked(clock::time_point finished) const noexcept {
    return spin_.count() > 0 && spinning_ == 0 && finished >= spin_suppressed_until_;
  }

  // Looks for work without the lock until `queue` hints at some or the spin time has passed;
  // returns with the lock held again. Spinning that loses its core to another thread of this
  // machine stops all spinning for spin_backoff: it only delays the work it waits for.
  void spin_locked(std::unique_lock<std::mutex>& lock, const admission_queue& queue) noexcept {
    ++spinning_;
    lock.unlock();
    const bool lost_core = !spin_for_work(queue);
    admission_queue::lock_briefly(lock);
    --spinning_;
    if (lost_core)
      spin_suppressed_until_ = clock::now() + spin_backoff;
  }

  // Parks until woken (or `until`, when given); true if it timed out. The wake-up may be
  // spurious: the caller looks at the queue again.
  bool park_locked(std::unique_lock<std::mutex>& lock,
                   clock::time_point until = clock::time_point::max()) {
    ++idle_;
    bool timed_out = false;
    if (until == clock::time_point::max())
      work_cv_.wait(lock);
    else
      timed_out = work_cv_.wait_until(lock, until) == std::cv_status::timeout;
    --idle_;
    if (waking_ > 0) // ours, or another's if this wake-up was spurious: at worst one
      --waking_;     // notification too many later, never one too few
    return timed_out;
  }

  // A worker will take the queue's head without a new one: an idle one not yet being woken,
  // or the spinner.
  bool has_free_worker_locked() const noexcept { return idle_ > waking_ || spinning_ > 0; }
  // Workers woken that have not taken work yet.
  std::size_t waking_locked() const noexcept { return waking_; }
  std::size_t idle_locked() const noexcept { return idle_; }

  // On one of the pool's workers that must wait for something which may itself need this pool
  // (block_on of an awaitable that offloads here): runs queued operations while it waits, so
  // the pool cannot deadlock on its own blocked workers. `done` is read under the pool lock;
  // whoever makes it true does so under the lock and calls wake_all(). `parked(true)` and
  // `parked(false)`, under the lock, bracket each time it parks with nothing to run.
  template <typename Done, typename Parked>
  void help_until(admission_queue& queue, pool_counters& counters, Done done, Parked parked) {
    std::unique_lock lock(queue.mutex());
    while (!done()) {
      if (pool_op* op = queue.take_next_locked()) {
        lock.unlock();
        counters.start_running(op, clock::now());
        op->execute(); // drops the queue's reference
        lock.lock();
        continue;
      }
      parked(true);
      park_locked(lock);
      parked(false);
    }
  }

private:
  // Until work shows up or spin_ has passed. Between short bursts of pause instructions it
  // yields, so a thread waiting for this core gets it. False if another thread of this machine
  // ran on this core for about a scheduler time slice (an involuntary switch, and a gap between
  // two looks of lost_core_gap or more): then spinning only delays the work it waits for,
  // because a submission does not wake a worker while one spins. Shorter gaps are our own
  // threads passing through (the loop we just woke may land on this core and run for tens of
  // microseconds on a VM); a long gap without a switch is the hypervisor taking the virtual
  // CPU. Neither says anything about load.
  bool spin_for_work(const admission_queue& queue) const noexcept {
    const long switches = involuntary_switches();
    auto now = clock::now();
    const auto deadline = now + spin_;
    do {
      for (int i = 0; i < 64; ++i) {
        if (queue.work_hinted())
          return true;
        cpu_relax();
      }
      std::this_thread::yield();
      const auto before = now;
      now = clock::now();
      if (now - before >= lost_core_gap && involuntary_switches() != switches)
        return false;
    } while (now < deadline);
    return true;
  }

  // A spinner that lost its core stops all spinning for a while; then one spin probes again.
  static constexpr std::chrono::milliseconds spin_backoff{100};
  // Between our own threads' short runs on a spinner's core (up to ~150 us measured on a
  // 2-vCPU VM) and a CPU-bound competitor's time slice (~3 ms measured there, and at least
  // 0.75 ms on Linux's default settings).
  static constexpr std::chrono::microseconds lost_core_gap{500};

  const std::chrono::microseconds spin_;
  std::size_t idle_ = 0;
  std::size_t waking_ = 0;   // notified workers that have not woken yet
  std::size_t spinning_ = 0; // at most one
  clock::time_point spin_suppressed_until_{};
  std::condition_variable work_cv_;
};

} // namespace SMARTASYNC_NAMESPACE::detail

#endif // SMARTASYNC_DETAIL_WORKER_PARK_HPP
