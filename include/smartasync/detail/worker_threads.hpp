// smartasync/detail/worker_threads.hpp - a pool's worker threads: started, grown, retired, joined.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_WORKER_THREADS_HPP
#define SMARTASYNC_DETAIL_WORKER_THREADS_HPP

#include "smartasync/config.hpp"
#include "smartasync/detail/admission_queue.hpp"
#include "smartasync/detail/call_site.hpp"
#include "smartasync/detail/running_calls.hpp"
#include "smartasync/detail/thread_name.hpp"
#include "smartasync/detail/worker_park.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace SMARTASYNC_NAMESPACE::detail {

// The pool's threads, one per slot, max slots. A fixed pool (max == min) starts min workers
// for its life. An elastic one has a grower thread: while work is queued and no worker is free
// for it, it waits for the oldest operation to have waited grow_after, then starts a worker
// per queued operation, up to max; a worker idle for keep_alive beyond the minimum retires
// (retire_locked) and its slot is reused. Workers are started on the grower, never on the
// submitting thread, which is usually an event loop.
//
// Counts are guarded by the pool lock (`_locked` members); join_mutex_ guards the slots'
// std::thread objects, and is never taken under the pool lock. Which call each slot's worker
// is in is running_calls' (detail/running_calls.hpp).
class worker_threads {
public:
  using clock = std::chrono::steady_clock;
  // Runs on each worker thread, with its slot: the pool's worker loop.
  using worker_main = std::function<void(std::size_t slot)>;

  worker_threads(std::size_t min, std::size_t max, std::chrono::microseconds grow_after,
                 std::chrono::milliseconds keep_alive)
      : min_(min), max_(std::max(min, max)), elastic_(max_ > min_),
        grow_after_(std::max(grow_after, std::chrono::microseconds::zero())),
        keep_alive_(std::max(keep_alive, std::chrono::milliseconds::zero())), workers_(max_),
        retired_(elastic_ ? std::make_unique<std::atomic<bool>[]>(max_) : nullptr) {}

  // Starts the minimum and, in an elastic pool, the grower. Throws what std::thread throws; the
  // caller then shuts down (stop_grower, join) the threads started so far.
  void start(admission_queue& queue, worker_park& park, worker_main main) {
    queue_ = &queue;
    park_ = &park;
    main_ = std::move(main);
    std::lock_guard lock(join_mutex_);
    for (std::size_t slot = 0; slot < min_; ++slot) {
      {
        std::lock_guard count_lock(queue.mutex());
        ++starting_;
      }
      workers_[slot] = std::thread([this, slot] { run_worker(slot); });
      threads_.fetch_add(1, std::memory_order_relaxed);
    }
    if (elastic_)
      grower_ = std::thread([this] { grow_loop(); });
  }

  bool elastic() const noexcept { return elastic_; }
  std::size_t min() const noexcept { return min_; }
  std::size_t max() const noexcept { return max_; }
  // Live workers.
  std::size_t count() const noexcept { return threads_.load(std::memory_order_acquire); }

  // --- On a worker, under the pool lock.

  // The worker reached its loop, to take work (the grower counts on it until then).
  void arrived_locked() noexcept { --starting_; }
  // An idle worker may retire after keep_alive (elastic pools, above the minimum).
  bool may_retire_locked() const noexcept {
    return elastic_ && threads_.load(std::memory_order_relaxed) > min_;
  }
  clock::time_point retire_at(clock::time_point idle_since) const noexcept {
    return idle_since + keep_alive_;
  }
  // Worker `slot` leaves, idle beyond its keep-alive. Its thread returns without touching the
  // pool again; the grower or shutdown joins it.
  void retire_locked(std::size_t slot) noexcept {
    threads_.fetch_sub(1, std::memory_order_release);
    ++retired_count_;
    retired_[slot].store(true, std::memory_order_release);
  }
  // The worker leaves its loop: the pool is stopping and drained.
  void exited_locked() noexcept {
    ++exited_;
    exit_cv_.notify_all();
  }
  // A worker inside a call starts (true) or stops (false) waiting, with nothing of the pool's
  // to run, for what its call needs: a lane's turn, a nested call, a block_on.
  void waiting_in_call_locked(bool waiting) noexcept {
    if (waiting) {
      ++waiting_in_call_;
      exit_cv_.notify_all();
    } else {
      --waiting_in_call_;
    }
  }

