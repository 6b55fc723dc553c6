// smartasync/serial_lane.hpp - blocking calls that run one at a time, in order, per resource.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_SERIAL_LANE_HPP
#define SMARTASYNC_SERIAL_LANE_HPP

#include "smartasync/config.hpp"
#include "smartasync/blocking_pool.hpp"
#include "smartasync/detail/call_site.hpp"
#include "smartasync/detail/call_target.hpp"
#include "smartasync/detail/latency_histogram.hpp"
#include "smartasync/detail/loop_guard.hpp"
#include "smartasync/detail/offload_op.hpp"
#include "smartasync/detail/pool_op.hpp"
#include "smartasync/error.hpp"
#include "smartasync/metrics.hpp"
#include "smartasync/offload.hpp"
#include "smartasync/source_location.hpp"
#include "smartasync/this_thread.hpp"

#include SMARTASYNC_ASIO_HEADER(async_result.hpp)
#include SMARTASYNC_ASIO_HEADER(use_awaitable.hpp)
#include SMARTASYNC_ASIO_HEADER(use_future.hpp)

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>

namespace SMARTASYNC_NAMESPACE {

class serial_lane;

/// Construction parameters of a serial_lane or a thread_affine_lane.
struct lane_options {
  /// Calls waiting for the lane's turn before `when_full` applies; at least 1.
  std::size_t queue_capacity = 1024;
  /// What a submission does when `queue_capacity` calls are already waiting: a plain thread
  /// waits for space (an event loop's operation queues anyway, without blocking the loop), or
  /// the call is refused with error::queue_full.
  full_policy when_full = full_policy::wait;
  /// A name for reports ("ledger writes"); the default is the lane's creation site. Kept with
  /// the lane (keyed_lanes: shared by all its lanes), and, since a report about one of its
  /// calls may come after the lane is gone, one copy per distinct name and creation site for
  /// the life of the process: name what the lane serialises, not each connection or key.
  std::string name{};
  /// What run() does on a thread running an event loop, as for a smart_async wrapper's sync
  /// form: report (run, then report how long the loop was blocked), strict (throw
  /// error::blocking_call_on_loop without running), silent. Contexts declared with
  /// allow_blocking() pass.
  loop_call_policy on_loop = loop_call_policy::report;
};

// The deprecated fields below would warn in the implicit constructors of every user's copy.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

/// A snapshot of a serial_lane's counters.
struct lane_stats {
  /// Calls waiting for the lane's turn (event-loop calls beyond queue_capacity included).
  std::size_t queued = 0;
  /// A call holds the turn: queued in the pool, running there, or running synchronously.
  bool busy = false;
  /// Threads blocked in a submission, waiting for space (full_policy::wait).
  std::size_t blocked_submitters = 0;
  /// Calls accepted, asynchronous and synchronous.
  std::uint64_t submitted = 0;
  /// Calls refused: error::queue_full (full_policy::reject), or the lane was closed.
  std::uint64_t rejected = 0;
  /// Calls cancelled while waiting for the turn (they never reached the pool).
  std::uint64_t cancelled = 0;
  /// Moved to lane_metrics (serial_lane::metrics()); still filled until 2.0.
  [[deprecated("use metrics().turn_wait")]] latency_summary turn_wait;
  /// The former name of `queued`, kept until 2.0 (a pool's "waiting" meant parked).
  [[deprecated("use queued")]] std::size_t waiting = 0;
};

#pragma GCC diagnostic pop

/// A serial_lane's counters plus the distribution of the time calls waited for the turn.
struct lane_metrics {
  /// The lane's counters (lane_stats).
  lane_stats counts;
  /// From submission to getting the turn (zero when the lane was idle); every call.
  latency_summary turn_wait;
};

namespace detail {

class lane_core;

// The lanes whose turn this thread holds, innermost first: a call running on a lane may make
// a synchronous call on another lane, which may call back into the first.
struct lane_scope {
  explicit lane_scope(const lane_core* l) noexcept : lane(l), outer(innermost) {
    innermost = this;
  }
  lane_scope(const lane_scope&) = delete;
  lane_scope& operator=(const lane_scope&) = delete;
  ~lane_scope() { innermost = outer; }

