// smartasync/blocking_pool.hpp - a bounded pool of threads for blocking work.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_BLOCKING_POOL_HPP
#define SMARTASYNC_BLOCKING_POOL_HPP

#include "smartasync/config.hpp"
#include "smartasync/diagnostics.hpp"
#include "smartasync/detail/call_site.hpp"
#include "smartasync/detail/latency_histogram.hpp"
#include "smartasync/detail/pool_op.hpp"
#include "smartasync/metrics.hpp"
#include "smartasync/error.hpp"
#include "smartasync/this_thread.hpp"

#include SMARTASYNC_ASIO_HEADER(error.hpp)
#include "smartasync/detail/format.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <sys/resource.h>
#endif

namespace SMARTASYNC_NAMESPACE {

namespace detail {
template <typename Handler, typename Work>
class offload_op;
class lane_core;
struct worker_helping;
struct default_pool_holder;

// Tells the core this is a spin-wait (saves power, frees resources for a sibling hyperthread).
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

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

// When the callable of this worker's latest operation returned (blocking_pool::note_returned).
inline thread_local std::chrono::steady_clock::time_point last_return_{};

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

// For the library's own wrappers (smart_async.hpp): the pool's lifeline.
struct pool_access {
  static std::shared_ptr<pool_lifeline> lifeline(const blocking_pool& pool);
};
} // namespace detail

/// What a submission does when the pool's queue is full.
enum class full_policy {
  /// Wait for a free slot: a plain thread blocks, an event-loop operation parks in FIFO order
  /// without blocking its loop (see docs/design.md section 3).
  wait,
  /// Complete at once with smartasync::error::queue_full (load shedding).
  reject,
};

/// What shutdown() does with work that has been accepted but has not started.
enum class shutdown_mode {
  /// Run every accepted operation, then join the workers.
  drain,
  /// Complete queued operations with asio::error::operation_aborted, request stop on running
  /// stop-aware callables, let running ones finish, then join.
  cancel,
};

/// Construction parameters of a blocking_pool.
struct pool_options {
  /// Worker threads; at least 1. The minimum, in an elastic pool (max_threads).
  std::size_t threads = 4;
  /// Operations admitted to the queue before full_policy applies; at least 1.
  std::size_t queue_capacity = 1024;
  /// What a submission does when the queue is full.
  full_policy when_full = full_policy::wait;
  /// How long a worker that has just finished an operation keeps looking for the next one
  /// before it parks (one worker at a time; it yields its core between looks). Work that
  /// arrives within the window is picked up without a futex wake-up on either side, which is
  /// most of a sequential round trip's latency. On an oversubscribed machine (the spinner
  /// loses its core to another thread for a scheduler time slice; detected on Linux) the
  /// pool stops spinning for 100 ms and then tries again, so spinning never competes for a
  /// busy core. Zero: park at once.
  std::chrono::microseconds spin_before_park{25};
  /// A running call that was cancelled (its std::stop_token stopped) and has still not
  /// returned after this long is reported through the diagnostics hook
  /// (diagnostic_kind::stop_ignored), then again each time its overrun doubles. Its caller is
  /// waiting for it (see docs/design.md, cancellation). Zero: never report.
  std::chrono::milliseconds report_ignored_stop_after{1000};
  // (New members go last: code that initializes pool_options in order keeps compiling.)
  /// 0 (the default): a fixed pool of `threads` workers. Greater than `threads`: an elastic
  /// pool, which starts `threads` workers and adds more, up to this many, when every worker is
  /// busy and the oldest queued operation has waited grow_after; workers idle for keep_alive
  /// retire, down to `threads`. The queue bound and full_policy apply as in a fixed pool.
  std::size_t max_threads = 0;
  /// Elastic pools: how long the oldest queued operation waits, with every worker busy, before
  /// the pool adds workers (one per queued operation, up to max_threads). Zero: at once.
  std::chrono::microseconds grow_after{1000};
  /// Elastic pools: how long a worker beyond the minimum stays idle before it retires.
  std::chrono::milliseconds keep_alive{10000};
  /// Runs on each worker thread as it starts, before it takes any work (also on the workers an
  /// elastic pool adds): to name the thread, lower its CPU priority for background work, pin
  /// it, install a thread-local. It must not throw (the process terminates if it does), and it
  /// must not use the pool. Empty: nothing.
  std::function<void()> on_thread_start{};
};

/// A set of worker threads with a bounded FIFO queue, for blocking calls.
/**
 * The pool is fixed (pool_options::threads workers for its lifetime) or elastic (between
 * threads and max_threads: see pool_options; docs/design.md section 11).
 *
 * Work reaches the pool through smart_async() wrappers and async_offload(). The pool never runs
 * an operation twice, never drops one: each accepted operation runs, or completes with
 * asio::error::operation_aborted (cancelled, or shut down with shutdown_mode::cancel).
 *
 * @par Thread safety
 * Distinct objects: safe. Shared objects: every member function is safe to call concurrently,
 * except that the destructor must not race with other calls.
 *
 * @par Example
 * @code
 * smartasync::blocking_pool pool{4, 1024};          // 4 threads, 1024 queued operations
 * auto read = smartasync::smart_async(pool, read_file);
 * @endcode
 */
class blocking_pool {
public:
  /// Starts `threads` workers with a queue of `queue_capacity` operations.
  blocking_pool(std::size_t threads, std::size_t queue_capacity = 1024,
                full_policy when_full = full_policy::wait)
      : blocking_pool(pool_options{threads, queue_capacity, when_full}) {}

