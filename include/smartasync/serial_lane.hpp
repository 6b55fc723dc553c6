// smartasync/serial_lane.hpp - blocking calls that run one at a time, in order, per resource.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_SERIAL_LANE_HPP
#define SMARTASYNC_SERIAL_LANE_HPP

#include "smartasync/config.hpp"
#include "smartasync/blocking_pool.hpp"
#include "smartasync/detail/latency_histogram.hpp"
#include "smartasync/detail/offload_op.hpp"
#include "smartasync/detail/pool_op.hpp"
#include "smartasync/error.hpp"
#include "smartasync/metrics.hpp"
#include "smartasync/offload.hpp"
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
  /// Moved to lane_metrics (serial_lane::metrics()); still filled for one release.
  [[deprecated("use metrics().turn_wait")]] latency_summary turn_wait;
  /// The former name of `queued`, kept for one release (a pool's "waiting" meant parked).
  [[deprecated("use queued")]] std::size_t waiting = 0;
};

#pragma GCC diagnostic pop

/// A serial_lane's counters plus the distribution of the time calls waited for the turn.
struct lane_metrics {
  lane_stats counts;
  /// From submission to getting the turn (zero when the lane was idle); every call.
  latency_summary turn_wait;
};

namespace detail {

// The lanes whose turn this thread holds, innermost first: a call running on a lane may make
// a synchronous call on another lane, which may call back into the first.
struct lane_scope {
  explicit lane_scope(const serial_lane* l) noexcept : lane(l), outer(innermost) {
    innermost = this;
  }
  lane_scope(const lane_scope&) = delete;
  lane_scope& operator=(const lane_scope&) = delete;
  ~lane_scope() { innermost = outer; }

  const serial_lane* lane;
  lane_scope* outer;
  static inline thread_local lane_scope* innermost = nullptr;
};

// The callable of an operation submitted through a lane: the lane's turn is visible to what
// it calls (nested calls on the same lane run inline), and offload_op finds the lane here.
template <typename Work>
struct lane_work {
  Work work;
  serial_lane* lane_;

  serial_lane* lane() const noexcept { return lane_; }
  bool abandons_on_cancel() const noexcept { return abandons_running_call(work); }

  decltype(auto) operator()()
    requires std::is_invocable_v<Work&>
  {
    lane_scope turn(lane_);
    return work();
  }
  decltype(auto) operator()(std::stop_token token)
    requires(!std::is_invocable_v<Work&> && std::is_invocable_v<Work&, std::stop_token>)
  {
    lane_scope turn(lane_);
    return work(std::move(token));
  }
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
 * The pool must outlive the lane, and the lane must outlive the operations submitted through
 * it (until their handlers have run). The destructor cancels calls still waiting for the
 * turn and waits for the one holding it to return.
 *
 * @par Thread safety
 * Every member function may be called concurrently, except the destructor.
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
  /// @throws std::invalid_argument if options.queue_capacity is 0.
  explicit serial_lane(blocking_pool& pool, lane_options options = {})
      : pool_(&pool), capacity_(options.queue_capacity), policy_(options.when_full) {
    if (capacity_ == 0)
      throw std::invalid_argument("smartasync::serial_lane needs a queue capacity of at least one");
  }
  serial_lane(const serial_lane&) = delete;
  serial_lane& operator=(const serial_lane&) = delete;

  ~serial_lane() {
    detail::op_queue waiting;
    std::unique_lock lock(mutex_);
    closed_ = true;
    while (detail::pool_op* op = waiting_.pop_front()) {
      op->state_.store(detail::op_state::cancelled, std::memory_order_relaxed);
      waiting.push_back(op);
      ++cancelled_;
    }
    space_cv_.notify_all();
    lock.unlock();
    while (detail::pool_op* op = waiting.pop_front()) {
      op->abort(asio::error::operation_aborted);
      op->release();
    }
    lock.lock();
    if (!is_current()) // from inside its own call the turn cannot come back: do not wait for it
      idle_cv_.wait(lock, [&] { return !busy_; });
  }

  /// The pool whose workers run the lane's asynchronous calls.
  blocking_pool& pool() const noexcept { return *pool_; }

