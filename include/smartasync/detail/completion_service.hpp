// smartasync/detail/completion_service.hpp - completes operations safely into an execution
// context that may be destroyed while they run.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_COMPLETION_SERVICE_HPP
#define SMARTASYNC_DETAIL_COMPLETION_SERVICE_HPP

#include "smartasync/config.hpp"
#include "smartasync/detail/pool_op.hpp"

#include <asio/execution_context.hpp>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

namespace smartasync::detail {

// A pool worker may finish long after the io_context that awaits the result was stopped and
// destroyed. Asio's own operations live inside their context and are destroyed by its
// shutdown; ours live in the pool. So each context gets a completion_service whose shutdown()
// (run while the context is still intact) abandons the operations that would complete into it
// and waits out any delivery in progress. The bookkeeping lives in a registry that every
// tracked operation co-owns, because a late worker must still be able to ask "was I
// abandoned?" after the service itself is gone.
class completion_registry {
public:
  // Registers `op`; false when the context is already shutting down.
  bool track(pool_op* op) {
    std::lock_guard lock(mutex_);
    if (shut_down_)
      return false;
    op->add_ref();
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
  bool deliver(pool_op* op, Post&& post) {
    {
      std::lock_guard lock(mutex_);
      if (op->orphaned_)
        return false;
      unlink(op);
      // Under the lock, so shutdown() either abandoned `op` above or sees this delivery.
      delivering_.fetch_add(1, std::memory_order_relaxed);
    }
    struct finish {
      completion_registry* self;
      pool_op* op;
      ~finish() {
        // No lock on the way out (it was one of the hottest locks per operation): only a
        // shutdown() already waiting needs the lock and a notification. seq_cst on both sides
        // (this decrement and load, its store and load) means at least one of the two sees
        // the other, so the waiter is never missed.
        if (self->delivering_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
            self->shut_down_flag_.load(std::memory_order_seq_cst)) {
          std::lock_guard lock(self->mutex_);
          self->idle_.notify_all();
        }
        op->release();
      }
    } guard{this, op};
    post();
    return true;
  }

  void shutdown() {
    std::vector<pool_op*> orphans;
    {
      std::unique_lock lock(mutex_);
      shut_down_ = true;
      shut_down_flag_.store(true, std::memory_order_seq_cst);
      while (pool_op* op = head_) {
        unlink(op);
        op->orphaned_ = true;
        orphans.push_back(op);
      }
      idle_.wait(lock, [this] { return delivering_.load(std::memory_order_seq_cst) == 0; });
    }
    // Outside the lock: destroying a handler may destroy a coroutine frame, whose other
    // operations may call back into this registry.
    for (pool_op* op : orphans) {
      op->abandon();
      op->release();
    }
  }

private:
  void unlink(pool_op* op) noexcept {
    (op->service_prev_ ? op->service_prev_->service_next_ : head_) = op->service_next_;
    if (op->service_next_)
      op->service_next_->service_prev_ = op->service_prev_;
    op->service_prev_ = op->service_next_ = nullptr;
  }

  std::mutex mutex_;
  std::condition_variable idle_;
  pool_op* head_ = nullptr;
  std::atomic<std::size_t> delivering_{0};
  bool shut_down_ = false;                  // guarded by mutex_
  std::atomic<bool> shut_down_flag_{false}; // shut_down_, readable without the lock
};

class completion_service final : public asio::execution_context::service {
public:
  using key_type = completion_service;
  inline static asio::execution_context::id id;

  explicit completion_service(asio::execution_context& context)
      : asio::execution_context::service(context),
        registry_(std::make_shared<completion_registry>()) {}

  const std::shared_ptr<completion_registry>& registry() const noexcept { return registry_; }

  // Tracks `op` in the registry of `context` and stores that registry in `out`; false when
  // the context is shutting down. asio::use_service locks the context's service registry on
  // every call, so each thread remembers the last context it submitted to (a loop thread
  // submits to its own context over and over). A remembered registry is only trusted while it
  // accepts the operation: the context it belonged to may have died and another been built
  // at the same address, but then the old registry is shut down, track() refuses, and we ask
  // asio::use_service again.
  static bool track(asio::execution_context& context, pool_op* op,
                    std::shared_ptr<completion_registry>& out) {
    thread_local struct {
      asio::execution_context* context = nullptr;
      std::shared_ptr<completion_registry> registry;
    } last;
    if (last.context == &context && last.registry->track(op)) {
      out = last.registry;
      return true;
    }
    out = asio::use_service<completion_service>(context).registry();
    if (!out->track(op))
      return false;
    last.context = &context;
    last.registry = out;
    return true;
  }

private:
  void shutdown() override { registry_->shutdown(); }

  std::shared_ptr<completion_registry> registry_;
};

} // namespace smartasync::detail

#endif // SMARTASYNC_DETAIL_COMPLETION_SERVICE_HPP