  /// Starts a pool described by `options`.
  /// @throws std::invalid_argument if threads or queue_capacity is 0.
  explicit blocking_pool(const pool_options& options)
      : capacity_(options.queue_capacity), policy_(options.when_full),
        spin_(std::max(options.spin_before_park, std::chrono::microseconds::zero())),
        ignored_stop_after_(options.report_ignored_stop_after), min_threads_(options.threads),
        max_threads_(std::max(options.threads, options.max_threads)),
        elastic_(max_threads_ > min_threads_),
        grow_after_(std::max(options.grow_after, std::chrono::microseconds::zero())),
        keep_alive_(std::max(options.keep_alive, std::chrono::milliseconds::zero())),
        on_thread_start_(options.on_thread_start),
        lifeline_(std::make_shared<detail::pool_lifeline>(this)) {
    if (options.threads == 0 || options.queue_capacity == 0)
      throw std::invalid_argument("smartasync::blocking_pool needs at least one thread and a "
                                  "queue capacity of at least one");
    if (options.max_threads != 0 && options.max_threads < options.threads)
      throw std::invalid_argument("smartasync::blocking_pool: max_threads is less than threads "
                                  "(0 makes a fixed pool)");
    // Every slot exists from the start, so that shutdown() can join them while the grower
    // starts threads in free ones (both under join_mutex_).
    workers_.resize(max_threads_);
    running_.resize(max_threads_);
    if (elastic_)
      retired_ = std::make_unique<std::atomic<bool>[]>(max_threads_);
    try {
      std::lock_guard lock(join_mutex_);
      for (std::size_t i = 0; i < min_threads_; ++i) {
        {
          std::lock_guard count_lock(mutex_);
          ++starting_;
        }
        workers_[i] = std::thread([this, i] { worker_loop(i); });
        threads_.fetch_add(1, std::memory_order_relaxed);
      }
      if (elastic_)
        grower_ = std::thread([this] { grow_loop(); });
    } catch (...) {
      shutdown(shutdown_mode::cancel);
      throw;
    }
  }

  blocking_pool(const blocking_pool&) = delete;
  blocking_pool& operator=(const blocking_pool&) = delete;

  /// Shuts down with shutdown_mode::cancel (unless already shut down) and joins the workers.
  /**
   * It may run on one of the pool's own workers: a wrapped call that calls std::exit() (the
   * default pool is a static), or a handler without an executor that drops the last owner of
   * the pool. Then it joins the other workers, and the calling worker, which cannot join
   * itself, is detached and ends as soon as the call or handler it is in returns, without
   * touching the destroyed pool again.
   */
  ~blocking_pool() {
    shutdown(shutdown_mode::cancel);
    stop_watching_ignored_stops();
    for (auto& worker : workers_)
      if (worker.joinable()) // only the calling worker is left (see shutdown)
        worker.detach();
    if (detail::current_pool_ == this)
      detail::current_pool_ = nullptr; // tells worker_loop its pool is gone
    std::lock_guard lock(lifeline_->mutex);
    lifeline_->pool = nullptr;
  }

  /// Stops accepting work, settles accepted work according to `mode`, joins the workers.
  /**
   * Later submissions complete with smartasync::error::pool_stopped. Calling it again, or
   * from several threads, is safe: every caller returns once the workers are joined.
   * Called from one of the pool's own workers, it joins every other worker and returns; the
   * calling worker settles what is left (with shutdown_mode::drain) after the call it is in.
   */
  void shutdown(shutdown_mode mode = shutdown_mode::drain) {
    begin_shutdown(mode);
    std::lock_guard join_lock(join_mutex_);
    for (auto& worker : workers_)
      if (worker.joinable() && worker.get_id() != std::this_thread::get_id())
        worker.join();
  }

  /// True once shutdown() has begun.
  bool stopped() const {
    std::lock_guard lock(mutex_);
    return stopping_;
  }

private:
  friend struct detail::default_pool_holder;

  // The first half of shutdown(): stops accepting work, settles the queue according to `mode`,
  // asks running calls to stop, joins the grower. The workers finish on their own.
  void begin_shutdown(shutdown_mode mode) {
    detail::op_queue cancelled;
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      if (mode == shutdown_mode::cancel)
        while (detail::pool_op* op = queue_.pop_front()) {
          op->state_.store(detail::op_state::cancelled, std::memory_order_release);
          cancelled.push_back(op);
        }
      // Draining runs every queued operation, those still waiting for admission too: admit
      // them now, or their blocked submitters would wait for a notification that never comes
      // (the boundary is gone, so no worker taking one would admit the next).
      if (mode == shutdown_mode::drain)
        for (detail::pool_op* op = boundary_; op; op = op->next_)
          op->admitted_ = true;
      boundary_ = nullptr;
    }
    work_cv_.notify_all();
    space_cv_.notify_all();
    grow_cv_.notify_all();
    if (mode == shutdown_mode::cancel)
      stop_source_.request_stop();
    while (detail::pool_op* op = cancelled.pop_front()) {
      cancelled_.fetch_add(1, std::memory_order_relaxed);
      op->abort_queued(make_aborted());
      op->release();
    }
    {
      // Before join_mutex_, which the grower takes to start a worker. It starts none once
      // stopping_ is set, and a worker it has started is in workers_ by the time it returns.
      std::lock_guard grower_lock(grower_join_mutex_);
      if (grower_.joinable())
        grower_.join();
    }
  }