  const lane_core* lane;
  lane_scope* outer;
  static inline thread_local lane_scope* innermost = nullptr;
};

// What a serial_lane is: its FIFO and its turn. Shared by the lane and every call submitted
// through it, so that a call still holding the turn (or waiting for it) can pass it on, or
// learn it will never come, whenever the serial_lane object itself is destroyed: even from
// inside that very call.
class lane_core {
public:
  using admission = blocking_pool::admission;

  lane_core(blocking_pool& pool, const lane_options& options, smartasync::source_location where)
      : pool_(&pool), capacity_(options.queue_capacity), policy_(options.when_full),
        site_(options.name, options.on_loop, where, blocking_entry::serial_lane),
        interned_site_(intern_call_site(options.name, options.on_loop, where,
                                        blocking_entry::serial_lane)) {}
  lane_core(const lane_core&) = delete;
  lane_core& operator=(const lane_core&) = delete;

  blocking_pool& pool() const noexcept { return *pool_; }

  // Who the lane is, for the loop check of run().
  const call_site& site() const noexcept { return site_; }
  // The same, kept for the life of the process: reports about a call that went through the
  // lane (a slow one, one that ignores its stop) may come after the lane is gone.
  const call_site* interned_site() const noexcept { return interned_site_; }

  // True once the serial_lane is destroyed (its calls may still hold this core).
  bool closed() const {
    std::lock_guard lock(mutex_);
    return closed_;
  }

  bool is_current() const noexcept {
    for (const lane_scope* s = lane_scope::innermost; s; s = s->outer)
      if (s->lane == this)
        return true;
    return false;
  }

  // A synchronous caller waiting for the turn, linked in the FIFO like an operation.
  class sync_turn final : public pool_op {
  public:
    explicit sync_turn(const lane_core* l) noexcept : lane(l) {}
    void execute() noexcept override {}
    void abort(error_code) noexcept override {}
    void abandon() noexcept override {}
    // Under the lane's mutex.
    bool grant_turn() noexcept override {
      holds_turn = true;
      wake();
      return true;
    }
    bool refuse_turn() noexcept override {
      refused = true;
      wake();
      return true;
    }

    const lane_core* lane;
    bool granted = false;    // woken: under the lane's mutex, or the helped pool's
    bool holds_turn = false; // under the lane's mutex
    bool refused = false;    // the lane was destroyed first; under the lane's mutex
    blocking_pool* helped = nullptr;
    std::condition_variable cv;
    // The waits of this thread that run its pool's work meanwhile, innermost first: a call
    // taken from the pool there may itself wait for a lane, on top of them.
    sync_turn* outer = nullptr;
    static inline thread_local sync_turn* innermost = nullptr;

  private:
    void wake() noexcept {
      if (helped) {
        worker_helping::notify_helpers(*helped, [this] { granted = true; });
      } else {
        granted = true;
        cv.notify_one();
      }
    }
  };

  // Takes the caller's reference to `op` when accepted. A lane never blocks in the pool: it
  // holds at most one operation there, admitted past a full queue (blocking_pool::submit).
  admission submit(pool_op* op, bool may_block) {
    std::unique_lock lock(mutex_);
    for (;;) {
      if (closed_) {
        ++rejected_;
        return admission::stopped;
      }
      if (!busy_) {
        const admission admitted = pool_->submit(op, /*may_block=*/false, /*from_lane=*/true);
        if (admitted != admission::accepted) {
          ++rejected_;
          return admitted;
        }
        busy_ = true;
        ++submitted_;
        turn_wait_.record(std::chrono::nanoseconds::zero());
        return admission::accepted;
      }
      if (waiting_.size() < capacity_ || (policy_ == full_policy::wait && !may_block))
        break; // an event loop's operation waits its turn without blocking the loop
      if (policy_ == full_policy::reject) {
        ++rejected_;
        return admission::queue_full;
      }
      ++blocked_;
      space_cv_.wait(lock);
      --blocked_;
    }
    op->enqueued_at_ = std::chrono::steady_clock::now(); // only a call that waits reads the clock
    op->state_.store(op_state::in_lane, std::memory_order_relaxed);
    waiting_.push_back(op);
    ++submitted_;
    return admission::accepted;
  }

