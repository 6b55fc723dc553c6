// smartasync/detail/completion_service.hpp - completes operations safely into an execution
// context that may be destroyed while they run.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_COMPLETION_SERVICE_HPP
#define SMARTASYNC_DETAIL_COMPLETION_SERVICE_HPP

#include "smartasync/config.hpp"
#include "smartasync/detail/pool_op.hpp"

#include SMARTASYNC_ASIO_HEADER(execution_context.hpp)
#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(post.hpp)

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

namespace SMARTASYNC_NAMESPACE::detail {

// A pool worker may finish long after the io_context that awaits the result was stopped and
// destroyed. Asio's own operations live inside their context and are destroyed by its
// shutdown; ours live in the pool. So each context gets a completion_service whose shutdown()
// (run while the context is still intact) abandons the operations that would complete into it
// and waits out any delivery in progress. The bookkeeping lives in a registry that the
// abandoned operations keep alive, because a late worker must still be able to ask "was I
// abandoned?" after the service itself is gone.
class completion_registry : public std::enable_shared_from_this<completion_registry> {
public:
  // Registers `op`, which already holds the reference the registry keeps while it tracks it.
  // `work_for`: the io_context (ours) whose outstanding work the registry is to keep up on
  // behalf of `op`, which then needs no work guard of its own; null when `op` has one. One
  // count under the lock we take anyway replaces an atomic increment and decrement of the
  // context's counter per operation, both on the loop thread. False when the context is
  // shutting down.
  bool track(tracked_op* op, asio::io_context* work_for) {
    std::lock_guard lock(mutex_);
    if (shut_down_)
      return false;
    if (work_for) {
      if (counted_work_++ == 0)
        work_.emplace(asio::require(work_for->get_executor(),
                                    asio::execution::outstanding_work.tracked));
      op->registry_holds_work_ = true;
    }
    op->service_prev_ = nullptr;
    op->service_next_ = head_;
    if (head_)
      head_->service_prev_ = op;
    head_ = op;
    return true;
  }

  // Runs `post` (which hands the completion to the context) unless the context has abandoned
  // `op`. `post` runs without our lock held, because an inline-executing executor may run user
  // code that starts the next operation into this same context.
  template <typename Post>
  bool deliver(tracked_op* op, Post&& post) {
    // The context's work that `op` counted in, held until `post` has handed the completion
    // over (which counts as work of its own): released any earlier, a context with nothing
    // else to do would stop before the completion arrives.
    std::optional<work_executor> work;
    {
      std::lock_guard lock(mutex_);
      if (op->orphaned_)
        return false;
      if (unlink(op))
        work = counted_work_ == 0 ? std::exchange(work_, std::nullopt) : work_;
      // Under the lock, so shutdown() either abandoned `op` above or sees this delivery.
      delivering_.fetch_add(1, std::memory_order_relaxed);
    }
    release_at_exit tracked_ref{op};
    delivery_scope scope{this};
    {
      // Given back before the scope ends: once it has, the context may be gone.
      const auto held = std::move(work);
      post();
    }
    return true;
  }

  // Batched completions. While the context's handlers run on one thread, a worker does not post
  // each completion: it pushes the finished operation on a lock-free list and posts one drain
  // only when the list was empty; the drain runs every operation it finds, in FIFO order. Under
  // load that is one post (one lock of the context's queue, one wake-up of its thread) per batch
  // instead of per operation. A context whose drains run on more than one thread stops
  // batching for good, so completions keep spreading over its threads as Asio's own do.
  bool batching() const noexcept { return !multi_threaded_.load(std::memory_order_relaxed); }

  // Worker side, after the work: queue `op` (tracked, outcome stored) for the next drain of
  // `context`, with the caller's reference to it, which the drain drops; true then. False
  // when the context is shutting down (it has abandoned `op` already): the caller keeps its
  // reference. Once `op` is on the list a drain may destroy it at any moment, but this
  // registry and `context` stay: a shutdown waits for the delivery_scope.
  bool push_finished(tracked_op* op, asio::io_context& context) {
    delivering_.fetch_add(1, std::memory_order_seq_cst);
    delivery_scope scope{this};
    if (shut_down_flag_.load(std::memory_order_seq_cst))
      return false;
    tracked_op* head = finished_.load(std::memory_order_relaxed);
    do
      op->next_ = head;
    while (!finished_.compare_exchange_weak(head, op, std::memory_order_release,
                                            std::memory_order_relaxed));
    if (head == nullptr) // the list was empty: no drain is on its way for `op`
      asio::post(context.get_executor(), drain_handler{shared_from_this()});
    return true;
  }

