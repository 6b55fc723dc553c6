// smartasync/semaphore.hpp - an asynchronous counting semaphore for coroutines.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_SEMAPHORE_HPP
#define SMARTASYNC_SEMAPHORE_HPP

#include "smartasync/config.hpp"

#include SMARTASYNC_ASIO_HEADER(any_io_executor.hpp)
#include SMARTASYNC_ASIO_HEADER(associated_allocator.hpp)
#include SMARTASYNC_ASIO_HEADER(associated_cancellation_slot.hpp)
#include SMARTASYNC_ASIO_HEADER(associated_executor.hpp)
#include SMARTASYNC_ASIO_HEADER(async_result.hpp)
#include SMARTASYNC_ASIO_HEADER(cancellation_type.hpp)
#include SMARTASYNC_ASIO_HEADER(error.hpp)
#include SMARTASYNC_ASIO_HEADER(executor_work_guard.hpp)
#include SMARTASYNC_ASIO_HEADER(post.hpp)
#include SMARTASYNC_ASIO_HEADER(use_awaitable.hpp)

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace SMARTASYNC_NAMESPACE {

class async_semaphore;

namespace detail {
template <typename Handler>
class semaphore_acquire_op;
} // namespace detail

/// Ownership of one unit of an async_semaphore; returns it when destroyed.
/**
 * Move-only. A default-constructed or moved-from permit owns nothing.
 */
class semaphore_permit {
public:
  /// A permit that owns nothing.
  semaphore_permit() noexcept = default;
  /// Takes `other`'s permit; `other` then owns nothing.
  semaphore_permit(semaphore_permit&& other) noexcept
      : semaphore_(std::exchange(other.semaphore_, nullptr)) {}
  /// Releases the permit held, then takes `other`'s.
  semaphore_permit& operator=(semaphore_permit&& other) noexcept {
    if (this != &other) {
      release();
      semaphore_ = std::exchange(other.semaphore_, nullptr);
    }
    return *this;
  }
  ~semaphore_permit() { release(); }

  /// True while this permit holds a unit.
  explicit operator bool() const noexcept { return semaphore_ != nullptr; }

  /// Returns the unit now (wakes the longest waiter, if any). Does nothing when empty.
  void release() noexcept;

private:
  friend class async_semaphore;
  template <typename>
  friend class detail::semaphore_acquire_op;
  explicit semaphore_permit(async_semaphore* s) noexcept : semaphore_(s) {}
  async_semaphore* semaphore_ = nullptr;
};

namespace detail {

// A waiting acquire, linked in the semaphore's FIFO. Every field is guarded by the
// semaphore's mutex.
class semaphore_waiter {
public:
  semaphore_waiter(const semaphore_waiter&) = delete;
  semaphore_waiter& operator=(const semaphore_waiter&) = delete;

  // Hands the outcome (a unit, or operation_aborted) to the waiter's executor. Called once,
  // without the semaphore's mutex held, after the waiter has left the queue.
  virtual void complete(bool granted) = 0;
  // The semaphore is being destroyed with this waiter queued: destroy it without completing.
  virtual void destroy() noexcept = 0;

  semaphore_waiter* prev = nullptr;
  semaphore_waiter* next = nullptr;
  bool queued = false;

protected:
  semaphore_waiter() = default;
  ~semaphore_waiter() = default;
};

} // namespace detail

/// A counting semaphore whose acquire is an asynchronous operation: bound how many coroutines
/// use a resource at once (connections, a rate-limited API, a blocking pool's share).
/**
 * Waiters are served first come, first served. A waiting acquire can be cancelled; it is then
 * removed from the queue and takes nothing.
 *
 * @par Thread safety
 * Distinct objects: safe. Shared objects: async_acquire, try_acquire, available and permit
 * release are safe to call concurrently from any threads.
 *
 * @par Example
 * @code
 * smartasync::async_semaphore connections(co_await asio::this_coro::executor, 4);
 * auto permit = co_await connections.async_acquire();   // at most 4 holders
 * co_await query(db);                                    // permit released at scope exit
 * @endcode
 */
class async_semaphore {
public:
  /// The executor waiters without an associated executor complete on.
  using executor_type = asio::any_io_executor;

  /// @param ex Where completions of waiters without an associated executor run.
  /// @param permits The number of units; at least 1.
  async_semaphore(executor_type ex, std::size_t permits)
      : executor_(std::move(ex)), free_(check(permits)) {}

  async_semaphore(const async_semaphore&) = delete;
  async_semaphore& operator=(const async_semaphore&) = delete;

  /// Destroys the acquires still waiting without completing them (their handlers are
  /// destroyed, as an execution context's shutdown destroys its pending operations).
  ~async_semaphore() {
    detail::semaphore_waiter* w = nullptr;
    {
      std::lock_guard lock(mutex_);
      w = std::exchange(head_, nullptr);
      tail_ = nullptr;
    }
    while (w) {
      detail::semaphore_waiter* next = w->next;
      w->destroy();
      w = next;
    }
  }

  /// Waits for a unit.
  /**
   * @param token Any completion token; the default makes it `co_await sem.async_acquire()`.
   *
   * @par Completion signature
   * `void(smartasync::error_code, semaphore_permit)`. With use_awaitable it yields the permit or
   * throws smartasync::system_error.
   *
   * @par Blocking
   * Never blocks. When a unit is free it completes at once (through the handler's executor,
   * never inside this call).
   *
   * @par Cancellation
   * Any type (terminal, partial, total): a waiter is removed from the queue and completes with
   * asio::error::operation_aborted, holding nothing. A unit already handed over is not taken
   * back.
   *
   * @par Lifetime
   * The semaphore must outlive its permits and the completions of its acquires. An acquire
   * still waiting when the semaphore is destroyed is destroyed with it, never completed. A
   * completion destroyed without running (its execution context shut down first) gives its
   * unit back.
   */
  template <typename CompletionToken = asio::use_awaitable_t<>>
  auto async_acquire(CompletionToken&& token = CompletionToken()) {
    return asio::async_initiate<CompletionToken, void(error_code, semaphore_permit)>(
        [this](auto handler) {
          using op_type = detail::semaphore_acquire_op<decltype(handler)>;
          op_type::start(*this, std::move(handler));
        },
        token);
  }

  /// Takes a unit if one is free right now; returns an empty permit otherwise.
  /** Does not jump the queue: with waiters present there is no free unit to take. */
  semaphore_permit try_acquire() {
    std::lock_guard lock(mutex_);
    if (head_ || free_.load(std::memory_order_relaxed) == 0)
      return {};
    take_unit();
    return semaphore_permit(this);
  }

  /// The number of free units at this instant (a snapshot; it may change at once).
  std::size_t available() const noexcept { return free_.load(std::memory_order_relaxed); }

  /// The executor given at construction.
  executor_type get_executor() noexcept { return executor_; }

private:
  friend class semaphore_permit;
  template <typename>
  friend class detail::semaphore_acquire_op;

  static std::size_t check(std::size_t permits) {
    if (permits == 0)
      throw std::invalid_argument("async_semaphore needs at least one permit");
    return permits;
  }

  // Under mutex_.
  void take_unit() noexcept {
    free_.store(free_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  }

  // Queues `w`, or returns false after taking a free unit for it (only when nobody waits:
  // first come, first served).
  bool enqueue_or_take(detail::semaphore_waiter* w) {
    std::lock_guard lock(mutex_);
    if (!head_ && free_.load(std::memory_order_relaxed) > 0) {
      take_unit();
      return false;
    }
    w->prev = tail_;
    w->next = nullptr;
    (tail_ ? tail_->next : head_) = w;
    tail_ = w;
    w->queued = true;
    return true;
  }

  // Under mutex_.
  void unlink(detail::semaphore_waiter* w) noexcept {
    (w->prev ? w->prev->next : head_) = w->next;
    (w->next ? w->next->prev : tail_) = w->prev;
    w->prev = w->next = nullptr;
    w->queued = false;
  }

  // A unit comes back: straight to the longest waiter, else to the free count.
  void give_back() noexcept {
    detail::semaphore_waiter* w = nullptr;
    {
      std::lock_guard lock(mutex_);
      if (head_) {
        w = head_;
        unlink(w);
      } else {
        free_.store(free_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        return;
      }
    }
    w->complete(true);
  }

  // From a waiter's cancellation slot: it leaves the queue unless a unit already reached it
  // (then the cancellation comes too late and the unit is delivered).
  void cancel(detail::semaphore_waiter* w) {
    {
      std::lock_guard lock(mutex_);
      if (!w->queued)
        return;
      unlink(w);
    }
    w->complete(false);
  }

  // Our own queue, not an Asio channel's: in Asio 1.22 to 1.26 (Boost 1.81 and older),
  // cancelling the last waiting receive of a buffered channel leaves the channel refusing
  // try_send while it has room (chriskohlhoff/asio#1241, fixed in 1.28), which lost a unit
  // for good each time and hung whoever waited for all of them.
  executor_type executor_;
  std::mutex mutex_;
  detail::semaphore_waiter* head_ = nullptr;
  detail::semaphore_waiter* tail_ = nullptr;
  // Written only under mutex_ (a load and a store, no read-modify-write needed); atomic so
  // that available() can read it without the lock.
  std::atomic<std::size_t> free_;
};

inline void semaphore_permit::release() noexcept {
  if (auto* s = std::exchange(semaphore_, nullptr))
    s->give_back();
}

namespace detail {

// One async_acquire: queued in the semaphore, completed through the handler's executor,
// allocated with the handler's allocator. The unit a waiter is handed travels inside the
// posted completion, so a completion destroyed unrun (its context shut down) returns it.
template <typename Handler>
class semaphore_acquire_op final : public semaphore_waiter {
public:
  using executor_type = asio::associated_executor_t<Handler, async_semaphore::executor_type>;

  // Public for the allocator's construct(); made only by start().
  semaphore_acquire_op(async_semaphore& sem, Handler&& handler)
      : handler_(std::move(handler)), sem_(&sem),
        work_(asio::get_associated_executor(handler_, sem.get_executor())) {}

  static void start(async_semaphore& sem, Handler handler) {
    auto* op = create(sem, std::move(handler));
    // Installed before the operation is queued: once it is, a release on another thread may
    // complete it, and the completion clears the slot on the handler's executor.
    auto slot = asio::get_associated_cancellation_slot(op->handler_);
    if (slot.is_connected())
      slot.template emplace<cancel_handler>(cancel_handler{op});
    if (!sem.enqueue_or_take(op))
      op->complete(true);
  }

  void complete(bool granted) override {
    const executor_type ex = work_.get_executor();
    asio::post(ex, completion{this, granted});
  }

  void destroy() noexcept override {
    asio::get_associated_cancellation_slot(handler_).clear();
    free_self(allocator_type(asio::get_associated_allocator(handler_)));
  }

private:
  using allocator_type = typename std::allocator_traits<
      asio::associated_allocator_t<Handler>>::template rebind_alloc<semaphore_acquire_op>;
  using alloc_traits = std::allocator_traits<allocator_type>;

  struct cancel_handler {
    semaphore_acquire_op* op;
    void operator()(asio::cancellation_type type) {
      if (type != asio::cancellation_type::none)
        op->sem_->cancel(op);
    }
  };

  // The posted completion; owns the operation (and the unit, when granted) until it runs.
  struct completion {
    semaphore_acquire_op* op;
    bool granted;

    completion(semaphore_acquire_op* o, bool g) noexcept : op(o), granted(g) {}
    completion(completion&& other) noexcept
        : op(std::exchange(other.op, nullptr)), granted(other.granted) {}
    completion& operator=(completion&&) = delete;
    ~completion() {
      if (!op)
        return;
      if (granted) // never delivered: the unit goes to the next waiter
        op->sem_->give_back();
      op->destroy();
    }

    void operator()() {
      semaphore_acquire_op* o = std::exchange(op, nullptr);
      async_semaphore* sem = o->sem_;
      asio::get_associated_cancellation_slot(o->handler_).clear();
      allocator_type alloc(asio::get_associated_allocator(o->handler_)); // before the move
      Handler handler(std::move(o->handler_));
      o->free_self(alloc);
      if (granted)
        std::move(handler)(error_code{}, semaphore_permit(sem));
      else
        std::move(handler)(error_code(asio::error::operation_aborted), semaphore_permit{});
    }
  };

  static semaphore_acquire_op* create(async_semaphore& sem, Handler handler) {
    allocator_type alloc(asio::get_associated_allocator(handler));
    semaphore_acquire_op* p = alloc_traits::allocate(alloc, 1);
    try {
      alloc_traits::construct(alloc, p, sem, std::move(handler));
    } catch (...) {
      alloc_traits::deallocate(alloc, p, 1);
      throw;
    }
    return p;
  }

  // `alloc`: the handler's, taken while the handler was still here.
  void free_self(allocator_type alloc) noexcept {
    alloc_traits::destroy(alloc, this);
    alloc_traits::deallocate(alloc, this, 1);
  }

  Handler handler_;
  async_semaphore* sem_;
  // Keeps the handler's context running while the acquire waits.
  asio::executor_work_guard<executor_type> work_;
};

} // namespace detail

} // namespace smartasync

#endif // SMARTASYNC_SEMAPHORE_HPP