  // Unlinks `op` if it is still waiting for the turn; true if it was (the caller then owns
  // its handler). Drops the lane's reference; the caller holds its own.
  bool try_remove(pool_op* op) {
    {
      std::lock_guard lock(mutex_);
      if (op->state_.load(std::memory_order_relaxed) != op_state::in_lane)
        return false;
      waiting_.unlink(op);
      op->state_.store(op_state::cancelled, std::memory_order_release);
      ++cancelled_;
      if (blocked_ > 0)
        space_cv_.notify_all();
    }
    op->release();
    return true;
  }

  // The call holding the turn has returned (or left the pool without running): the next one
  // waiting gets it. An operation goes to the pool; a synchronous caller is woken.
  void pass_turn() noexcept {
    std::unique_lock lock(mutex_);
    for (;;) {
      pool_op* next = waiting_.pop_front();
      if (!next) {
        busy_ = false;
        if (closed_) { // only the destructor waits for the lane to go idle
          idle_cv_.notify_all();
          if (closer_helping_)
            worker_helping::notify_helpers(*closer_helping_, [this] { closer_saw_idle_ = true; });
        }
        return;
      }
      if (blocked_ > 0)
        space_cv_.notify_all();
      // The turn passes on the worker that just finished: one clock read for the lane's
      // metrics, where the pool reads one per operation anyway.
      turn_wait_.record(std::chrono::steady_clock::now() - next->enqueued_at_);
      if (next->grant_turn())
        return;
      // It stays in_lane until the pool has it (queued, under our mutex still): a canceller
      // meanwhile waits for our mutex in try_remove, then finds it in the pool's queue. In no
      // state in between, a cancellation would find it nowhere and be lost.
      if (pool_->submit(next, /*may_block=*/false, /*from_lane=*/true) == admission::accepted)
        return;
      // The pool has been shut down: this call cannot run. It completes with pool_stopped,
      // and the turn passes on, so that no call is left waiting.
      next->state_.store(op_state::cancelled, std::memory_order_relaxed);
      lock.unlock();
      next->abort(make_error_code(error::pool_stopped));
      next->release();
      lock.lock();
    }
  }

  // Blocks until this thread holds the turn: true when `waiter` got it and passes it on
  // after the call; false when an outer wait of this thread holds it (see below).
  // @throws system_error: queue_full (a full lane with full_policy::reject), or
  // operation_aborted (the lane was destroyed before the turn came).
  //
  // A pool worker waiting for the turn runs its pool's queued work, and a call it takes there
  // may wait for this lane too. Only the innermost wait of a thread can go on, so a wait
  // stacked on an earlier one of the same lane must never be served after it: the nested
  // wait takes the place just ahead of the outer one in the FIFO (bypassing the bound: the
  // outer one, admitted already, cannot move before it returns), and if the outer wait holds
  // the turn already, the nested call runs on that turn. Calls of other threads keep their
  // order.
  bool acquire_turn(sync_turn& waiter) {
    waiter.helped = this_thread::current_pool();
    std::unique_lock lock(mutex_);
    sync_turn* outer = waiter.helped ? waiting_here() : nullptr;
    if (outer && outer->holds_turn)
      return false;
    for (; !outer;) {
      if (closed_)
        throw_destroyed();
      if (!busy_) {
        busy_ = true;
        ++submitted_;
        turn_wait_.record(std::chrono::nanoseconds::zero());
        return true;
      }
      // One of our own workers never blocks for space: the calls it would wait for may need it.
      if (waiting_.size() < capacity_ || (policy_ == full_policy::wait && waiter.helped == pool_))
        break;
      if (policy_ == full_policy::reject) {
        ++rejected_;
        throw system_error(make_error_code(error::queue_full), "serial_lane::run");
      }
      ++blocked_;
      space_cv_.wait(lock);
      --blocked_;
    }
    waiter.enqueued_at_ = std::chrono::steady_clock::now();
    waiter.state_.store(op_state::in_lane, std::memory_order_relaxed);
    if (outer)
      waiting_.insert_before(outer, &waiter);
    else
      waiting_.push_back(&waiter);
    ++submitted_;
    if (waiter.helped) {
      // A pool worker: run the pool's queued work while waiting, which may be the very call
      // holding the turn.
      lock.unlock();
      {
        helping_scope stacked(waiter);
        worker_helping::help_until(*waiter.helped, [&] { return waiter.granted; });
      }
      lock.lock();
    } else {
      waiter.cv.wait(lock, [&] { return waiter.granted; });
    }
    if (waiter.refused)
      throw_destroyed();
    return true;
  }