  void shutdown() {
    std::vector<tracked_op*> orphans;
    {
      std::unique_lock lock(mutex_);
      shut_down_ = true;
      shut_down_flag_.store(true, std::memory_order_seq_cst);
      while (tracked_op* op = head_) {
        unlink(op);
        op->orphaned_ = true;
        orphans.push_back(op);
      }
      // A worker may still hold an orphan and ask us whether it was abandoned after the
      // context has dropped us: the orphans keep us alive, together, through one reference
      // of our own that the last of them drops (release_orphan()).
      if (!orphans.empty()) {
        orphans_alive_.store(orphans.size(), std::memory_order_relaxed);
        keep_alive_for_orphans_ = shared_from_this();
      }
      work_.reset(); // what was outstanding is abandoned
    }
    // No delivery starts from here on: deliver() finds its operation orphaned, push_finished()
    // sees the flag. Those in progress are a post or a push each, so yielding is enough; a
    // condition variable would need a notification after the last decrement, i.e. one more
    // touch of a registry that may be gone by then (see delivery_scope).
    while (delivering_.load(std::memory_order_seq_cst) != 0)
      std::this_thread::yield();
    // Every finished operation is tracked until a drain runs it, so it is among the orphans;
    // the list only holds references. No worker pushes any more (the wait above).
    for (pool_op* op = finished_.exchange(nullptr, std::memory_order_acquire); op;) {
      pool_op* next = std::exchange(op->next_, nullptr);
      op->release();
      op = next;
    }
    // Outside the lock: destroying a handler may destroy a coroutine frame, whose other
    // operations may call back into this registry.
    for (tracked_op* op : orphans) {
      op->abandon();
      op->release();
    }
  }

  // Called by each orphan when it is destroyed (the last touch of the registry it makes).
  void release_orphan() noexcept {
    if (orphans_alive_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      auto last = std::move(keep_alive_for_orphans_);
      // `last` may destroy us on the way out: nothing may follow.
    }
  }

private:
  using work_executor = decltype(asio::require(std::declval<asio::io_context::executor_type>(),
                                               asio::execution::outstanding_work.tracked));

  // Keeps the registry (and so the list) alive while a drain is queued in the context.
  struct drain_handler {
    std::shared_ptr<completion_registry> registry;
    void operator()() const { registry->drain(); }
  };

  // Counts a delivery in progress. The decrement is the delivery's last touch of the
  // registry: a worker that handed its operation to the finished list holds no reference
  // that keeps the registry alive, and once the count is zero a shutdown() may let the
  // context destroy it. seq_cst here and in shutdown() (its flag store, its loads of the count)
  // means a delivery either sees the flag or is waited for.
  struct delivery_scope {
    completion_registry* self;
    ~delivery_scope() { self->delivering_.fetch_sub(1, std::memory_order_seq_cst); }
  };

  // Runs on a thread of the context (never concurrently with shutdown(), which runs when the
  // context is destroyed).
  void drain() {
    const auto me = std::this_thread::get_id();
    const auto previous = drain_thread_.exchange(me, std::memory_order_relaxed);
    if (previous != me && previous != std::thread::id{})
      multi_threaded_.store(true, std::memory_order_relaxed);

    tracked_op* fifo = nullptr; // the stack reversed: oldest first
    for (tracked_op* op = finished_.exchange(nullptr, std::memory_order_acquire); op;) {
      tracked_op* next = next_of(op);
      op->next_ = fifo;
      fifo = op;
      op = next;
    }
    if (!fifo)
      return;
    // Our drain counts as the context's work while it runs, so the work the batch counted in
    // may be given back before its handlers run.
    std::optional<work_executor> work;
    {
      std::lock_guard lock(mutex_);
      bool counted = false;
      for (tracked_op* op = fifo; op; op = next_of(op))
        counted |= unlink(op);
      if (counted && counted_work_ == 0)
        work = std::exchange(work_, std::nullopt);
    }
    work.reset(); // outside the lock, which the context's scheduler need not wait for
    // If a handler throws, the exception leaves io_context::run() as usual, and the rest of
    // the batch is posted one by one, in order, so nothing is lost.
    struct remainder {
      tracked_op* rest;
      ~remainder() {
        while (tracked_op* op = rest) {
          rest = take_next(op);
          op->release(); // the tracked reference: no longer tracked
          op->repost();  // takes over the list's reference
        }
      }
    } pending{fifo};
    while (tracked_op* op = pending.rest) {
      pending.rest = take_next(op);
      release_at_exit refs{op, 2}; // the tracked reference and the list's
      op->complete();
    }
  }