  // The default pool at process exit (default_pool()): shutdown(cancel), but the workers get
  // `grace` to return. A worker still inside a call then is reported and left running: the
  // pool is never destroyed, so it touches live memory until the process ends. True when every
  // worker (but the calling one, when exit() was called from inside a call) was joined.
  bool shutdown_at_exit(std::chrono::milliseconds grace) noexcept {
    try {
      begin_shutdown(shutdown_mode::cancel);
      const bool on_worker = detail::current_pool_ == this;
      std::vector<detail::call_identity> stuck;
      std::vector<std::thread::id> ids; // per slot (the grower is joined: no slot changes now)
      {
        std::lock_guard join_lock(join_mutex_); // never under mutex_ (start_workers' order)
        for (const auto& worker : workers_)
          ids.push_back(worker.get_id());
      }
      {
        std::unique_lock lock(mutex_);
        const bool all_out = exit_cv_.wait_for(lock, grace, [&] {
          return exited_ + (on_worker ? 1 : 0) >= threads_.load(std::memory_order_relaxed);
        });
        if (!all_out)
          for (std::size_t slot = 0; slot < ids.size(); ++slot)
            if (running_[slot].busy && ids[slot] != std::this_thread::get_id()) {
              stuck.push_back(running_[slot].who);
              ids[slot] = std::thread::id(); // left running, not joined
            }
      }
      for (const auto& who : stuck)
        report(exit_report(who, grace));
      // Every other worker is out of its calls and leaving (or gone): joined at once.
      std::lock_guard join_lock(join_mutex_);
      for (std::size_t slot = 0; slot < workers_.size(); ++slot)
        if (workers_[slot].joinable() && ids[slot] != std::thread::id() &&
            ids[slot] != std::this_thread::get_id())
          workers_[slot].join();
      return stuck.empty();
    } catch (...) {
      return false; // no report, no join: leave rather than hang or throw at exit
    }
  }

  diagnostic exit_report(const detail::call_identity& who, std::chrono::milliseconds grace) const {
    return diagnostic{
        .kind = diagnostic_kind::stop_ignored,
        .message = fmt::format(
            "at exit, {} on the default pool was still running {} ms after its stop request; "
            "the process exits without waiting for it (SMARTASYNC_EXIT_GRACE_MS, "
            "set_default_pool_exit_grace). Check the std::stop_token in long calls, or "
            "interrupt the blocking operation, so that it returns when asked.",
            who.describe(), grace.count()),
        .name = who.site ? who.site->name : std::string(),
        .where = who.site ? who.site->created_at : smartasync::source_location{},
        .duration = grace,
        .thread = {},
        .created_at = who.site ? who.site->created_at : smartasync::source_location{},
    };
  }

public:

  /// The number of worker threads now (in an elastic pool, between its minimum and maximum).
  std::size_t thread_count() const noexcept { return threads_.load(std::memory_order_acquire); }

  /// The queue capacity.
  std::size_t queue_capacity() const noexcept { return capacity_; }

  /// The policy applied when the queue is full.
  full_policy when_full() const noexcept { return policy_; }

  /// Current counters; cheap (one short lock), callable at any time from any thread.
  pool_stats stats() const {
    pool_stats s;
    s.threads = thread_count();
    s.min_threads = min_threads_;
    s.max_threads = max_threads_;
    s.queue_capacity = capacity_;
    // Outcomes first, then what was submitted and started: a snapshot taken while operations
    // finish then never shows more outcomes than submissions, nor more returns than starts.
    s.completed = completed_.load(std::memory_order_acquire);
    s.failed = failed_.load(std::memory_order_acquire);
    s.cancelled = cancelled_.load(std::memory_order_acquire);
    s.expired = expired_.load(std::memory_order_acquire);
    s.timed_out = timed_out_.load(std::memory_order_acquire);
    s.rejected = rejected_.load(std::memory_order_acquire);
    const std::uint64_t returned = returned_.load(std::memory_order_acquire);
    {
      std::lock_guard lock(mutex_);
      s.queued = std::min(queue_.size(), capacity_);
      s.parked = queue_.size() - s.queued;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
      s.waiting = s.parked; // the former name, filled for one release
#pragma GCC diagnostic pop
      s.blocked_submitters = blocked_producers_;
      s.submitted = submitted_;
      s.running = detail::narrow<std::size_t>(started_ - returned);
      s.threads_added = threads_added_;
      s.threads_retired = threads_retired_;
    }
    return s;
  }

  /// stats() plus queue-wait and run-time distributions; `fmt::format("{}", pool.metrics())`
  /// gives a one-line summary. Callable at any time, without stopping the pool.
  pool_metrics metrics() const {
    pool_metrics m;
    m.counts = stats();
    const auto wait = queue_wait_.summarize();
    const auto run = run_time_.summarize();
    m.queue_wait = {wait.count, wait.p50, wait.p99, wait.max};
    m.run_time = {run.count, run.p50, run.p99, run.max};
    return m;
  }

private:
  template <typename, typename>
  friend class detail::offload_op;
  friend struct detail::worker_helping;
  friend struct detail::pool_access;
  friend class detail::lane_core;

  enum class admission { accepted, queue_full, stopped };

  static error_code make_aborted() noexcept { return asio::error::operation_aborted; }

