// smartasync/detail/admission_queue.hpp - a pool's bounded FIFO, with its admission rules.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_ADMISSION_QUEUE_HPP
#define SMARTASYNC_DETAIL_ADMISSION_QUEUE_HPP

#include "smartasync/config.hpp"
#include "smartasync/detail/pool_op.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace SMARTASYNC_NAMESPACE::detail {

// Tells the core this is a spin-wait (saves power, frees resources for a sibling hyperthread).
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// What became of a submission.
enum class admission { accepted, queue_full, stopped };

// The pool's queue of operations and the lock that guards it, which is the pool lock: the
// workers' parking state and the grower's state (worker_park, worker_threads) are guarded by
// it too, so that a submission and the worker that takes it meet under one lock.
//
// The first `capacity` operations are admitted: they are the ones workers take. Beyond them a
// submission is rejected (reject policy) or linked anyway and waits for admission in FIFO
// order: a thread that may block waits in submit() until its operation is admitted; an event
// loop's operation waits in the queue without blocking anyone ("parked"). `boundary_` is the
// first operation waiting for admission; each admitted operation that leaves admits it.
class alignas(cache_line_size) admission_queue {
public:
  admission_queue(std::size_t capacity, bool reject_when_full) noexcept
      : reject_when_full_(reject_when_full), capacity_(capacity) {}

  std::mutex& mutex() const noexcept { return mutex_; }
  std::size_t capacity() const noexcept { return capacity_; }

  // The submitters (usually an event loop) and the workers hold the lock for a few dozen
  // nanoseconds at a time, so when they collide, retrying briefly is far cheaper than what
  // std::mutex does at once: sleep in the kernel, and make the holder pay a futex wake-up.
  static void lock_briefly(std::unique_lock<std::mutex>& lock) {
    for (int i = 0; i < 100; ++i) {
      if (lock.try_lock())
        return;
      cpu_relax();
    }
    lock.lock();
  }

  // Links `op` into the FIFO; once accepted, the queue owns the caller's reference.
  // `may_block`: the submitting thread is no event loop, so beyond the capacity it waits for
  // admission instead of parking the operation (unless rejected). `bypass_reject`: the
  // operation was accepted already by someone with its own bound (a serial_lane passing its
  // turn on), so the reject policy does not apply: beyond the capacity it parks.
  // `on_admitted(lock)` runs with the lock held when `op` was admitted at once (someone should
  // take it); it must release the lock.
  template <typename OnAdmitted>
  admission submit(pool_op* op, bool may_block, bool bypass_reject, OnAdmitted&& on_admitted) {
    std::unique_lock lock(mutex_, std::defer_lock);
    lock_briefly(lock);
    ++submitted_; // every submission has exactly one outcome, a rejection included
    const bool admitted = queue_.size() < capacity_;
    if (closed_ || (!admitted && reject_when_full_ && !bypass_reject))
      return closed_ ? admission::stopped : admission::queue_full;
    // From here the queue owns the caller's reference to `op`: dropped by the worker
    // (pool_op::execute) or the canceller.
    op->state_.store(op_state::queued, std::memory_order_relaxed);
    op->admitted_ = admitted;
    queue_.push_back(op);
    if (!admitted) {
      // Beyond the capacity: it waits for admission in FIFO order, whoever submitted it, so
      // a blocked thread is not overtaken forever by an event loop's parked operations.
      if (!boundary_)
        boundary_ = op;
      if (may_block)
        wait_for_admission(lock, op);
      return admission::accepted;
    }
    set_work_hint(true);
    on_admitted(lock);
    return admission::accepted;
  }

  // Under the lock: takes the next operation to run (for a worker, or a worker helping while
  // it waits), or null when the queue is empty. It counts as started.
  pool_op* take_next_locked() noexcept {
    pool_op* op = queue_.pop_front();
    if (!op)
      return nullptr;
    set_work_hint(!queue_.empty());
    op->state_.store(op_state::running, std::memory_order_release);
    admit_next_locked();
    ++started_;
    return op;
  }

  // Unlinks `op` if it is still queued; true if it was (the caller then owns its handler).
  // Drops the queue's reference; the caller holds its own.
  // `on_removed` runs under the lock once it is unlinked (to count it before a shutdown, which
  // needs the lock, can see the queue empty).
  template <typename OnRemoved>
  bool try_remove(pool_op* op, OnRemoved on_removed) {
    {
      std::lock_guard lock(mutex_);
      if (op->state_.load(std::memory_order_relaxed) != op_state::queued)
        return false;
      if (op == boundary_)
        boundary_ = op->next_;
      queue_.unlink(op);
      on_removed();
      if (op->admitted_)
        admit_next_locked();
      set_work_hint(queue_.size() > 0);
      op->state_.store(op_state::cancelled, std::memory_order_release);
      if (blocked_submitters_ > 0)
        space_cv_.notify_all(); // it may be a blocked submitter's own operation
    }
    op->release();
    return true;
  }