  // The finished list links operations through pool_op::next_; only tracked operations are
  // ever pushed, so the links are tracked_ops too.
  static tracked_op* next_of(const tracked_op* op) noexcept {
    return static_cast<tracked_op*>(op->next_);
  }
  static tracked_op* take_next(tracked_op* op) noexcept {
    return static_cast<tracked_op*>(std::exchange(op->next_, nullptr));
  }

  // Unlinks `op`; true when it had counted in the context's work (counted_work_ is then one
  // less, and the caller gives work_ back if that was the last).
  bool unlink(tracked_op* op) noexcept {
    (op->service_prev_ ? op->service_prev_->service_next_ : head_) = op->service_next_;
    if (op->service_next_)
      op->service_next_->service_prev_ = op->service_prev_;
    op->service_prev_ = op->service_next_ = nullptr;
    if (!std::exchange(op->registry_holds_work_, false))
      return false;
    --counted_work_;
    return true;
  }

  // The context's thread tracks every operation it starts (mutex_, head_) while workers push
  // finished ones; each side's fields share a cache line only with its own, so that neither
  // pays for a line the other just wrote on every operation.

  // The context's side: written per operation started, and per drain.
  std::mutex mutex_;
  tracked_op* head_ = nullptr;
  bool shut_down_ = false;             // guarded by mutex_
  std::size_t counted_work_ = 0;       // guarded by mutex_: tracked ops with registry_holds_work_
  std::optional<work_executor> work_;  // guarded by mutex_: engaged while counted_work_ > 0
  std::atomic<std::thread::id> drain_thread_{};

  // Only after shutdown(): touched by the dying orphans.
  std::atomic<std::size_t> orphans_alive_{0};
  std::shared_ptr<completion_registry> keep_alive_for_orphans_;

  // The workers' side: written per finished operation (finished_ also once per drain).
  alignas(cache_line_size) std::atomic<std::size_t> delivering_{0};
  std::atomic<bool> shut_down_flag_{false}; // shut_down_, readable without the lock
  std::atomic<bool> multi_threaded_{false};
  std::atomic<tracked_op*> finished_{nullptr}; // a stack of finished operations (batching)
};

class completion_service final : public asio::execution_context::service {
public:
  using key_type = completion_service;
  inline static asio::execution_context::id id;

  explicit completion_service(asio::execution_context& context)
      : asio::execution_context::service(context),
        registry_(std::make_shared<completion_registry>()) {}

  const std::shared_ptr<completion_registry>& registry() const noexcept { return registry_; }

  // Tracks `op` in the registry of `context` (see completion_registry::track) and stores that
  // registry in `out`; false when the context is shutting down. `out` stays valid while `op`
  // is tracked, and after that for as long as `op` lives if the context abandons it.
  // asio::use_service locks the context's service registry on every call, so each thread
  // remembers the last context it submitted to (a loop thread submits to its own context over
  // and over). A remembered registry is only trusted while it accepts the operation: the
  // context it belonged to may have died and another been built at the same address, but then
  // the old registry is shut down, track() refuses, and we ask asio::use_service again.
  static bool track(asio::execution_context& context, tracked_op* op,
                    asio::io_context* work_for, completion_registry*& out) {
    thread_local struct {
      asio::execution_context* context = nullptr;
      std::shared_ptr<completion_registry> registry;
    } last;
    if (last.context == &context && last.registry->track(op, work_for)) {
      out = last.registry.get();
      return true;
    }
    const auto& registry = asio::use_service<completion_service>(context).registry();
    if (!registry->track(op, work_for))
      return false;
    out = registry.get();
    last.context = &context;
    last.registry = registry;
    return true;
  }

private:
  void shutdown() override { registry_->shutdown(); }

  std::shared_ptr<completion_registry> registry_;
};

} // namespace smartasync::detail

#endif // SMARTASYNC_DETAIL_COMPLETION_SERVICE_HPP