  // Links `op` into the FIFO; once accepted, the queue owns the caller's reference.
  // `may_block`: this thread is no event loop, so with full_policy::wait it waits for space
  // instead of parking the operation. `from_lane`: a serial_lane passes its turn on; the lane
  // accepted the operation already, so the pool's reject policy does not apply (it waits for
  // admission in FIFO order like a parked operation).
  admission submit(detail::pool_op* op, bool may_block, bool from_lane = false) {
    // Every operation's queue wait is measured (an undersized pool shows in a burst of a few
    // calls); read outside the lock, which the workers need too.
    op->enqueued_at_ = std::chrono::steady_clock::now();
    std::unique_lock lock(mutex_, std::defer_lock);
    lock_briefly(lock);
    ++submitted_; // every submission has exactly one outcome, a rejection included
    const bool admitted = queue_.size() < capacity_;
    if (stopping_ || (!admitted && policy_ == full_policy::reject && !from_lane)) {
      const bool stopped = stopping_;
      lock.unlock();
      rejected_.fetch_add(1, std::memory_order_release);
      return stopped ? admission::stopped : admission::queue_full;
    }
    // From here the queue owns the caller's reference to `op`: dropped by the worker
    // (pool_op::execute) or the canceller.
    op->state_.store(detail::op_state::queued, std::memory_order_relaxed);
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
    // Wake a parked worker only if none is already on its way. A futex wake-up costs the
    // waker microseconds (more when the cores are busy), and this is usually an event loop's
    // thread: a burst of submissions pays for one, and the woken worker wakes the next while
    // work remains (worker_loop), so the burst still spreads over the idle workers.
    // A spinning worker (worker_loop) will see the work without one.
    const bool wake = waking_ == 0 && spinning_ == 0 && idle_workers_ > 0;
    if (wake)
      ++waking_;
    const bool arm_grower = elastic_ && arm_grower_if_needed_locked();
    lock.unlock();
    if (wake)
      work_cv_.notify_one();
    if (arm_grower)
      grow_cv_.notify_one();
    return admission::accepted;
  }

  // On one of our workers that must wait for something which may itself need this pool
  // (block_on of an awaitable that offloads here): runs queued operations while it waits, so
  // the pool cannot deadlock on its own blocked workers. `done` is read under mutex_ and set
  // through notify_helpers().
  template <typename Done>
  void help_until(Done done) {
    using clock = std::chrono::steady_clock;
    std::unique_lock lock(mutex_);
    while (!done()) {
      if (detail::pool_op* op = take_next_locked()) {
        lock.unlock();
        start_running(op, clock::now());
        op->execute(); // drops the queue's reference
        lock.lock();
        continue;
      }
      ++idle_workers_;
      work_cv_.wait(lock);
      --idle_workers_;
      if (waking_ > 0)
        --waking_;
    }
  }

  // Sets what help_until() waits for and wakes it. The helper cannot return before the lock
  // is released, so this is the last touch of the pool.
  template <typename SetDone>
  void notify_helpers(SetDone set_done) {
    std::lock_guard lock(mutex_);
    set_done();
    work_cv_.notify_all();
  }

  // full_policy::wait on a thread that may block: `op` is linked beyond the capacity, and the
  // submitter waits until it is admitted (or leaves the queue: cancelled, shut down).
  void wait_for_admission(std::unique_lock<std::mutex>& lock, detail::pool_op* op) {
    op->add_ref(); // the queue's reference may be dropped by a canceller while we look at it
    ++blocked_producers_;
    space_cv_.wait(lock, [&] {
      return op->admitted_ || op->state_.load(std::memory_order_relaxed) != detail::op_state::queued;
    });
    --blocked_producers_;
    lock.unlock();
    op->release();
  }

  // Unlinks `op` if it is still queued; true if it was (the caller then owns its handler, and
  // counts the outcome: note_cancelled or note_expired).
  bool try_remove(detail::pool_op* op) {
    {
      std::lock_guard lock(mutex_);
      if (op->state_.load(std::memory_order_relaxed) != detail::op_state::queued)
        return false;
      if (op == boundary_)
        boundary_ = op->next_;
      queue_.unlink(op);
      if (op->admitted_)
        admit_next_locked();
      set_work_hint(queue_.size() > 0);
      op->state_.store(detail::op_state::cancelled, std::memory_order_release);
      if (blocked_producers_ > 0)
        space_cv_.notify_all(); // it may be a blocked submitter's own operation
    }
    op->release(); // the queue's reference; the caller holds its own
    return true;
  }

  // Under mutex_: takes the next operation for this thread to run (a worker, or a worker
  // helping while it waits), or null when the queue is empty.
  detail::pool_op* take_next_locked() noexcept {
    detail::pool_op* op = queue_.pop_front();
    if (!op)
      return nullptr;
    set_work_hint(!queue_.empty());
    op->state_.store(detail::op_state::running, std::memory_order_release);
    admit_next_locked();
    ++started_;
    return op;
  }

  // Outside the lock, just before `op` runs: records its queue wait, and from here on its
  // enqueued_at_ holds when it started, which note_returned() times the run from. `now` may be
  // the previous operation's return, when that was after this one's submission.
  void start_running(detail::pool_op* op, std::chrono::steady_clock::time_point now) noexcept {
    if (op->enqueued_at_ != std::chrono::steady_clock::time_point{}) {
      now = std::max(now, op->enqueued_at_);
      queue_wait_.record(now - op->enqueued_at_);
    }
    op->enqueued_at_ = now;
  }

  // An admitted operation left the queue: the first one waiting for admission takes its place.
  void admit_next_locked() {
    detail::pool_op* op = boundary_;
    if (!op)
      return;
    op->admitted_ = true;
    boundary_ = op->next_;
    if (blocked_producers_ > 0)
      space_cv_.notify_all(); // the blocked submitter of `op`, if it has one, may return
  }