  /// True when this thread is inside a call running on this lane.
  bool is_current() const noexcept {
    for (const detail::lane_scope* s = detail::lane_scope::innermost; s; s = s->outer)
      if (s->lane == this)
        return true;
    return false;
  }

  /// Runs `f()` on this thread when the lane's turn comes, and returns what it returns.
  /**
   * Blocks until every call submitted before it has returned (a pool worker waiting here runs
   * its pool's queued work meanwhile, so a lane on the same pool cannot deadlock on it).
   * Inside the lane's own call it runs at once.
   * @throws smartasync::system_error with error::queue_full when the lane is full and its
   * policy is full_policy::reject; whatever `f` throws.
   */
  template <typename F>
  std::invoke_result_t<F&> run(F&& f) {
    if (is_current())
      return std::invoke(f);
    acquire_turn();
    struct pass_on_exit {
      serial_lane* lane;
      ~pass_on_exit() { lane->pass_turn(); }
    } pass{this};
    detail::lane_scope turn(this);
    return std::invoke(f);
  }

  /// Current counters; cheap (one short lock).
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
    // The former fields, filled for one release.
    s.waiting = s.queued;
    const auto wait = turn_wait_.summarize();
    s.turn_wait = {wait.count, wait.p50, wait.p99, wait.max};
#pragma GCC diagnostic pop
    return s;
  }

  /// stats() plus the distribution of the time calls waited for the turn. Callable at any
  /// time, from any thread.
  lane_metrics metrics() const {
    lane_metrics m;
    m.counts = stats();
    std::lock_guard lock(mutex_);
    const auto wait = turn_wait_.summarize();
    m.turn_wait = {wait.count, wait.p50, wait.p99, wait.max};
    return m;
  }

private:
  template <typename, typename>
  friend class detail::offload_op;

  using admission = blocking_pool::admission;

  // A synchronous caller waiting for the turn, linked in the FIFO like an operation.
  class sync_turn final : public detail::pool_op {
  public:
    void execute() noexcept override {}
    void abort(error_code) noexcept override {}
    void abandon() noexcept override {}
    // Under the lane's mutex.
    bool grant_turn() noexcept override {
      if (helped) {
        detail::worker_helping::notify_helpers(*helped, [this] { granted = true; });
      } else {
        granted = true;
        cv.notify_one();
      }
      return true;
    }

    bool granted = false; // under the lane's mutex, or the helped pool's
    blocking_pool* helped = nullptr;
    std::condition_variable cv;
  };

  // Takes the caller's reference to `op` when accepted. A lane never blocks in the pool: it
  // holds at most one operation there, admitted past a full queue (blocking_pool::submit).
  admission submit(detail::pool_op* op, bool may_block) {
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
    op->state_.store(detail::op_state::in_lane, std::memory_order_relaxed);
    waiting_.push_back(op);
    ++submitted_;
    return admission::accepted;
  }

  // Unlinks `op` if it is still waiting for the turn; true if it was (the caller then owns
  // its handler). Drops the lane's reference; the caller holds its own.
  bool try_remove(detail::pool_op* op) {
    {
      std::lock_guard lock(mutex_);
      if (op->state_.load(std::memory_order_relaxed) != detail::op_state::in_lane)
        return false;
      waiting_.unlink(op);
      op->state_.store(detail::op_state::cancelled, std::memory_order_release);
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
      detail::pool_op* next = waiting_.pop_front();
      if (!next) {
        busy_ = false;
        if (closed_) // only the destructor waits for the lane to go idle
          idle_cv_.notify_all();
        return;
      }
      if (blocked_ > 0)
        space_cv_.notify_all();
      // The turn passes on the worker that just finished: one clock read for the lane's
      // metrics, where the pool reads one per operation anyway.
      turn_wait_.record(std::chrono::steady_clock::now() - next->enqueued_at_);
      if (next->grant_turn())
        return;
      next->state_.store(detail::op_state::idle, std::memory_order_relaxed);
      if (pool_->submit(next, /*may_block=*/false, /*from_lane=*/true) == admission::accepted)
        return;
      // The pool has been shut down: this call cannot run. It completes with pool_stopped,
      // and the turn passes on, so that no call is left waiting.
      next->state_.store(detail::op_state::cancelled, std::memory_order_relaxed);
      lock.unlock();
      next->abort(make_error_code(error::pool_stopped));
      next->release();
      lock.lock();
    }
  }