  // Work is queued (or about to be) and no worker is free to take it: arms the grower of an
  // elastic pool that may still grow; true if the caller must wake_grower() once it has
  // released the pool lock.
  bool arm_grower_if_needed_locked() noexcept {
    if (!elastic_ || grower_armed_ || park_->has_free_worker_locked() ||
        threads_.load(std::memory_order_relaxed) >= max_)
      return false;
    grower_armed_ = true;
    return true;
  }
  void wake_grower() noexcept { grow_cv_.notify_one(); }

  std::uint64_t added_locked() const noexcept { return added_; }
  std::uint64_t retired_locked() const noexcept { return retired_count_; }

  // --- Shutting down (the queue is closed first).

  // Joins the grower: it starts no worker once the queue is closed, and a worker it started is
  // in its slot by the time it returns. Before join_mutex_, which the grower takes.
  void stop_grower() {
    grow_cv_.notify_all();
    std::lock_guard lock(grower_join_mutex_);
    if (grower_.joinable())
      grower_.join();
  }
  // The thread in `slot` (a default id when the slot holds none): a one-thread pool's thread
  // is known once start() has returned, without a round trip through the queue.
  std::thread::id thread_id(std::size_t slot) {
    std::lock_guard lock(join_mutex_);
    return slot < workers_.size() ? workers_[slot].get_id() : std::thread::id();
  }
  // Joins every worker but the calling one (which cannot join itself). A worker (`on_worker`:
  // shutdown from inside a call) only waits for the others to leave their loops, to wait here
  // too, or to wait inside their calls: another thread may be joining every worker, the caller
  // included, under join_mutex_, so waiting for that lock would never end; two workers joining
  // each other would wait forever; and a call waiting for a lane's turn may wait for the very
  // call that is shutting down. Whoever joins next (that thread, or the pool's destructor)
  // joins them.
  // The pool's destructor passes until_all_left: its core goes with the calling worker, so no
  // other may still be inside a call.
  static constexpr bool until_all_left = true;
  void join(bool on_worker = false, bool all_left = false) {
    if (on_worker) {
      std::unique_lock lock(queue_->mutex());
      ++joining_workers_;
      exit_cv_.notify_all();
      exit_cv_.wait(lock, [&] {
        return exited_ + joining_workers_ + (all_left ? 0 : waiting_in_call_) >=
               threads_.load(std::memory_order_relaxed);
      });
      --joining_workers_;
      return;
    }
    std::lock_guard lock(join_mutex_);
    for (auto& worker : workers_)
      if (worker.joinable() && worker.get_id() != std::this_thread::get_id())
        worker.join();
  }
  // After join(): the calling worker, if any, is left; it ends when it returns to its loop.
  void detach_rest() {
    for (auto& worker : workers_)
      if (worker.joinable())
        worker.detach();
  }
  // Waits up to `grace` for the workers (but this thread, `on_worker`) to leave their loops,
  // joins those that did, and returns who the others are still running (left unjoined), as
  // `calls` records it.
  std::vector<call_identity> join_at_exit(std::chrono::milliseconds grace, bool on_worker,
                                          const running_calls& calls) {
    std::vector<call_identity> stuck;
    std::vector<std::thread::id> ids; // per slot (the grower is joined: no slot changes now)
    {
      std::lock_guard join_lock(join_mutex_); // never under the pool lock (start_workers' order)
      for (const auto& worker : workers_)
        ids.push_back(worker.get_id());
    }
    {
      std::unique_lock lock(queue_->mutex());
      const bool all_out = exit_cv_.wait_for(lock, grace, [&] {
        return exited_ + (on_worker ? 1 : 0) >= threads_.load(std::memory_order_relaxed);
      });
      if (!all_out)
        for (std::size_t slot = 0; slot < ids.size(); ++slot)
          if (calls.busy_locked(slot) && ids[slot] != std::this_thread::get_id()) {
            stuck.push_back(calls.who_locked(slot));
            ids[slot] = std::thread::id(); // left running, not joined
          }
    }
    // Every other worker is out of its calls and leaving (or gone): joined at once.
    std::lock_guard join_lock(join_mutex_);
    for (std::size_t slot = 0; slot < workers_.size(); ++slot)
      if (workers_[slot].joinable() && ids[slot] != std::thread::id() &&
          ids[slot] != std::this_thread::get_id())
        workers_[slot].join();
    return stuck;
  }

private:
  // Named before the pool's loop runs its on_thread_start hook, which may rename it.
  void run_worker(std::size_t slot) {
    name_this_thread(worker_thread_name);
    main_(slot);
  }