  // Stops accepting submissions (they return admission::stopped from now on) and wakes the
  // blocked submitters. With `cancel`, empties the queue: the caller completes what it gets
  // (each marked cancelled, each still holding the queue's reference); without, admits what
  // is parked, which the workers then drain.
  op_queue close(bool cancel) {
    op_queue removed;
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
      if (cancel)
        while (pool_op* op = queue_.pop_front()) {
          op->state_.store(op_state::cancelled, std::memory_order_release);
          removed.push_back(op);
        }
      // Draining runs every queued operation, the parked ones too: admit them now, or their
      // blocked submitters would wait for a notification that never comes (with the boundary
      // gone, no worker taking one admits the next).
      for (pool_op* op = boundary_; op; op = op->next_)
        op->admitted_ = true;
      boundary_ = nullptr; // what is left is run, parked or not
      set_work_hint(!queue_.empty());
    }
    space_cv_.notify_all();
    return removed;
  }

  // A nested call runs inline on the worker that makes it: submitted and started at once.
  void count_inline_start() {
    std::lock_guard lock(mutex_);
    ++submitted_;
    ++started_;
  }

  // Under the lock.
  bool closed_locked() const noexcept { return closed_; }
  bool empty_locked() const noexcept { return queue_.empty(); }
  std::size_t size_locked() const noexcept { return queue_.size(); }
  pool_op* front_locked() const noexcept { return queue_.front(); }
  // Queued operations a worker may take now (the parked ones wait for admission).
  std::size_t admitted_locked() const noexcept { return std::min(queue_.size(), capacity_); }

  struct counts {
    std::size_t admitted = 0, parked = 0, blocked_submitters = 0;
    std::uint64_t submitted = 0, started = 0;
  };
  counts counts_locked() const noexcept {
    const std::size_t admitted = admitted_locked();
    return {admitted, queue_.size() - admitted, blocked_submitters_, submitted_, started_};
  }

  // !empty, for a worker spinning outside the lock: alone on its cache line, so that polling
  // it does not contend with the lock, the queue or the counts.
  bool work_hinted() const noexcept { return work_hint_.load(std::memory_order_relaxed); }

private:
  // Beyond the capacity, on a thread that may block: waits until `op` is admitted, or leaves
  // the queue (cancelled, shut down).
  void wait_for_admission(std::unique_lock<std::mutex>& lock, pool_op* op) {
    op->add_ref(); // the queue's reference may be dropped by a canceller while we look at it
    ++blocked_submitters_;
    space_cv_.wait(lock, [&] {
      return op->admitted_ || op->state_.load(std::memory_order_relaxed) != op_state::queued;
    });
    --blocked_submitters_;
    lock.unlock();
    op->release();
  }

  // An admitted operation left the queue: the first one waiting for admission takes its place.
  void admit_next_locked() {
    pool_op* op = boundary_;
    if (!op)
      return;
    op->admitted_ = true;
    boundary_ = op->next_;
    if (blocked_submitters_ > 0)
      space_cv_.notify_all(); // the blocked submitter of `op`, if it has one, may return
  }

  // Writes only on a change: a spinner polls this cache line.
  void set_work_hint(bool available) noexcept {
    if (work_hint_.load(std::memory_order_relaxed) != available)
      work_hint_.store(available, std::memory_order_relaxed);
  }

  // What every submission and every take writes comes first, on the mutex's own cache line
  // (40 + 16 + 8 bytes with glibc); what changes rarely follows.
  mutable std::mutex mutex_;
  op_queue queue_;
  std::uint64_t submitted_ = 0;
  std::uint64_t started_ = 0; // taken by a worker, or run inline by a nested call
  pool_op* boundary_ = nullptr;
  std::size_t blocked_submitters_ = 0;
  bool closed_ = false;
  const bool reject_when_full_;
  const std::size_t capacity_;
  std::condition_variable space_cv_; // blocked submitters wait for admission

  alignas(cache_line_size) std::atomic<bool> work_hint_{false};
};

} // namespace SMARTASYNC_NAMESPACE::detail

#endif // SMARTASYNC_DETAIL_ADMISSION_QUEUE_HPP
