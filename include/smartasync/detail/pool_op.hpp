// smartasync/detail/pool_op.hpp - the type-erased operation a blocking_pool queues.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_POOL_OP_HPP
#define SMARTASYNC_DETAIL_POOL_OP_HPP

#include "smartasync/config.hpp"

#include SMARTASYNC_ASIO_HEADER(recycling_allocator.hpp)

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <system_error>

namespace SMARTASYNC_NAMESPACE::detail {

struct call_identity; // detail/call_site.hpp

// idle:      created, not yet submitted; cancellation is ignored.
// in_lane:   linked in a serial_lane's FIFO, waiting for the lane's turn; only changed under
//            the lane's mutex.
// queued:    linked in the pool's FIFO; only changed under the pool mutex.
// running:   popped by a worker (or run inline by a nested call).
// started:   running, and the worker has begun the callable; used only by an operation whose
//            terminal cancellation abandons the call, so that a canceller can tell a call that
//            will never run (it wins from running) from one that runs on without it.
// stopping:  running, and a terminal cancellation asked it to stop; the worker still owns the
//            handler and completes it with operation_aborted once the callable returns, so
//            nothing the callable references is released while it runs.
// done:      the worker finished and owns the handler.
// cancelled: a canceller (or shutdown) won and owns the handler.
// Whoever moves the state out of queued/running/started owns the handler, so it is invoked
// once.
enum class op_state : std::uint8_t {
  idle,
  in_lane,
  queued,
  running,
  started,
  stopping,
  done,
  cancelled
};

class pool_op {
public:
  pool_op(const pool_op&) = delete;
  pool_op& operator=(const pool_op&) = delete;

  // Worker side: run the callable and, if still owner, deliver the result. Consumes the
  // queue's reference to the operation.
  virtual void execute() noexcept = 0;
  // Completes with `ec` without running. Precondition: the caller won the state transition.
  virtual void abort(error_code ec) noexcept = 0;
  // Completes with `ec` an operation refused before it ran by a shutdown or a closing lane
  // (a handler that runs after the operation's deadline hears deadline_expired instead).
  // Precondition: the caller won the state transition.
  virtual void abort_refused(error_code ec) noexcept { abort(ec); }
  // Completes a queued operation that shutdown(cancel) removed from the pool's queue with `ec`.
  // An operation holding a serial_lane's turn also passes the turn on.
  virtual void abort_queued(error_code ec) noexcept { abort(ec); }
  // A serial_lane's turn reached this entry: true for a synchronous caller waiting for the
  // turn on its own thread (woken here, under the lane's mutex); false for an operation, which
  // the lane then submits to its pool.
  virtual bool grant_turn() noexcept { return false; }
  // The serial_lane is destroyed before the turn reached this entry: true for a synchronous
  // caller, woken here (under the lane's mutex) to throw; false for an operation, which the
  // lane then completes with operation_aborted.
  virtual bool refuse_turn() noexcept { return false; }
  // Its deadline (with_deadline, with_timeout) has passed. Completed without running, it then
  // says error::deadline_expired rather than operation_aborted: it would never have started,
  // and with_timeout must not take it for a call that ran out of time.
  virtual bool deadline_passed() const noexcept { return false; }
  // Asks a running, stop-aware callable to stop (shutdown(cancel)); no-op otherwise.
  virtual void request_stop() noexcept {}
  // The handler's execution context is being destroyed: destroy the handler and its work
  // without invoking it, as Asio does with its own pending operations.
  virtual void abandon() noexcept = 0;
  // Batched completions (completion_registry::drain), on a thread of the handler's context:
  // invoke the handler with the outcome the worker stored (may throw what the handler throws),
  // or, for one left over when an earlier handler of the batch threw, post that invocation.
  virtual void complete() {}
  virtual void repost() noexcept {}
  // Says what the operation runs, for reports about it (a call still running at exit).
  virtual void identify(call_identity&) const noexcept {}

  // Sets the number of references before the operation is shared with any other thread: the
  // starting thread knows them all up front (its own, the registry's, a cancellation slot's),
  // and a plain store costs nothing where each increment would be an atomic on its path.
  void set_refs_before_sharing(unsigned count) noexcept {
    refs_.store(count, std::memory_order_relaxed);
  }
  // Only while the caller already holds a reference (so the count cannot reach zero meanwhile).
  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release(unsigned count = 1) noexcept {
    if (refs_.fetch_sub(count, std::memory_order_acq_rel) == count)
      delete this;
  }