  void worker_loop(std::size_t slot) noexcept {
    using clock = std::chrono::steady_clock;
    if (on_thread_start_)
      on_thread_start_(); // noexcept here: a throwing hook terminates, as documented
    detail::current_pool_ = this;
    clock::time_point last_finish{}; // the clock read after the previous operation
    bool waited = true;
    std::unique_lock lock(mutex_);
    --starting_; // here to take work (the grower of an elastic pool counts on it until now)
    for (;;) {
      if (queue_.empty() && !stopping_ && !waited && spin_.count() > 0 && spinning_ == 0 &&
          last_finish >= spin_suppressed_until_) {
        // Just finished one: the next is often moments away (a loop resuming the caller and
        // submitting again). Look for it briefly, without the lock, before paying a park.
        ++spinning_;
        lock.unlock();
        const bool lost_core = !spin_for_work();
        lock_briefly(lock);
        --spinning_;
        if (lost_core) // the machine is oversubscribed: spinning takes a core someone needs
          spin_suppressed_until_ = clock::now() + spin_backoff;
        waited = true; // not part of the next operation's run time
      }
      const auto idle_since = elastic_ ? clock::now() : clock::time_point{};
      while (queue_.empty() && !stopping_) {
        waited = true;
        ++idle_workers_;
        bool idle_too_long = false;
        if (elastic_ && threads_.load(std::memory_order_relaxed) > min_threads_)
          idle_too_long = work_cv_.wait_until(lock, idle_since + keep_alive_) ==
                          std::cv_status::timeout;
        else
          work_cv_.wait(lock);
        --idle_workers_;
        if (waking_ > 0) // ours, or another's if this wake-up was spurious: at worst one
          --waking_;     // notification too many later, never one too few
        if (idle_too_long && queue_.empty() && !stopping_ &&
            threads_.load(std::memory_order_relaxed) > min_threads_) {
          retire_locked(slot);
          return;
        }
      }
      detail::pool_op* op = take_next_locked();
      if (!op) {
        ++exited_; // stopping and drained (shutdown_at_exit waits for this, bounded)
        exit_cv_.notify_all();
        return;
      }
      running_[slot].busy = true; // named by shutdown_at_exit if it never returns
      op->identify(running_[slot].who);
      // Pass the wake-up on: more work is queued, a parked worker can take it in parallel.
      const bool wake_next = !queue_.empty() && waking_ == 0 && idle_workers_ > 0;
      if (wake_next)
        ++waking_;
      // Work left behind and no worker free for it: an elastic pool's grower times it (a
      // burst submitted while idle workers were still waking up arms it here).
      const bool arm_grower = elastic_ && !queue_.empty() && arm_grower_if_needed_locked();
      lock.unlock();
      if (wake_next)
        work_cv_.notify_one();
      if (arm_grower)
        grow_cv_.notify_one();
      // One clock read per operation: straight from the previous one, it started when that
      // one finished (or when it was queued, if later).
      start_running(op, waited ? clock::now() : last_finish);
      waited = false;
      op->execute(); // drops the queue's reference
      if (detail::current_pool_ != this)
        return; // the pool was destroyed from inside that call (see ~blocking_pool)
      last_finish = detail::last_return_;
      lock_briefly(lock);
      running_[slot].busy = false;
    }
  }

  // Under mutex_: worker `slot` leaves an elastic pool, idle beyond its keep-alive. Its thread
  // returns without touching the pool again; the grower or shutdown() joins it.
  void retire_locked(std::size_t slot) noexcept {
    threads_.fetch_sub(1, std::memory_order_release);
    ++threads_retired_;
    retired_[slot].store(true, std::memory_order_release);
  }

  // Under mutex_, in an elastic pool: work is queued (or about to be) and no worker is free
  // to take it (idle ones are all being woken already, none spins), and the pool may grow,
  // so the grower should time the queue: arms it, and true if the caller must notify
  // grow_cv_ (once it has released mutex_).
  bool arm_grower_if_needed_locked() noexcept {
    if (grower_armed_ || idle_workers_ > waking_ || spinning_ > 0 ||
        threads_.load(std::memory_order_relaxed) >= max_threads_)
      return false;
    grower_armed_ = true;
    return true;
  }