  // The serial_lane is being destroyed: calls waiting for the turn are cancelled, later ones
  // refused; then it waits for the call holding the turn to return, unless that call is this
  // thread's (the lane destroyed from inside its own call), which passes the turn on to no
  // one when it returns, through its own reference to this core. On a pool worker it waits
  // the way acquire_turn() does, running the pool's queued work meanwhile: the call holding
  // the turn may be queued there, or may be shutting that pool down and waiting for this
  // worker to be out of the way.
  void close() noexcept {
    op_queue waiting;
    std::unique_lock lock(mutex_);
    closed_ = true;
    while (pool_op* op = waiting_.pop_front()) {
      ++cancelled_;
      if (op->refuse_turn()) // a synchronous caller, woken to throw
        continue;
      op->state_.store(op_state::cancelled, std::memory_order_relaxed);
      waiting.push_back(op);
    }
    space_cv_.notify_all();
    lock.unlock();
    while (pool_op* op = waiting.pop_front()) {
      op->abort_refused(asio::error::operation_aborted); // deadline_expired, once it passed
      op->release();
    }
    lock.lock();
    const sync_turn* outer = waiting_here();
    if (is_current() || (outer && outer->holds_turn) || !busy_)
      return;
    if (blocking_pool* helped = this_thread::current_pool()) {
      closer_helping_ = helped;
      lock.unlock();
      worker_helping::help_until(*helped, [&] { return closer_saw_idle_; });
      return;
    }
    idle_cv_.wait(lock, [&] { return !busy_; });
  }

  lane_stats stats() const {
    lane_stats s;
    std::lock_guard lock(mutex_);
    s.queued = waiting_.size();
    s.busy = busy_;
    s.blocked_submitters = blocked_;
    s.submitted = submitted_;
    s.rejected = rejected_;
    s.cancelled = cancelled_;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    // The former fields, filled until 2.0.
    s.waiting = s.queued;
    const auto wait = turn_wait_.summarize();
    s.turn_wait = {wait.count, wait.p50, wait.p99, wait.max};
#pragma GCC diagnostic pop
    return s;
  }

  // The whole distribution, for an exposition (metrics_registry); lock-free to read.
  const latency_histogram& turn_wait_histogram() const noexcept { return turn_wait_; }

  lane_metrics metrics() const {
    lane_metrics m;
    m.counts = stats();
    std::lock_guard lock(mutex_);
    const auto wait = turn_wait_.summarize();
    m.turn_wait = {wait.count, wait.p50, wait.p99, wait.max};
    return m;
  }

private:
  // Keeps `waiter` on its thread's stack of waits while it helps its pool.
  struct helping_scope {
    explicit helping_scope(sync_turn& w) noexcept : waiter(w) {
      waiter.outer = std::exchange(sync_turn::innermost, &waiter);
    }
    helping_scope(const helping_scope&) = delete;
    helping_scope& operator=(const helping_scope&) = delete;
    ~helping_scope() { sync_turn::innermost = waiter.outer; }
    sync_turn& waiter;
  };

  // The innermost wait of this thread for this lane's turn, or null.
  sync_turn* waiting_here() const noexcept {
    for (sync_turn* w = sync_turn::innermost; w; w = w->outer)
      if (w->lane == this)
        return w;
    return nullptr;
  }

  [[noreturn]] static void throw_destroyed() {
    throw system_error(make_error_code(asio::error::operation_aborted),
                       "serial_lane::run: the lane was destroyed before the call's turn came");
  }

