// smartasync/blocking_pool.hpp - a bounded pool of threads for blocking work.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_BLOCKING_POOL_HPP
#define SMARTASYNC_BLOCKING_POOL_HPP

#include "smartasync/config.hpp"
#include "smartasync/diagnostics.hpp"
#include "smartasync/detail/call_site.hpp"
#include "smartasync/detail/pool_core.hpp"
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

namespace SMARTASYNC_NAMESPACE {

namespace detail {
class lane_core;
struct worker_helping;
struct default_pool_holder;
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
  /// Complete queued operations with asio::error::operation_aborted (error::deadline_expired
  /// for one whose deadline has passed by the time its handler runs), request stop on running
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
  /// must not use the pool. Empty: nothing. (On Linux and macOS the pool names its threads
  /// before this runs: workers `sa.pool-worker`; an elastic pool's grower `sa.pool-grower`;
  /// the slow-call and ignored-stop watcher `sa.pool-watcher`. A name set here replaces the
  /// worker's.)
  std::function<void()> on_thread_start{};
  /// A call that has been running on a worker for this long is reported through the
  /// diagnostics hook (diagnostic_kind::slow_call: the wrapper's name and creation site, or the
  /// callable's type; the worker thread; how long so far) and counted in
  /// pool_stats::slow_calls. Each call once; reports of one wrapper (or callable type) are
  /// rate-limited as a loop call's are (set_report_repeat_interval()). Every call run by the
  /// workers is watched: async_offload and smart_async's async form on the pool, on a
  /// serial_lane of it, and on a thread_affine_lane. The default, like the blocked-thread
  /// check of Vert.x's worker pools, is a minute: long enough that legitimate long work
  /// (an import, a report query) does not raise it, short enough to name a hung call (a lock
  /// wait, a peer that never answers) while it hangs. Zero: never watch.
  std::chrono::milliseconds report_slow_call_after{60000};
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
      : policy_(options.when_full), on_thread_start_(options.on_thread_start),
        core_(std::make_unique<detail::pool_core>(
            this, options.queue_capacity, options.when_full == full_policy::reject,
            options.spin_before_park, options.threads, options.max_threads, options.grow_after,
            options.keep_alive, options.report_ignored_stop_after,
            [this](const detail::call_identity& who, std::chrono::steady_clock::duration overrun) {
              report(ignored_stop_report(who, overrun));
            },
            options.report_slow_call_after,
            [this](const detail::slow_call& call) {
              report_slow_call(call);
              core_->calls.count_slow_call(); // after the report: see slow_calls()
            })),
        slow_after_(options.report_slow_call_after) {
    if (options.threads == 0 || options.queue_capacity == 0)
      throw std::invalid_argument("smartasync::blocking_pool needs at least one thread and a "
                                  "queue capacity of at least one");
    if (options.max_threads != 0 && options.max_threads < options.threads)
      throw std::invalid_argument("smartasync::blocking_pool: max_threads is less than threads "
                                  "(0 makes a fixed pool)");
    try {
      core_->threads.start(core_->queue, core_->park, [this](std::size_t slot) { worker_loop(slot); });
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
   * default pool is a static), a call whose arguments or captures hold the last owner of the
   * pool, or a handler without an executor that drops it. Then it joins the other workers,
   * and the calling worker, which cannot join itself, is detached and ends as soon as the call
   * or handler it is in returns. The pool's internal state stays with that worker until then
   * (the call's outcome is still counted and delivered); the pool object itself is not touched
   * again.
   */
  ~blocking_pool() {
    begin_shutdown(shutdown_mode::cancel);
    // From inside a call too, every other worker must have left its loop: the core goes away
    // with this worker (below), so no other may still be in a call that uses it.
    core_->threads.join(detail::current_pool_ == this, detail::worker_threads::until_all_left);
    core_->watcher.stop(); // after the workers: every watched call has returned
    core_->threads.detach_rest(); // only the calling worker is left (see shutdown)
    {
      std::lock_guard lock(core_->lifeline()->mutex);
      core_->lifeline()->pool = nullptr;
    }
    if (detail::current_pool_ == this) {
      detail::current_pool_ = nullptr; // tells worker_loop its pool is gone
      // This worker is inside one of our calls (perhaps nested, perhaps helping a block_on),
      // and once the call returns it counts the outcome and hands it on through the core: the
      // core goes with the worker, which frees it as it leaves its loop.
      detail::orphaned_core_ = core_.release();
    }
  }

  /// Stops accepting work, settles accepted work according to `mode`, joins the workers.
  /**
   * Later submissions complete with smartasync::error::pool_stopped, except a nested call: one
   * made by a call still running on one of this pool's workers runs inline, as nested calls
   * always do, whatever the mode. It is part of the call making it, which shutdown lets finish.
   * Calling it again, or from several threads, is safe: every caller returns once the workers
   * are joined.
   * Called from one of the pool's own workers, it waits until every other worker has left
   * (another thread's shutdown, or the destructor, joins them) or waits inside its call with
   * nothing of the pool's to run (for a lane's turn, a nested call, a block_on: what it waits
   * for may be the very call shutting down), and returns; the calling worker settles what is
   * left (with shutdown_mode::drain) after the call it is in.
   */
  void shutdown(shutdown_mode mode = shutdown_mode::drain) {
    begin_shutdown(mode);
    core_->threads.join(detail::current_pool_ == this);
  }

  /// True once shutdown() has begun.
  bool stopped() const {
    std::lock_guard lock(core_->queue.mutex());
    return core_->queue.closed_locked();
  }

private:
  friend struct detail::default_pool_holder;

  // The first half of shutdown(): stops accepting work, settles the queue according to `mode`,
  // asks running calls to stop, joins the grower. The workers finish on their own.
  void begin_shutdown(shutdown_mode mode) {
    detail::op_queue cancelled = core_->queue.close(mode == shutdown_mode::cancel);
    core_->park.wake_all();
    if (mode == shutdown_mode::cancel)
      core_->stop_source.request_stop();
    while (detail::pool_op* op = cancelled.pop_front()) {
      // Its handler says deadline_expired if it runs after the deadline (abort_refused).
      if (op->deadline_passed())
        core_->counters.note_expired(/*taken=*/false);
      else
        core_->counters.note_cancelled();
      op->abort_queued(make_aborted());
      op->release();
    }
    core_->threads.stop_grower();
  }

  // The default pool at process exit (default_pool()): shutdown(cancel), but the workers get
  // `grace` to return. A worker still inside a call then is reported and left running: the
  // pool is never destroyed, so it touches live memory until the process ends. True when every
  // worker (but the calling one, when exit() was called from inside a call) was joined.
  bool shutdown_at_exit(std::chrono::milliseconds grace) noexcept {
    try {
      begin_shutdown(shutdown_mode::cancel);
      const auto stuck =
          core_->threads.join_at_exit(grace, detail::current_pool_ == this, core_->calls);
      // No report from the watcher's thread once exit destroys what reports use.
      core_->watcher.stop();
      for (const auto& who : stuck)
        report(exit_report(who, grace));
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
  std::size_t thread_count() const noexcept { return core_->threads.count(); }

  /// The queue capacity.
  std::size_t queue_capacity() const noexcept { return core_->queue.capacity(); }

  /// The policy applied when the queue is full.
  full_policy when_full() const noexcept { return policy_; }

  /// Current counters; cheap (one short lock), callable at any time from any thread.
  pool_stats stats() const {
    pool_stats s;
    s.threads = thread_count();
    s.min_threads = core_->threads.min();
    s.max_threads = core_->threads.max();
    s.queue_capacity = core_->queue.capacity();
    // Outcomes first, then what was submitted and started: a snapshot taken while operations
    // finish then never shows more outcomes than submissions, nor more returns than starts.
    const detail::pool_outcomes o = core_->counters.outcomes();
    s.completed = o.completed;
    s.failed = o.failed;
    s.cancelled = o.cancelled;
    s.expired = o.expired;
    s.timed_out = o.timed_out;
    s.rejected = o.rejected;
    {
      std::lock_guard lock(core_->queue.mutex());
      const auto counts = core_->queue.counts_locked();
      s.queued = counts.admitted;
      s.parked = counts.parked;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
      s.waiting = s.parked; // the former name, filled until 2.0
#pragma GCC diagnostic pop
      s.blocked_submitters = counts.blocked_submitters;
      s.submitted = counts.submitted;
      s.running = detail::narrow<std::size_t>(counts.started - o.returned);
      s.threads_added = core_->threads.added_locked();
      s.threads_retired = core_->threads.retired_locked();
    }
    s.slow_calls = core_->calls.slow_calls();
    return s;
  }

  /// stats() plus queue-wait and run-time distributions; `fmt::format("{}", pool.metrics())`
  /// gives a one-line summary. Callable at any time, without stopping the pool.
  pool_metrics metrics() const {
    pool_metrics m;
    m.counts = stats();
    const auto wait = core_->counters.queue_wait();
    const auto run = core_->counters.run_time();
    m.queue_wait = {wait.count, wait.p50, wait.p99, wait.max};
    m.run_time = {run.count, run.p50, run.p99, run.max};
    return m;
  }

private:
  friend struct detail::worker_helping;
  friend struct detail::pool_access;
  friend class detail::lane_core;

  using admission = detail::admission;

  static error_code make_aborted() noexcept { return asio::error::operation_aborted; }

  // Links `op` into the FIFO; once accepted, the queue owns the caller's reference.
  // `may_block`: this thread is no event loop, so with full_policy::wait it waits for space
  // instead of parking the operation. `from_lane`: a serial_lane passes its turn on; the lane
  // accepted the operation already, so the pool's reject policy does not apply (it waits for
  // admission in FIFO order like a parked operation).
  admission submit(detail::pool_op* op, bool may_block, bool from_lane = false) {
    return core_->submit(op, may_block, from_lane);
  }

  // On one of our workers that must wait for something which may itself need this pool
  // (block_on of an awaitable that offloads here): runs queued operations while it waits, so
  // the pool cannot deadlock on its own blocked workers. `done` is read under the pool lock and set
  // through notify_helpers().
  template <typename Done>
  void help_until(Done done) {
    core_->park.help_until(core_->queue, core_->counters, std::move(done), [this](bool parked) {
      core_->threads.waiting_in_call_locked(parked);
    });
  }

  // Sets what help_until() waits for and wakes it. The helper cannot return before the lock
  // is released, so this is the last touch of the pool.
  template <typename SetDone>
  void notify_helpers(SetDone set_done) {
    std::lock_guard lock(core_->queue.mutex());
    set_done();
    core_->park.wake_all();
  }

  void worker_loop(std::size_t slot) noexcept {
    using clock = std::chrono::steady_clock;
    if (on_thread_start_)
      on_thread_start_(); // noexcept here: a throwing hook terminates, as documented
    detail::current_pool_ = this;
    // Through a local reference: the pool may be destroyed from inside a call this worker
    // runs, and then the core is all this worker may touch until it leaves (see ~blocking_pool).
    detail::pool_core& core = *core_;
    clock::time_point last_finish{}; // the clock read after the previous operation
    bool waited = true;
    std::unique_lock lock(core.queue.mutex());
    core.threads.arrived_locked();
    for (;;) {
      if (core.queue.empty_locked() && !core.queue.closed_locked() && !waited &&
          core.park.may_spin_locked(last_finish)) {
        // Just finished one: the next is often moments away (a loop resuming the caller and
        // submitting again). Look for it briefly, without the lock, before paying a park.
        core.park.spin_locked(lock, core.queue);
        waited = true; // not part of the next operation's run time
      }
      const auto idle_since = core.threads.elastic() ? clock::now() : clock::time_point{};
      while (core.queue.empty_locked() && !core.queue.closed_locked()) {
        waited = true;
        const bool idle_too_long =
            core.threads.may_retire_locked()
                ? core.park.park_locked(lock, core.threads.retire_at(idle_since))
                : core.park.park_locked(lock);
        if (idle_too_long && core.queue.empty_locked() && !core.queue.closed_locked() &&
            core.threads.may_retire_locked()) {
          core.threads.retire_locked(slot);
          return;
        }
      }
      detail::pool_op* op = core.queue.take_next_locked();
      if (!op) {
        core.threads.exited_locked(); // stopping and drained (shutdown_at_exit waits, bounded)
        return;
      }
      // Named by shutdown_at_exit if it never returns, and by the call watcher if it runs long.
      const bool wake_watcher = core.calls.running_locked(slot, *op);
      // Pass the wake-up on: more work is queued, a parked worker can take it in parallel.
      const bool wake_next =
          !core.queue.empty_locked() && core.park.claim_wake_to_pass_on_locked();
      // Work left behind and no worker free for it: an elastic pool's grower times it (a
      // burst submitted while idle workers were still waking up arms it here).
      const bool arm_grower =
          !core.queue.empty_locked() && core.threads.arm_grower_if_needed_locked();
      lock.unlock();
      if (wake_next)
        core.park.wake_one();
      if (arm_grower)
        core.threads.wake_grower();
      if (wake_watcher)
        core.watcher.calls_started();
      // One clock read per operation: straight from the previous one, it started when that
      // one finished (or when it was queued, if later).
      core.counters.start_running(op, waited ? clock::now() : last_finish);
      core.calls.started(slot, op->enqueued_at_);
      waited = false;
      op->execute(); // drops the queue's reference
      if (detail::current_pool_ != this) {
        // The pool was destroyed from inside that call and left us its core (~blocking_pool).
        delete std::exchange(detail::orphaned_core_, nullptr);
        return;
      }
      core.calls.returned(slot);
      last_finish = detail::last_return_;
      detail::admission_queue::lock_briefly(lock);
      core.calls.idle_locked(slot);
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

  // Rate-limited per wrapper (or callable type) and pool, as loop calls are per call site.
  void report_slow_call(const detail::slow_call& call) const noexcept {
    try {
      const detail::call_site* site = call.who.site;
      std::string key = fmt::format("slow|{}|", static_cast<const void*>(this));
      if (site)
        key += fmt::format("{}:{}:{}|{}", site->created_at.file_name(), site->created_at.line(),
                           site->created_at.column(), site->name);
      else if (call.who.type)
        key += call.who.type->name();
      const auto unreported = detail::report_due_key(std::move(key));
      if (!unreported)
        return;
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(call.running);
      report(diagnostic{
          .kind = diagnostic_kind::slow_call,
          .message = fmt::format(
              "{} has been running for {} ms on worker thread {} of a pool of {} threads "
              "(pool_options::report_slow_call_after: {} ms); its caller is still waiting. If "
              "it is stuck (a lock, a peer that never answers), give the blocking operation a "
              "timeout or interrupt it from a std::stop_token callback. Counted in "
              "pool_stats::slow_calls; reported again at most once per repeat interval{}.",
              call.who.describe(), ms.count(), detail::thread_text(call.thread), thread_count(),
              slow_after_.count(), detail::more_since(*unreported)),
          .name = site ? site->name : std::string(),
          .where = site ? site->created_at : smartasync::source_location{},
          .duration = std::chrono::duration_cast<std::chrono::nanoseconds>(call.running),
          .thread = call.thread,
          .created_at = site ? site->created_at : smartasync::source_location{},
      });
    } catch (...) {
      // A report must never take the watcher down.
    }
  }

  // The layout keeps the two sides of the pool off each other's cache lines. A submitter and
  // a worker exchange each operation through the mutex and the queue, which they share by
  // necessity; anything else one of them writes per operation lives on a line of its own, or
  // every operation would also pay for moving that line between their cores.

  // Read by both sides, never written after construction.
  const full_policy policy_;
  const std::function<void()> on_thread_start_;

  // The parts: the queue and the pool lock, the parked workers, the threads, the counters,
  // the call watcher (see detail::pool_core). On the heap, so that a worker inside a call that
  // destroys the pool keeps them until the call has returned (see ~blocking_pool).
  std::unique_ptr<detail::pool_core> core_;
  const std::chrono::milliseconds slow_after_;
};

/// @cond INTERNAL
namespace detail {

inline pool_core& pool_access::core(blocking_pool& pool) noexcept { return *pool.core_; }
inline const pool_core& pool_access::core(const blocking_pool& pool) noexcept {
  return *pool.core_;
}
inline std::shared_ptr<pool_lifeline> pool_access::lifeline(const blocking_pool& pool) {
  return pool.core_->lifeline();
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
/// @endcond

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