  // An elastic pool's grower: while work is queued it waits for the oldest operation to have
  // waited grow_after; if every worker is busy then, it starts a worker for each queued
  // operation, up to max_threads. With nothing queued it sleeps until a submission, or a worker
  // leaving work behind, finds every worker busy (arm_grower_if_needed_locked). Workers are
  // started here, never on the submitting thread, which is usually an event loop.
  void grow_loop() {
    using clock = std::chrono::steady_clock;
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      const std::size_t threads = threads_.load(std::memory_order_relaxed);
      if (queue_.empty() || threads >= max_threads_) {
        grower_armed_ = false;
        grow_cv_.wait(lock);
        continue;
      }
      const auto now = clock::now();
      const auto due = queue_.front()->enqueued_at_ + grow_after_;
      if (now < due) {
        grow_cv_.wait_until(lock, due);
        continue;
      }
      // One worker per queued operation, less those that workers already woken or started will
      // take.
      const std::size_t queued = std::min(queue_.size(), capacity_);
      const std::size_t coming = waking_ + starting_;
      const std::size_t wanted = std::min(queued - std::min(queued, coming), max_threads_ - threads);
      if (wanted == 0 || idle_workers_ > waking_ || spinning_ > 0) {
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
        worker.join(); // it has returned from worker_loop, or is returning
      }
      retired_[slot].store(false, std::memory_order_relaxed);
      {
        std::lock_guard lock(mutex_);
        if (stopping_)
          break;
        threads_.fetch_add(1, std::memory_order_release);
        ++threads_added_;
        ++starting_;
      }
      try {
        worker = std::thread([this, slot] { worker_loop(slot); });
      } catch (const std::system_error&) {
        std::lock_guard lock(mutex_);
        threads_.fetch_sub(1, std::memory_order_release);
        --threads_added_;
        --starting_;
        break;
      }
      ++started;
    }
    return started;
  }

  // The submitter (usually an event loop) and the workers hold mutex_ for a few dozen
  // nanoseconds at a time, so when they collide, retrying briefly is far cheaper than what
  // std::mutex does at once: sleep in the kernel, and make the holder pay a futex wake-up.
  static void lock_briefly(std::unique_lock<std::mutex>& lock) {
    for (int i = 0; i < 100; ++i) {
      if (lock.try_lock())
        return;
      detail::cpu_relax();
    }
    lock.lock();
  }

  // Under mutex_. Writes only on a change: a spinner polls this cache line.
  void set_work_hint(bool available) noexcept {
    if (work_hint_.load(std::memory_order_relaxed) != available)
      work_hint_.store(available, std::memory_order_relaxed);
  }

  // Until work shows up or spin_ has passed. Between short bursts of pause instructions it
  // yields, so a thread waiting for this core gets it. False if another thread of this machine
  // ran on this core for about a scheduler time slice (an involuntary switch, and a gap between
  // two looks of lost_core_gap or more): then spinning only delays the work it waits for,
  // because a submission does not wake a worker while one spins. Shorter gaps are our own
  // threads passing through (the loop we just woke may land on this core and run for tens of
  // microseconds on a VM); a long gap without a switch is the hypervisor taking the virtual
  // CPU. Neither says anything about load.
  bool spin_for_work() const noexcept {
    const long switches = detail::involuntary_switches();
    auto now = std::chrono::steady_clock::now();
    const auto deadline = now + spin_;
    do {
      for (int i = 0; i < 64; ++i) {
        if (work_hint_.load(std::memory_order_relaxed))
          return true;
        detail::cpu_relax();
      }
      std::this_thread::yield();
      const auto before = now;
      now = std::chrono::steady_clock::now();
      if (now - before >= lost_core_gap && detail::involuntary_switches() != switches)
        return false;
    } while (now < deadline);
    return true;
  }

  // The callable returned (or threw), before its outcome is handed on: whoever sees the
  // outcome then sees the pool's counters and run times with this operation in them.
  // `op->enqueued_at_` holds its start time by now. The clock read is the worker's one per
  // operation: worker_loop takes the next operation's start from it.
  void note_returned(const detail::pool_op* op) noexcept {
    const auto now = std::chrono::steady_clock::now();
    run_time_.record(now - op->enqueued_at_);
    detail::last_return_ = now;
    returned_.fetch_add(1, std::memory_order_release);
  }
  void note_finished(bool failed) noexcept {
    (failed ? failed_ : completed_).fetch_add(1, std::memory_order_release);
  }
  void note_cancelled() noexcept { cancelled_.fetch_add(1, std::memory_order_release); }
  // Cancelled while running, after its deadline (with_timeout).
  void note_timed_out() noexcept { timed_out_.fetch_add(1, std::memory_order_release); }
  // Its deadline passed before it started: removed from the queue by a canceller, or reached
  // by a worker (`taken`: started_ counted it, so it counts as returned at once).
  void note_expired(bool taken) noexcept {
    if (taken)
      returned_.fetch_add(1, std::memory_order_release);
    expired_.fetch_add(1, std::memory_order_release);
  }
  // A nested call runs inline on the worker that makes it; it is counted as submitted and
  // started like any other.
  void note_nested_start(detail::pool_op* op) {
    op->enqueued_at_ = std::chrono::steady_clock::now(); // its start: it never queues
    std::lock_guard lock(mutex_);
    ++submitted_;
    ++started_;
  }
  std::stop_token stop_token() const noexcept { return stop_source_.get_token(); }
  const std::shared_ptr<detail::pool_lifeline>& lifeline() const noexcept { return lifeline_; }

  // A running operation was asked to stop and its caller waits for it to return: watch it,
  // and report it while it keeps running (pool_options::report_ignored_stop_after).
  // Precondition: the caller holds a reference to `op` for the duration of the call.
  // The operation is identified only by its address, never touched: the worker that returns
  // from it removes it (stopped_call_returned) before it completes the operation.
  void watch_ignored_stop(const detail::pool_op* op, detail::call_identity who) noexcept {
    if (ignored_stop_after_ <= std::chrono::milliseconds::zero())
      return;
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(watch_mutex_);
    if (watch_stopping_)
      return;
    try {
      if (!watcher_.joinable())
        watcher_ = std::thread([this] { watch_loop(); });
      watched_.push_back({op, who, now, now + ignored_stop_after_});
    } catch (...) {
      return; // no thread, no memory: the call is still waited for, only not reported
    }
    watch_cv_.notify_one();
  }

  // On the worker, after a call that was asked to stop has returned.
  void stopped_call_returned(const detail::pool_op* op) noexcept {
    if (ignored_stop_after_ <= std::chrono::milliseconds::zero())
      return;
    std::lock_guard lock(watch_mutex_);
    std::erase_if(watched_, [&](const watched_stop& w) { return w.op == op; });
  }

  void watch_loop() {
    using clock = std::chrono::steady_clock;
    std::unique_lock lock(watch_mutex_);
    while (!watch_stopping_) {
      auto wake_at = clock::time_point::max();
      std::vector<diagnostic> reports;
      const auto now = clock::now();
      for (watched_stop& w : watched_) {
        if (now >= w.report_at) {
          const auto overrun = now - w.stop_requested_at;
          reports.push_back(ignored_stop_report(w.who, overrun));
          w.report_at = now + overrun; // the next report when the overrun has doubled
        }
        wake_at = std::min(wake_at, w.report_at);
      }
      if (!reports.empty()) {
        lock.unlock();
        for (const auto& d : reports)
          report(d);
        lock.lock();
        continue;
      }
      if (wake_at == clock::time_point::max())
        watch_cv_.wait(lock);
      else
        watch_cv_.wait_until(lock, wake_at);
    }
  }

  diagnostic ignored_stop_report(const detail::call_identity& who,
                                 std::chrono::steady_clock::duration overrun) const {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(overrun);
    return diagnostic{
        .kind = diagnostic_kind::stop_ignored,
        .message = fmt::format(
            "cancelled {} is still running {} ms after its stop request, on a pool of {} "
            "threads; its caller waits for it to return. Check the std::stop_token in long "
            "calls (or interrupt the blocking operation) so that cancellation is prompt.",
            who.describe(), ms.count(), thread_count()),
        .name = who.site ? who.site->name : std::string(),
        .where = who.site ? who.site->created_at : smartasync::source_location{},
        .duration = overrun,
        .thread = {},
        .created_at = who.site ? who.site->created_at : smartasync::source_location{},
    };
  }

  // After the workers are joined (every watched operation has returned).
  void stop_watching_ignored_stops() noexcept {
    {
      std::lock_guard lock(watch_mutex_);
      watch_stopping_ = true;
    }
    watch_cv_.notify_all();
    if (watcher_.joinable())
      watcher_.join();
  }

  // The layout keeps the two sides of the pool off each other's cache lines. A submitter and
  // a worker exchange each operation through the mutex and the queue, which they share by
  // necessity; anything else one of them writes per operation lives on a line of its own, or
  // every operation would also pay for moving that line between their cores.

  // Read by both sides, never written after construction.
  const std::size_t capacity_;
  const full_policy policy_;
  const std::chrono::microseconds spin_;
  const std::chrono::milliseconds ignored_stop_after_;
  const std::size_t min_threads_, max_threads_;
  const bool elastic_; // max_threads_ > min_threads_
  const std::chrono::microseconds grow_after_;
  const std::chrono::milliseconds keep_alive_;
  const std::function<void()> on_thread_start_;
  std::stop_source stop_source_; // stopped by shutdown(cancel), seen by stop-aware callables
  const std::shared_ptr<detail::pool_lifeline> lifeline_;

  // Guarded by mutex_, written by both sides on every operation.
  alignas(detail::cache_line_size) mutable std::mutex mutex_;
  detail::op_queue queue_;
  std::size_t idle_workers_ = 0;
  std::size_t waking_ = 0;   // notified workers that have not woken yet
  std::size_t spinning_ = 0; // workers looking for work before they park (at most one)
  std::size_t blocked_producers_ = 0;
  std::uint64_t submitted_ = 0;
  std::uint64_t started_ = 0;           // taken by a worker, or run inline by a nested call
  detail::pool_op* boundary_ = nullptr; // the first operation waiting for admission, if any
  bool stopping_ = false;
  bool grower_armed_ = false; // the grower is awake, or timing the queue (elastic pools)
  std::size_t starting_ = 0;  // workers started that have not reached their loop yet
  std::uint64_t threads_added_ = 0, threads_retired_ = 0;
  // A spinner that lost its core stops all spinning for a while; then one spin probes again.
  static constexpr std::chrono::milliseconds spin_backoff{100};
  // The grower's next look when a free worker was about to take the queue's head.
  static constexpr std::chrono::microseconds relook_after{100};
  // Between our own threads' short runs on a spinner's core (up to ~150 us measured on a
  // 2-vCPU VM) and a CPU-bound competitor's time slice (~3 ms measured there, and at least
  // 0.75 ms on Linux's default settings).
  static constexpr std::chrono::microseconds lost_core_gap{500};
  std::chrono::steady_clock::time_point spin_suppressed_until_{};
  std::condition_variable work_cv_;  // workers wait for work
  std::condition_variable space_cv_; // blocked producers wait for space
  std::condition_variable grow_cv_;  // an elastic pool's grower waits for busy workers
  std::atomic<std::size_t> threads_{0}; // live workers; changed under mutex_

  // !queue_.empty(), for a spinner outside the lock: alone on its line, so that polling it
  // does not contend with the mutex, the queue or the counters.
  alignas(detail::cache_line_size) std::atomic<bool> work_hint_{false};

  // Written by workers (rejected_ by submitters, rarely).
  alignas(detail::cache_line_size) std::atomic<std::uint64_t> completed_{0};
  std::atomic<std::uint64_t> failed_{0}, cancelled_{0}, rejected_{0}, returned_{0};
  std::atomic<std::uint64_t> expired_{0}, timed_out_{0};
  detail::latency_histogram queue_wait_, run_time_;

  // Cancelled calls that have not returned yet, watched by a thread started on first need.
  struct watched_stop {
    const detail::pool_op* op; // removed by its worker when the call returns
    detail::call_identity who;
    std::chrono::steady_clock::time_point stop_requested_at, report_at;
  };
  std::mutex watch_mutex_;
  std::condition_variable watch_cv_;
  std::vector<watched_stop> watched_;
  bool watch_stopping_ = false;
  std::thread watcher_;

  std::mutex grower_join_mutex_;
  std::thread grower_;
  // Per worker slot, guarded by mutex_: the call it is in, for shutdown_at_exit's report.
  struct running_call {
    bool busy = false;
    detail::call_identity who{};
  };
  std::vector<running_call> running_;
  std::size_t exited_ = 0; // workers that left their loop at shutdown; under mutex_
  std::condition_variable exit_cv_;

  std::mutex join_mutex_; // guards the workers_ slots (starting, joining)
  std::vector<std::thread> workers_; // max_threads_ slots; an idle slot holds no thread
  std::unique_ptr<std::atomic<bool>[]> retired_; // per slot: its worker returned (elastic)
};