  blocking_pool* pool_;
  const std::size_t capacity_;
  const full_policy policy_;
  const call_site site_;
  const call_site* const interned_site_;
  mutable std::mutex mutex_;
  op_queue waiting_;    // calls waiting for the turn (empty whenever !busy_)
  bool busy_ = false;   // a call holds the turn
  bool closed_ = false; // the serial_lane is being (or has been) destroyed
  std::size_t blocked_ = 0;
  std::condition_variable space_cv_; // blocked submitters wait for space
  std::condition_variable idle_cv_;  // the destructor waits for the turn to come back
  blocking_pool* closer_helping_ = nullptr; // the destructor waits on this pool's worker
  bool closer_saw_idle_ = false;            // under closer_helping_'s lock
  std::uint64_t submitted_ = 0, rejected_ = 0, cancelled_ = 0;
  latency_histogram turn_wait_;
};

// The callable of an operation submitted through a lane: the lane's turn is visible to what
// it calls (nested calls on the same lane run inline), and offload_op finds the lane here.
// It keeps the lane's core alive until the operation is destroyed.
template <typename Work>
struct lane_work {
  Work work;
  std::shared_ptr<lane_core> lane_;

  lane_core* lane() const noexcept { return lane_.get(); }
  const call_site* lane_site() const noexcept { return lane_->interned_site(); }
  bool abandons_on_cancel() const noexcept { return abandons_running_call(work); }

  decltype(auto) operator()()
    requires std::is_invocable_v<Work&>
  {
    lane_scope turn(lane_.get());
    return work();
  }
  decltype(auto) operator()(std::stop_token token)
    requires(!std::is_invocable_v<Work&> && std::is_invocable_v<Work&, std::stop_token>)
  {
    lane_scope turn(lane_.get());
    return work(std::move(token));
  }
};

// serial_lane::run() once the loop check has passed (a smart_async wrapper on the lane makes
// its own). `core` is the caller's own reference: `f` may destroy the lane.
template <typename F>
std::invoke_result_t<F&> run_on_lane(const std::shared_ptr<lane_core>& core, F& f) {
  if (core->is_current())
    return std::invoke(f);
  lane_core::sync_turn waiter(core.get());
  if (!core->acquire_turn(waiter)) {
    // An earlier run() on this thread holds the turn and is waiting for this call to return:
    // run on its turn, which it keeps.
    lane_scope turn(core.get());
    return std::invoke(f);
  }
  struct pass_on_exit {
    lane_core* lane;
    ~pass_on_exit() { lane->pass_turn(); }
  } pass{core.get()};
  lane_scope turn(core.get());
  return std::invoke(f);
}

// What async_offload(lane, ...) needs of a serial_lane: its core, shared with the operation.
struct lane_access {
  static const std::shared_ptr<lane_core>& core(const serial_lane& lane) noexcept;
};

} // namespace detail

/// A FIFO of blocking calls that run one at a time, on a shared blocking_pool.
/**
 * For a resource that must not be used by two calls at once (a SQLite connection, a file, an
 * account): every call submitted through the lane runs after the previous one has returned,
 * in submission order, on whichever worker of the pool is free. A lane holds no thread: while
 * it is idle it costs nothing but its memory, so thousands of lanes can share one pool; at
 * most one call of a lane is in the pool at any time (queued or running), and it is admitted
 * there without the pool's reject policy, since the lane has already accepted it.
 *
 * Both forms keep "one at a time": async_offload(lane, f, token) queues the call (a cancelled
 * call waiting for its turn is removed and completes with operation_aborted); run(f) waits
 * for the turn on the calling thread and runs `f` there. A call made from inside the lane's
 * own running call (either form) runs inline at once: it already holds the turn.
 *
 * @par Lifetime
 * The pool must outlive the lane and the operations submitted through it. The lane itself
 * may be destroyed at any time, even from inside one of its own calls: its calls share its
 * state. The destructor completes the asynchronous calls still waiting for the turn with
 * operation_aborted (error::deadline_expired for one whose deadline has passed; a run()
 * still waiting throws operation_aborted), then waits for the call holding
 * the turn to return, unless it is called from inside that call.
 *
 * @par Thread safety
 * Every member function may be called concurrently, except the destructor.
 *
 * smart_async(lane, f, options) wraps a callable whose every call goes through the lane, with
 * a wrapper's name, reports and both forms.
 *
 * @par Example
 * @code
 * smartasync::serial_lane writes{pool};            // one writer on this connection at a time
 * co_await smartasync::async_offload(writes, [&] { db.insert(row); });
 * @endcode
 */
class serial_lane {
public:
  /// A lane on `pool`.
  /// @param pool The pool whose workers run the lane's calls; it must outlive the lane.
  /// @param options The lane's queue bound, full policy, name and loop policy.
  /// @throws std::invalid_argument if options.queue_capacity is 0.
  /// @param where Where the lane is made, named in reports; leave it defaulted.
  explicit serial_lane(blocking_pool& pool, lane_options options = {},
                       smartasync::source_location where = smartasync::source_location::current())
      : core_(make_core(pool, options, where)) {}
  serial_lane(const serial_lane&) = delete;
  serial_lane& operator=(const serial_lane&) = delete;