  // With nothing queued the grower sleeps until armed (arm_grower_if_needed_locked).
  void grow_loop() {
    name_this_thread(grower_thread_name);
    admission_queue& queue = *queue_;
    std::unique_lock lock(queue.mutex());
    while (!queue.closed_locked()) {
      const std::size_t threads = threads_.load(std::memory_order_relaxed);
      if (queue.empty_locked() || threads >= max_) {
        grower_armed_ = false;
        grow_cv_.wait(lock);
        continue;
      }
      const auto now = clock::now();
      const auto due = queue.front_locked()->enqueued_at_ + grow_after_;
      if (now < due) {
        grow_cv_.wait_until(lock, due);
        continue;
      }
      // One worker per queued operation, less those that workers already woken or started will
      // take.
      const std::size_t queued = queue.admitted_locked();
      const std::size_t coming = park_->waking_locked() + starting_;
      const std::size_t wanted = std::min(queued - std::min(queued, coming), max_ - threads);
      if (wanted == 0 || park_->has_free_worker_locked()) {
        // Workers on their way, or a free one about to take the head: look again a little later.
        grow_cv_.wait_until(lock, now + std::max<clock::duration>(grow_after_, relook_after));
        continue;
      }
      lock.unlock();
      const std::size_t started = start_workers(wanted);
      lock.lock();
      if (started < wanted) // no thread to be had: try again later, not in a tight loop
        grow_cv_.wait_for(lock, std::chrono::milliseconds(100));
    }
  }

  // On the grower: starts up to `count` workers in free or retired slots; how many it started.
  std::size_t start_workers(std::size_t count) {
    std::lock_guard join_lock(join_mutex_);
    std::size_t started = 0;
    for (std::size_t slot = 0; slot < workers_.size() && started < count; ++slot) {
      std::thread& worker = workers_[slot];
      if (worker.joinable()) {
        if (!retired_[slot].load(std::memory_order_acquire))
          continue;
        worker.join(); // it has returned from its loop, or is returning
      }
      retired_[slot].store(false, std::memory_order_relaxed);
      {
        std::lock_guard lock(queue_->mutex());
        if (queue_->closed_locked())
          break;
        threads_.fetch_add(1, std::memory_order_release);
        ++added_;
        ++starting_;
      }
      try {
        worker = std::thread([this, slot] { run_worker(slot); });
      } catch (const std::system_error&) {
        std::lock_guard lock(queue_->mutex());
        threads_.fetch_sub(1, std::memory_order_release);
        --added_;
        --starting_;
        break;
      }
      ++started;
    }
    return started;
  }

  // The grower's next look when a free worker was about to take the queue's head.
  static constexpr std::chrono::microseconds relook_after{100};

  const std::size_t min_, max_;
  const bool elastic_; // max_ > min_
  const std::chrono::microseconds grow_after_;
  const std::chrono::milliseconds keep_alive_;
  admission_queue* queue_ = nullptr; // the pool lock, and what the grower times
  worker_park* park_ = nullptr;      // whether a worker is free
  worker_main main_;

  // Under the pool lock.
  bool grower_armed_ = false; // the grower is awake, or timing the queue
  std::size_t starting_ = 0;  // workers started that have not reached their loop yet
  std::uint64_t added_ = 0, retired_count_ = 0;
  std::size_t exited_ = 0; // workers that left their loop at shutdown
  std::size_t joining_workers_ = 0; // workers waiting in join() from inside a call
  std::size_t waiting_in_call_ = 0; // workers parked inside a call (waiting_in_call_locked)
  std::condition_variable grow_cv_;
  std::condition_variable exit_cv_;
  std::atomic<std::size_t> threads_{0}; // live workers; changed under the pool lock
  std::mutex grower_join_mutex_;
  std::thread grower_;
  std::mutex join_mutex_;            // guards the slots (starting, joining)
  std::vector<std::thread> workers_; // an idle slot holds no thread
  std::unique_ptr<std::atomic<bool>[]> retired_; // per slot: its worker returned (elastic)
};

} // namespace SMARTASYNC_NAMESPACE::detail

#endif // SMARTASYNC_DETAIL_WORKER_THREADS_HPP