namespace detail {

inline std::shared_ptr<pool_lifeline> pool_access::lifeline(const blocking_pool& pool) {
  return pool.lifeline();
}

// For whoever makes a pool worker wait on something that may need the same pool (block_on,
// a serial_lane's turn): the worker runs the pool's queued work while it waits.
struct worker_helping {
  template <typename Done>
  static void help_until(blocking_pool& pool, Done done) {
    pool.help_until(std::move(done));
  }
  template <typename SetDone>
  static void notify_helpers(blocking_pool& pool, SetDone set_done) {
    pool.notify_helpers(std::move(set_done));
  }
};

// Reads a positive integer from the environment; `fallback` when unset, invalid or zero.
inline std::size_t env_size(const char* name, std::size_t fallback) {
  const char* text = std::getenv(name);
  if (!text || !*text)
    return fallback;
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text, &end, 10);
  if (*end != '\0' || value == 0 || value > 100000) {
    fmt::print(stderr, "smartasync: ignoring {}={:?}: expected a whole number from 1 to 100000\n",
               name, text);
    return fallback;
  }
  return static_cast<std::size_t>(value);
}

inline pool_options default_pool_options() {
  // Blocking I/O waits more than it computes, so more threads than cores pay off; the cap keeps
  // a big machine from starting hundreds of threads nobody asked for.
  const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
  pool_options options;
  options.threads = env_size("SMARTASYNC_POOL_THREADS", std::clamp<std::size_t>(2 * cores, 4, 64));
  options.queue_capacity = env_size("SMARTASYNC_POOL_QUEUE", 1024);
  // Elastic only when asked, and only upwards: a maximum below the threads is ignored.
  if (const std::size_t max = env_size("SMARTASYNC_POOL_MAX_THREADS", 0); max > options.threads)
    options.max_threads = max;
  if (const char* policy = std::getenv("SMARTASYNC_POOL_WHEN_FULL")) {
    const std::string_view text = policy;
    if (text == "reject")
      options.when_full = full_policy::reject;
    else if (text != "wait")
      fmt::print(stderr, "smartasync: ignoring SMARTASYNC_POOL_WHEN_FULL={:?}: expected wait or "
                         "reject\n", text);
  }
  return options;
}

} // namespace detail