  ~serial_lane() { core_->close(); }

  /// The pool whose workers run the lane's asynchronous calls.
  blocking_pool& pool() const noexcept { return core_->pool(); }

  /// True when this thread is inside a call running on this lane.
  bool is_current() const noexcept { return core_->is_current(); }

  /// Runs `f()` on this thread when the lane's turn comes, and returns what it returns.
  /**
   * Blocks until every call submitted before it has returned. Inside the lane's own call it
   * runs at once.
   *
   * A pool worker waiting here runs its pool's queued work meanwhile, so a lane on the same
   * pool cannot deadlock on it, even with one thread. A call the worker takes up that way and
   * that also waits for this lane is served just before the wait it interrupted (which
   * cannot resume until it returns), or runs at once if that wait holds the turn already; it
   * is admitted beyond the lane's queue_capacity. A worker of the lane's own pool never
   * blocks for space in a full lane with full_policy::wait: it waits for the turn beyond the
   * bound, as an event loop's call does.
   *
   * On a thread running an event loop it blocks the loop: lane_options::on_loop decides, as
   * for a smart_async wrapper's sync form (report, with `called_at`; strict, throwing
   * error::blocking_call_on_loop before `f` runs or the lane is touched; silent).
   * @throws smartasync::system_error with error::queue_full when the lane is full and its
   * policy is full_policy::reject; with asio::error::operation_aborted when the lane is
   * destroyed before the turn comes; with error::blocking_call_on_loop (strict, see above);
   * whatever `f` throws.
   */
  template <typename F>
  std::invoke_result_t<F&> run(F&& f, smartasync::source_location called_at =
                                          smartasync::source_location::current()) {
    // Our own reference: `f` may destroy the lane, and the turn is passed on after it.
    const std::shared_ptr<detail::lane_core> core = core_;
    if (core->is_current())
      return std::invoke(f); // the turn is this thread's: the outer call was checked
    detail::loop_guard guard(core->site(), detail::call_origin{called_at, true});
    return detail::run_on_lane(core, f);
  }

  /// Current counters; cheap (one short lock).
  lane_stats stats() const { return core_->stats(); }

  /// stats() plus the distribution of the time calls waited for the turn. Callable at any
  /// time, from any thread.
  lane_metrics metrics() const { return core_->metrics(); }

private:
  friend struct detail::lane_access;

  static std::shared_ptr<detail::lane_core> make_core(blocking_pool& pool,
                                                      const lane_options& options,
                                                      smartasync::source_location where) {
    if (options.queue_capacity == 0)
      throw std::invalid_argument("smartasync::serial_lane needs a queue capacity of at least one");
    return std::make_shared<detail::lane_core>(pool, options, where);
  }