  // The members are ordered so that the small ones share one word with refs_ (every queued
  // operation carries them; see docs/benchmarks.md, memory).

  // Intrusive FIFO links, guarded by the owning pool's mutex. Once a worker has taken the
  // operation, next_ links it in its completion registry's list of finished operations.
  pool_op* prev_ = nullptr;
  pool_op* next_ = nullptr;
  // When it was submitted; once a worker has taken it, when it started running.
  std::chrono::steady_clock::time_point enqueued_at_{};
  std::atomic<op_state> state_{op_state::idle};
  // Within the first queue_capacity entries of its pool's FIFO (guarded by the pool mutex);
  // beyond them it waits for admission, in FIFO order with every other waiting submission.
  bool admitted_ = false;
  // tracked_op's, guarded by the completion registry's mutex; here, where they cost no space.
  bool orphaned_ = false;
  bool registry_holds_work_ = false; // the registry keeps the context's work count up for us

  // Allocated as Asio allocates its own operations: a thread inside io_context::run keeps a
  // couple of freed blocks for reuse. A loop that completes one operation and starts the next
  // (a coroutine awaiting in a loop, a callback chain) then reuses the memory without malloc;
  // anywhere else this is operator new.
  static void* operator new(std::size_t size) { return block_allocator{}.allocate(blocks(size)); }
  static void operator delete(void* pointer, std::size_t size) noexcept {
    block_allocator{}.deallocate(static_cast<block*>(pointer), blocks(size));
  }

protected:
  pool_op() = default;
  virtual ~pool_op() = default;

private:
  struct alignas(alignof(std::max_align_t)) block {
    unsigned char bytes[alignof(std::max_align_t)];
  };
  using block_allocator = asio::recycling_allocator<block>;
  static constexpr std::size_t blocks(std::size_t size) noexcept {
    return (size + sizeof(block) - 1) / sizeof(block);
  }

  std::atomic<unsigned> refs_{1};
};

// Drops references to an operation when the scope ends, whether a handler it runs throws or
// not.
class release_at_exit {
public:
  explicit release_at_exit(pool_op* op, unsigned count = 1) noexcept : op_(op), count_(count) {}
  release_at_exit(const release_at_exit&) = delete;
  release_at_exit& operator=(const release_at_exit&) = delete;
  ~release_at_exit() { op_->release(count_); }

private:
  pool_op* op_;
  unsigned count_;
};

// An operation that completes into an execution context, and so is tracked by that context's
// completion registry (completion_service.hpp) until it is delivered or abandoned. Kept apart
// from pool_op so that an operation completing anywhere else (use_future's promise, a handler
// without an executor) does not carry the links.
class tracked_op : public pool_op {
public:
  // Links in the registry's list, guarded by its mutex.
  tracked_op* service_prev_ = nullptr;
  tracked_op* service_next_ = nullptr;

protected:
  tracked_op() = default;
};

// An intrusive FIFO of pool_ops; not thread-safe (the pool locks around it).
class op_queue {
public:
  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t size() const noexcept { return size_; }
  pool_op* front() const noexcept { return head_; }

  void push_back(pool_op* op) noexcept {
    op->next_ = nullptr;
    op->prev_ = tail_;
    if (tail_)
      tail_->next_ = op;
    else
      head_ = op;
    tail_ = op;
    ++size_;
  }

  // Links `op` just ahead of `position`, which is in this queue.
  void insert_before(pool_op* position, pool_op* op) noexcept {
    op->next_ = position;
    op->prev_ = position->prev_;
    (position->prev_ ? position->prev_->next_ : head_) = op;
    position->prev_ = op;
    ++size_;
  }

  pool_op* pop_front() noexcept {
    pool_op* op = head_;
    if (op)
      unlink(op);
    return op;
  }

  void unlink(pool_op* op) noexcept {
    (op->prev_ ? op->prev_->next_ : head_) = op->next_;
    (op->next_ ? op->next_->prev_ : tail_) = op->prev_;
    op->prev_ = op->next_ = nullptr;
    --size_;
  }

private:
  pool_op* head_ = nullptr;
  pool_op* tail_ = nullptr;
  std::size_t size_ = 0;
};

} // namespace smartasync::detail

#endif // SMARTASYNC_DETAIL_POOL_OP_HPP