  // Blocks until this thread holds the turn.
  void acquire_turn() {
    sync_turn waiter;
    std::unique_lock lock(mutex_);
    for (;;) {
      if (!busy_) {
        busy_ = true;
        ++submitted_;
        turn_wait_.record(std::chrono::nanoseconds::zero());
        return;
      }
      if (waiting_.size() < capacity_)
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
    waiter.state_.store(detail::op_state::in_lane, std::memory_order_relaxed);
    waiter.helped = this_thread::current_pool();
    waiting_.push_back(&waiter);
    ++submitted_;
    if (waiter.helped) {
      // A pool worker: run the pool's queued work while waiting, which may be the very call
      // holding the turn.
      lock.unlock();
      detail::worker_helping::help_until(*waiter.helped, [&] { return waiter.granted; });
    } else {
      waiter.cv.wait(lock, [&] { return waiter.granted; });
    }
  }

  blocking_pool* pool_;
  const std::size_t capacity_;
  const full_policy policy_;
  mutable std::mutex mutex_;
  detail::op_queue waiting_; // calls waiting for the turn (empty whenever !busy_)
  bool busy_ = false;        // a call holds the turn
  bool closed_ = false;      // being destroyed
  std::size_t blocked_ = 0;
  std::condition_variable space_cv_; // blocked submitters wait for space
  std::condition_variable idle_cv_;  // the destructor waits for the turn to come back
  std::uint64_t submitted_ = 0, rejected_ = 0, cancelled_ = 0;
  detail::latency_histogram turn_wait_;
};

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
      detail::lane_work<std::decay_t<Work>>{std::forward<Work>(work), &lane});
}

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
  explicit thread_affine_lane(lane_options options = {})
      : pool_(pool_options{.threads = 1,
                           .queue_capacity = options.queue_capacity,
                           .when_full = options.when_full}) {
    thread_ = run([] { return std::this_thread::get_id(); });
  }
  thread_affine_lane(const thread_affine_lane&) = delete;
  thread_affine_lane& operator=(const thread_affine_lane&) = delete;

  /// The thread every call of this lane runs on.
  std::thread::id thread_id() const noexcept { return thread_; }

  /// The one-thread pool behind the lane (its metrics are the lane's).
  blocking_pool& pool() noexcept { return pool_; }

  /// Runs `f()` on the lane's thread and returns what it returns (rethrows what it throws).
  template <typename F>
  detail::work_result_t<std::decay_t<F>> run(F&& f) {
    if (this_thread::current_pool() == &pool_)
      return std::invoke(f);
    auto call = [&f]() -> decltype(auto) { return std::invoke(f); };
    return async_offload(pool_, call, asio::use_future).get();
  }

private:
  blocking_pool pool_;
  std::thread::id thread_;
};

/// Runs `work` on `lane`'s thread and completes through `token`; as async_offload(pool, ...).
template <offloadable Work, typename CompletionToken = asio::use_awaitable_t<>>
auto async_offload(thread_affine_lane& lane, Work&& work,
                   CompletionToken&& token = CompletionToken()) {
  return async_offload(lane.pool(), std::forward<Work>(work),
                       std::forward<CompletionToken>(token));
}

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
  explicit keyed_lanes(blocking_pool& pool, lane_options options = {})
      : pool_(&pool), options_(options) {}

  /// The lane of `key`.
  serial_lane& operator[](const Key& key) {
    std::lock_guard lock(mutex_);
    auto& lane = lanes_[key];
    if (!lane)
      lane = std::make_unique<serial_lane>(*pool_, options_);
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
  mutable std::mutex mutex_;
  std::unordered_map<Key, std::unique_ptr<serial_lane>, Hash, KeyEqual> lanes_;
};

} // namespace smartasync

#endif // SMARTASYNC_SERIAL_LANE_HPP
