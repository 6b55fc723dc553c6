// smartasync/semaphore.hpp - an asynchronous counting semaphore for coroutines.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_SEMAPHORE_HPP
#define SMARTASYNC_SEMAPHORE_HPP

#include "smartasync/config.hpp"

#include SMARTASYNC_ASIO_HEADER(any_io_executor.hpp)
#include SMARTASYNC_ASIO_HEADER(associator.hpp)
#include SMARTASYNC_ASIO_HEADER(async_result.hpp)
#include SMARTASYNC_ASIO_HEADER(error.hpp)
#include SMARTASYNC_ASIO_HEADER(experimental/channel_error.hpp)
#include SMARTASYNC_ASIO_HEADER(experimental/concurrent_channel.hpp)
#include SMARTASYNC_ASIO_HEADER(use_awaitable.hpp)

#include <atomic>
#include <cstddef>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace SMARTASYNC_NAMESPACE {

class async_semaphore;

/// Ownership of one unit of an async_semaphore; returns it when destroyed.
/**
 * Move-only. A default-constructed or moved-from permit owns nothing.
 */
class semaphore_permit {
public:
  semaphore_permit() noexcept = default;
  semaphore_permit(semaphore_permit&& other) noexcept
      : semaphore_(std::exchange(other.semaphore_, nullptr)) {}
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
  explicit semaphore_permit(async_semaphore* s) noexcept : semaphore_(s) {}
  async_semaphore* semaphore_ = nullptr;
};

namespace detail {

/// Turns the channel's void(error_code, int) completion into void(error_code, semaphore_permit);
/// it forwards every associated characteristic (executor, allocator, cancellation slot) to
/// the user's handler, so the wait behaves exactly as if the user's handler were waiting.
template <typename Handler>
struct semaphore_acquire_handler {
  Handler handler_;
  async_semaphore* semaphore_;
  void operator()(error_code ec, int);
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
  using executor_type = asio::any_io_executor;

  /// @param ex Where completions of waiters without an associated executor run.
  /// @param permits The number of units; at least 1.
  async_semaphore(executor_type ex, std::size_t permits)
      : tokens_(std::move(ex), check(permits)), available_(permits) {
    // The channel's buffer holds the free units; a waiter parks in the channel's FIFO of
    // receivers, and a release hands its unit straight to the first one.
    for (std::size_t i = 0; i < permits; ++i)
      tokens_.try_send(error_code{}, 0);
  }

  async_semaphore(const async_semaphore&) = delete;
  async_semaphore& operator=(const async_semaphore&) = delete;

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
   * The semaphore must outlive its permits and pending acquires.
   */
  template <typename CompletionToken = asio::use_awaitable_t<>>
  auto async_acquire(CompletionToken&& token = CompletionToken()) {
    return asio::async_initiate<CompletionToken, void(error_code, semaphore_permit)>(
        [this](auto handler) {
          using handler_type = decltype(handler);
          tokens_.async_receive(
              detail::semaphore_acquire_handler<handler_type>{std::move(handler), this});
        },
        token);
  }

  /// Takes a unit if one is free right now; returns an empty permit otherwise.
  /** Does not jump the queue: with waiters present there is no free unit to take. */
  semaphore_permit try_acquire() {
    semaphore_permit permit;
    tokens_.try_receive([&](error_code ec, int) {
      if (!ec)
        permit = grant();
    });
    return permit;
  }

  /// The number of free units at this instant (a snapshot; it may change at once).
  std::size_t available() const noexcept { return available_.load(std::memory_order_relaxed); }

  executor_type get_executor() noexcept { return tokens_.get_executor(); }

private:
  friend class semaphore_permit;
  template <typename>
  friend struct detail::semaphore_acquire_handler;

  static std::size_t check(std::size_t permits) {
    if (permits == 0)
      throw std::invalid_argument("async_semaphore needs at least one permit");
    return permits;
  }

  semaphore_permit grant() noexcept {
    available_.fetch_sub(1, std::memory_order_relaxed);
    return semaphore_permit(this);
  }

  void give_back() noexcept {
    available_.fetch_add(1, std::memory_order_relaxed);
    // Cannot fail: at most `permits` units exist, and the buffer holds that many.
    tokens_.try_send(error_code{}, 0);
  }

  // void(error_code, int) rather than void(error_code): Asio 1.22's channel_traits is
  // ambiguous for a signature whose only argument is an error_code.
  asio::experimental::concurrent_channel<void(error_code, int)> tokens_;
  std::atomic<std::size_t> available_;
};

inline void semaphore_permit::release() noexcept {
  if (auto* s = std::exchange(semaphore_, nullptr))
    s->give_back();
}

template <typename Handler>
void detail::semaphore_acquire_handler<Handler>::operator()(error_code ec, int) {
  if (!ec) {
    std::move(handler_)(ec, semaphore_->grant());
    return;
  }
  // The channel reports a cancelled receive as channel_cancelled; callers of an Asio
  // operation expect operation_aborted.
  if (ec == asio::experimental::error::channel_cancelled)
    ec = asio::error::operation_aborted;
  std::move(handler_)(ec, semaphore_permit{});
}

} // namespace smartasync

template <template <typename, typename> class Associator, typename Handler,
          typename DefaultCandidate>
struct SMARTASYNC_ASIO_NAMESPACE::associator<Associator, smartasync::detail::semaphore_acquire_handler<Handler>,
                        DefaultCandidate> : Associator<Handler, DefaultCandidate> {
  static typename Associator<Handler, DefaultCandidate>::type
  get(const smartasync::detail::semaphore_acquire_handler<Handler>& h,
      const DefaultCandidate& c = DefaultCandidate()) noexcept {
    return Associator<Handler, DefaultCandidate>::get(h.handler_, c);
  }
};

#endif // SMARTASYNC_SEMAPHORE_HPP