namespace detail {

// The default pool is never destroyed: at exit it is shut down with a bounded wait
// (shutdown_at_exit), and a worker stuck in a call that ignores its stop request may still be
// running when the process ends, so its memory must stay valid. Wrappers that outlive exit's
// shutdown then see a stopped pool (error::pool_stopped), never a destroyed one.
struct default_pool_holder {
  static std::atomic<std::int64_t>& grace_ms() {
    static std::atomic<std::int64_t> grace{
        static_cast<std::int64_t>(env_size("SMARTASYNC_EXIT_GRACE_MS", 2000))};
    return grace;
  }
  static blocking_pool& instance() {
    static blocking_pool& pool = [] () -> blocking_pool& {
      grace_ms(); // constructed first, so it outlives the exit handler below
      auto* created = new blocking_pool{default_pool_options()};
      std::atexit([] {
        instance().shutdown_at_exit(
            std::chrono::milliseconds(grace_ms().load(std::memory_order_relaxed)));
      });
      return *created;
    }();
    return pool;
  }
};

} // namespace detail

/// The process-wide pool used by smart_async(f) and async_offload(f, token).
/**
 * Created on first use; sized by the environment when set:
 * `SMARTASYNC_POOL_THREADS` (default: twice the cores, clamped to 4..64),
 * `SMARTASYNC_POOL_QUEUE` (default 1024), `SMARTASYNC_POOL_WHEN_FULL` (`wait` or `reject`),
 * `SMARTASYNC_POOL_MAX_THREADS` (unset: a fixed pool; above the threads: an elastic pool that
 * grows up to it, see pool_options::max_threads).
 *
 * @par At exit
 * It shuts down with shutdown_mode::cancel: queued calls complete with operation_aborted,
 * running stop-aware calls get a stop request. Exit then waits for the workers for at most
 * the exit grace (set_default_pool_exit_grace(), or `SMARTASYNC_EXIT_GRACE_MS`; default 2 s).
 * A call still running after it (one that ignores its stop token, a hung driver) is reported
 * through the diagnostics hook (diagnostic_kind::stop_ignored, naming the call) and left
 * running: the process exits without joining its worker. The pool itself is never destroyed,
 * so that worker never touches freed memory; what the call itself uses (other statics) is
 * destroyed as exit proceeds, which is why such a call is reported. Later async calls on the
 * pool complete with error::pool_stopped.
 */
inline blocking_pool& default_pool() { return detail::default_pool_holder::instance(); }

/// Sets how long process exit waits for the default pool's running calls (see default_pool())
/// and returns the previous value. Zero: do not wait for calls that are still running.
inline std::chrono::milliseconds set_default_pool_exit_grace(std::chrono::milliseconds grace) {
  return std::chrono::milliseconds(detail::default_pool_holder::grace_ms().exchange(
      std::max<std::int64_t>(0, grace.count()), std::memory_order_relaxed));
}

} // namespace smartasync

#endif // SMARTASYNC_BLOCKING_POOL_HPP