  std::shared_ptr<detail::lane_core> core_;
};

inline const std::shared_ptr<detail::lane_core>&
detail::lane_access::core(const serial_lane& lane) noexcept {
  return lane.core_;
}

/// Runs `work` on `lane`'s pool after every call submitted to the lane before it has
/// returned, and completes through `token`.
/**
 * As async_offload(pool, work, token) in every other respect: completion signature,
 * cancellation (a call still waiting for its turn is removed at once), deadlines, the
 * executor the handler runs on.
 */
template <offloadable Work, typename CompletionToken = asio::use_awaitable_t<>>
auto async_offload(serial_lane& lane, Work&& work, CompletionToken&& token = CompletionToken()) {
  return asio::async_initiate<CompletionToken, offload_signature_t<Work>>(
      detail::initiate_offload{&lane.pool()}, token,
      detail::lane_work<std::decay_t<Work>>{std::forward<Work>(work),
                                            detail::lane_access::core(lane)});
}

namespace detail {
// thread_affine_lane::run() once the loop check has passed: `f` on the one thread of `pool`.
template <typename F>
work_result_t<std::decay_t<F>> run_on_thread_of(blocking_pool& pool, F& f) {
  if (this_thread::current_pool() == &pool)
    return std::invoke(f);
  auto call = [&f]() -> decltype(auto) { return std::invoke(f); };
  return async_offload(pool, call, asio::use_future).get();
}
} // namespace detail

/// A lane whose calls all run on one dedicated thread, for handles bound to their thread.
/**
 * Some handles must be used from the thread that created them (thread-affine C libraries,
 * some GUI and COM objects, a SQLite connection opened without SQLITE_OPENMODE_FULLMUTEX on a
 * build that checks). Every call, asynchronous or synchronous, runs on thread_id(), one at a
 * time in submission order. Unlike serial_lane it owns its thread (a blocking_pool of one
 * worker, with the lane's queue bound and policy): run(f) from any other thread hops there
 * and blocks until `f` has returned; from the lane's own thread it runs inline.
 */
class thread_affine_lane {
public:
  /// Starts the lane's own thread.
  /// @param options The lane's queue bound and full policy (as for a serial_lane), name and
  ///        loop policy.
  /// @param where Where the lane is made, named in reports; leave it defaulted.
  explicit thread_affine_lane(lane_options options = {},
                              smartasync::source_location where =
                                  smartasync::source_location::current())
      : pool_(pool_options{.threads = 1,
                           .queue_capacity = options.queue_capacity,
                           .when_full = options.when_full}),
        site_(std::move(options.name), options.on_loop, where,
              detail::blocking_entry::thread_affine_lane) {
    // The pool's one fixed worker never retires, so its thread is the lane's for good. (Asking
    // the worker itself, through a call, costs every includer of this header the compile
    // time of a whole offload operation.)
    thread_ = detail::pool_access::core(pool_).threads.thread_id(0);
  }
  thread_affine_lane(const thread_affine_lane&) = delete;
  thread_affine_lane& operator=(const thread_affine_lane&) = delete;

  /// The thread every call of this lane runs on.
  std::thread::id thread_id() const noexcept { return thread_; }

  /// The one-thread pool behind the lane (its metrics are the lane's).
  blocking_pool& pool() noexcept { return pool_; }

  /// Runs `f()` on the lane's thread and returns what it returns (rethrows what it throws).
  /**
   * From any other thread it blocks until `f` has returned. On a thread running an event loop
   * lane_options::on_loop decides, as for a smart_async wrapper's sync form (report, naming
   * `called_at`; strict, throwing error::blocking_call_on_loop before `f` is queued; silent).
   */
  template <typename F>
  detail::work_result_t<std::decay_t<F>> run(F&& f, smartasync::source_location called_at =
                                                        smartasync::source_location::current()) {
    if (this_thread::current_pool() == &pool_)
      return std::invoke(f);
    detail::loop_guard guard(site_, detail::call_origin{called_at, true});
    return run_unchecked(f);
  }

private:
  // run() once the loop check has passed (or is not wanted).
  template <typename F>
  detail::work_result_t<std::decay_t<F>> run_unchecked(F&& f) {
    return detail::run_on_thread_of(pool_, f);
  }

  blocking_pool pool_;
  const detail::call_site site_;
  std::thread::id thread_;
};

/// Runs `work` on `lane`'s thread and completes through `token`; as async_offload(pool, ...).
template <offloadable Work, typename CompletionToken = asio::use_awaitable_t<>>
auto async_offload(thread_affine_lane& lane, Work&& work,
                   CompletionToken&& token = CompletionToken()) {
  return async_offload(lane.pool(), std::forward<Work>(work),
                       std::forward<CompletionToken>(token));
}

namespace detail {

// A smart_async wrapper's initiation on a serial lane: async_offload(lane, ...) while the
// lane's pool exists. A destroyed lane refuses the call (error::pool_stopped, as a closed pool).
struct initiate_lane_smart_call {
  std::shared_ptr<lane_core> lane;
  std::shared_ptr<pool_lifeline> lifeline; // the lane's pool's

