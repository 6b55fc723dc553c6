// smartasync/detail/completion_service.hpp - completes operations safely into an execution
// context that may be destroyed while they run.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_COMPLETION_SERVICE_HPP
#define SMARTASYNC_DETAIL_COMPLETION_SERVICE_HPP

#include "smartasync/config.hpp"
#include "smartasync/detail/pool_op.hpp"

#include <asio/execution_context.hpp>

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
      ++delivering_;
    }
    struct finish {
      completion_registry* self;
      pool_op* op;
      ~finish() {
        {
          std::lock_guard lock(self->mutex_);
          if (--self->delivering_ == 0 && self->shut_down_)
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
      while (pool_op* op = head_) {
        unlink(op);
        op->orphaned_ = true;
        orphans.push_back(op);
      }
      idle_.wait(lock, [this] { return delivering_ == 0; });
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
  std::size_t delivering_ = 0;
  bool shut_down_ = false;
};

class completion_service final : public asio::execution_context::service {
public:
  using key_type = completion_service;
  inline static asio::execution_context::id id;

  explicit completion_service(asio::execution_context& context)
      : asio::execution_context::service(context),
        registry_(std::make_shared<completion_registry>()) {}

  const std::shared_ptr<completion_registry>& registry() const noexcept { return registry_; }

private:
  void shutdown() override { registry_->shutdown(); }

  std::shared_ptr<completion_registry> registry_;
};

} // namespace smartasync::detail

#endif // SMARTASYNC_DETAIL_COMPLETION_SERVICE_HPP