  template <typename Handler, typename Work>
  void operator()(Handler&& handler, Work&& work) const {
    blocking_pool* pool = lifeline->pool.load(std::memory_order_acquire);
    if (!pool) [[unlikely]]
      return complete_pool_gone::complete<Handler, Work>(std::forward<Handler>(handler));
    initiate_offload{pool}(std::forward<Handler>(handler),
                           lane_work<std::decay_t<Work>>{std::forward<Work>(work), lane});
  }
};

// A wrapper on a serial_lane holds the lane's shared state, not the lane: once the lane is
// destroyed the state says so (closed), and nothing freed is touched.
template <>
struct call_target<serial_lane> {
  std::shared_ptr<lane_core> lane;
  std::shared_ptr<pool_lifeline> lifeline;

  explicit call_target(serial_lane& l)
      : lane(lane_access::core(l)), lifeline(pool_access::lifeline(l.pool())) {}

  blocking_pool& executor_pool() const { return lane->pool(); }
  template <typename Call>
  std::invoke_result_t<Call&> run_sync(Call& call) const {
    return run_on_lane(lane, call);
  }
  initiate_lane_smart_call initiation() const { return {lane, lifeline}; }
};

// A wrapper on a thread_affine_lane holds the lifeline of the lane's own pool, which dies with
// the lane.
template <>
struct call_target<thread_affine_lane> {
  std::shared_ptr<pool_lifeline> lifeline;

  explicit call_target(thread_affine_lane& l) : lifeline(pool_access::lifeline(l.pool())) {}

  blocking_pool& executor_pool() const { return pool_or_throw(); }
  template <typename Call>
  std::invoke_result_t<Call&> run_sync(Call& call) const {
    blocking_pool& pool = pool_or_throw();
    using result = std::invoke_result_t<Call&>;
    if constexpr (std::is_reference_v<result>) {
      // The call returns a reference: it travels back as a pointer, not as a copy.
      auto address = [&call] { return std::addressof(call()); };
      return static_cast<result>(*run_on_thread_of(pool, address));
    } else {
      return run_on_thread_of(pool, call);
    }
  }
  initiate_smart_call initiation() const { return {lifeline}; }

private:
  blocking_pool& pool_or_throw() const {
    blocking_pool* pool = lifeline->pool.load(std::memory_order_acquire);
    if (!pool)
      throw system_error(make_error_code(error::pool_stopped),
                         "smart_async: the thread_affine_lane this wrapper runs on was destroyed");
    return *pool;
  }
};

} // namespace detail

/// One serial_lane per key, created on first use, all on one pool.
/**
 * `lanes[key]` returns the key's lane, creating it if needed; the reference stays valid until
 * the keyed_lanes is destroyed (lanes are not evicted: keep the key space bounded, e.g. one
 * key per connection or per account shard).
 *
 * @par Example
 * @code
 * smartasync::keyed_lanes<std::string> accounts{pool};
 * co_await smartasync::async_offload(accounts[account_id], [&] { ledger.debit(account_id, n); });
 * @endcode
 */
template <typename Key, typename Hash = std::hash<Key>, typename KeyEqual = std::equal_to<Key>>
class keyed_lanes {
public:
  /// Lanes on `pool`, each created on first use with `options`.
  /// Every lane gets `options`, name and loop policy included; reports name the key's lane by
  /// that name and by `where`.
  explicit keyed_lanes(blocking_pool& pool, lane_options options = {},
                       smartasync::source_location where = smartasync::source_location::current())
      : pool_(&pool), options_(std::move(options)), where_(where) {}

  /// The lane of `key`.
  serial_lane& operator[](const Key& key) {
    std::lock_guard lock(mutex_);
    auto& lane = lanes_[key];
    if (!lane)
      lane = std::make_unique<serial_lane>(*pool_, options_, where_);
    return *lane;
  }

  /// How many lanes exist.
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return lanes_.size();
  }

private:
  blocking_pool* pool_;
  lane_options options_;
  smartasync::source_location where_;
  mutable std::mutex mutex_;
  std::unordered_map<Key, std::unique_ptr<serial_lane>, Hash, KeyEqual> lanes_;
};

} // namespace smartasync

#endif // SMARTASYNC_SERIAL_LANE_HPP
