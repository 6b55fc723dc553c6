// smartasync/async_stream.hpp - feed a coroutine, from plain threads, through a bounded buffer.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_ASYNC_STREAM_HPP
#define SMARTASYNC_ASYNC_STREAM_HPP

#include "smartasync/config.hpp"

#include "smartasync/detail/async_stream_state.hpp"
#include "smartasync/detail/call_site.hpp"
#include "smartasync/detail/loop_guard.hpp"
#include "smartasync/detail/stream_state.hpp"
#include "smartasync/error.hpp"
#include "smartasync/source_location.hpp"

#include SMARTASYNC_ASIO_HEADER(async_result.hpp)
#include SMARTASYNC_ASIO_HEADER(awaitable.hpp)
#include SMARTASYNC_ASIO_HEADER(use_awaitable.hpp)

#include <cstddef>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <utility>

namespace SMARTASYNC_NAMESPACE {

template <typename T>
class async_stream;

/// A sender's end of an async_stream: plain threads (or pool workers) hand items to the
/// coroutine that consumes the stream.
/**
 * Copyable handle; copies refer to the same stream, and each copy is a sender. The stream ends
 * (the consumer sees the end, after the buffered items) once a sender calls close(), or once
 * every stream_sender made by async_stream::sender() has been destroyed (or moved from). A
 * default-constructed or moved-from sender is empty (valid() is false); its send(), try_send()
 * and close() throw std::logic_error.
 *
 * @par Nothing lost
 * An item is either accepted (send() returns, try_send() returns true) and then in the buffer,
 * for the consumer to receive, or refused, and then not moved from: the caller still has it.
 * A refusal is an exception (smartasync::system_error with error::stream_closed, saying why)
 * or, for try_send() on a full buffer, `false`; never both, never neither.
 *
 * @par Thread safety
 * Distinct objects: safe. Shared objects: unsafe (give each thread its own copy). Any number of
 * copies may send at once, from any threads; the items of one sender arrive in the order it
 * sent them.
 */
template <typename T>
class stream_sender {
public:
  /// An empty sender: valid() is false.
  stream_sender() noexcept = default;
  /// Another sender of the same stream: the stream ends when the last one is gone.
  stream_sender(const stream_sender& other) noexcept : state_(other.state_) {
    if (state_) // copied from a live handle: the count cannot reach zero meanwhile
      state_->senders.fetch_add(1, std::memory_order_relaxed);
  }
  /// Takes `other`'s handle; `other` is then empty.
  stream_sender(stream_sender&& other) noexcept : state_(std::move(other.state_)) {}
  /// Releases the handle held, then shares `other`'s stream.
  stream_sender& operator=(const stream_sender& other) noexcept {
    if (this != &other)
      *this = stream_sender(other);
    return *this;
  }
  /// Releases the handle held, then takes `other`'s.
  stream_sender& operator=(stream_sender&& other) noexcept {
    if (this != &other) {
      release();
      state_ = std::move(other.state_);
    }
    return *this;
  }
  /// Releases the handle: the last sender gone ends the stream, after the buffered items.
  ~stream_sender() { release(); }

  /// False for a default-constructed or moved-from sender.
  bool valid() const noexcept { return state_ != nullptr; }

  /// Appends `item` to the buffer, blocking while the buffer is full (back-pressure).
  /**
   * @par Blocking
   * Blocks the calling thread while the buffer is full, until the consumer takes an item or
   * the stream closes. Meant for plain threads and pool workers. On a thread running an event
   * loop the stream's stream_options::on_loop decides, as for a smart_async wrapper's sync
   * form: report (send, then report how long the loop was blocked, naming `called_at`),
   * strict (throw error::blocking_call_on_loop without sending), silent.
   *
   * @par Errors
   * smartasync::system_error with error::stream_closed, and `item` not moved from, when the
   * stream no longer accepts items: a sender closed it, the consumer closed or destroyed it,
   * or the consumer's execution context was destroyed while it waited for an item. A send
   * blocked on a full buffer wakes with that error when any of these happens.
   */
  void send(T&& item,
            smartasync::source_location called_at = smartasync::source_location::current()) {
    send_from(std::move(item), detail::call_origin{called_at, true});
  }
  /// As send(T&&), copying `item` if it is accepted.
  void send(const T& item,
            smartasync::source_location called_at = smartasync::source_location::current()) {
    send_from(item, detail::call_origin{called_at, true});
  }

  /// Appends `item` if the buffer has room; never blocks.
  /**
   * @returns true when `item` was accepted (moved into the buffer); false when the buffer was
   * full, and then `item` is not moved from.
   *
   * @par Errors
   * smartasync::system_error with error::stream_closed, and `item` not moved from, when the
   * stream no longer accepts items (see send()).
   *
   * @par Blocking
   * Never blocks (beyond a short lock), so it needs no loop check: an event-loop thread may
   * call it.
   */
  bool try_send(T&& item) { return try_send_from(std::move(item)); }
  /// As try_send(T&&), copying `item` if it is accepted.
  bool try_send(const T& item) { return try_send_from(item); }

  /// Ends the stream: the consumer receives the items already buffered, then the end, or
  /// `error` (rethrown to it once) when one is given. Later sends, by any sender, and sends
  /// blocked on a full buffer, are refused with error::stream_closed. Idempotent: once the
  /// stream has ended, it does nothing.
  void close(std::exception_ptr error = nullptr) {
    auto& s = checked();
    std::lock_guard lock(s.mutex);
    if (s.finished())
      return;
    s.closed = true;
    s.refusal = "a sender closed the stream";
    s.error = std::move(error);
    s.notify_if_finished();
  }

private:
  template <typename>
  friend class async_stream;
  explicit stream_sender(std::shared_ptr<detail::async_stream_state<T>> state) noexcept
      : state_(std::move(state)) {
    state_->senders.fetch_add(1, std::memory_order_relaxed);
  }

  detail::async_stream_state<T>& checked() const {
    if (!state_)
      throw std::logic_error("smartasync::stream_sender used empty (default-constructed or moved "
                             "from)");
    return *state_;
  }

  void release() noexcept {
    if (auto s = std::move(state_)) {
      if (s->senders.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard lock(s->mutex);
        // Unless sender() made a new one meanwhile: the stream ends when none is left.
        if (s->senders.load(std::memory_order_acquire) == 0 && !s->finished()) {
          s->closed = true;
          s->refusal = "every sender is gone";
          s->notify_if_finished();
        }
      }
    }
  }

  template <typename Item>
  void send_from(Item&& item, const detail::call_origin& origin) {
    auto& s = checked();
    detail::loop_guard guard(s.site, origin); // strict throws here, before anything is sent
    std::unique_lock lock(s.mutex);
    s.space.wait(lock, [&] { return !s.accepting() || s.items.size() < s.capacity; });
    if (!s.accepting())
      throw s.refused();
    s.items.push_back(std::forward<Item>(item));
    s.wake_one_consumer();
  }

  template <typename Item>
  bool try_send_from(Item&& item) {
    auto& s = checked();
    std::lock_guard lock(s.mutex);
    if (!s.accepting())
      throw s.refused();
    if (s.items.size() >= s.capacity)
      return false;
    s.items.push_back(std::forward<Item>(item));
    s.wake_one_consumer();
    return true;
  }

  std::shared_ptr<detail::async_stream_state<T>> state_;
};

/// A bounded stream that plain threads (or pool workers) feed with a blocking, back-pressured
/// send() and a coroutine consumes with `co_await stream.async_receive()`: the other direction
/// of sync_stream.
/**
 * The consumer owns the async_stream; senders are stream_sender handles made by sender(), any
 * number of them, on any threads. The buffer holds at most `capacity` items: a send() to a full
 * buffer blocks its thread until the consumer takes one.
 *
 * @par How it ends
 * - From the sending side: a sender calls close() (optionally with an exception for the
 *   consumer), or the last stream_sender is destroyed. The consumer then receives the items
 *   already buffered, then the end (std::nullopt) or the exception.
 * - From the consuming side: close() refuses every later send, and wakes every blocked one, with
 *   error::stream_closed; the items already buffered can still be received. Destroying the
 *   stream does the same and drops what was buffered. So does the shutdown of the consumer's
 *   execution context while a receive is pending (its io_context destroyed): no sender waits
 *   for a consumer that is gone.
 *
 * @par Nothing lost
 * Every item a send accepted is in the buffer until a receive takes it, in order; a refused
 * send leaves its item with the caller (see stream_sender). Only the consumer's own choice
 * (destroying the stream, or letting its context be destroyed) drops buffered items.
 *
 * @par Moving
 * Movable (the senders keep working); a moved-from stream is empty: valid() is false, its
 * async_receive() completes with std::nullopt, sender() throws std::logic_error.
 *
 * @par Thread safety
 * One consumer at a time; close() may be called from any thread. Senders: see stream_sender.
 *
 * @par Example
 * @code
 * smartasync::async_stream<std::string> lines(64);
 * std::thread reader([out = lines.sender()]() mutable {
 *   for (std::string line; std::getline(std::cin, line);)
 *     out.send(std::move(line));          // blocks while the coroutine is 64 lines behind
 * });                                     // `out` destroyed: the stream ends
 * // in a coroutine:
 * while (auto line = co_await lines.async_receive())
 *   co_await handle(*line);
 * @endcode
 */
template <typename T>
class async_stream {
public:
  /// A stream buffering at most `capacity` items (at least 1).
  explicit async_stream(std::size_t capacity,
                        smartasync::source_location where = smartasync::source_location::current())
      : async_stream(capacity, stream_options{}, where) {}

  /// The same, with a name and a loop_call_policy for its senders' send().
  async_stream(std::size_t capacity, stream_options options,
               smartasync::source_location where = smartasync::source_location::current())
      : state_(std::make_shared<detail::async_stream_state<T>>(
            checked_capacity(capacity),
            detail::call_site(std::move(options.name), options.on_loop, where,
                              detail::blocking_entry::async_stream_send))) {}

  async_stream(const async_stream&) = delete;
  async_stream& operator=(const async_stream&) = delete;

  /// Takes over `other`'s stream; `other` is left empty (valid() is false).
  async_stream(async_stream&& other) noexcept : state_(std::move(other.state_)) {}

  /// Ends this stream as the destructor does, then takes over `other`'s.
  async_stream& operator=(async_stream&& other) noexcept {
    if (this != &other) {
      stop(false);
      state_ = std::move(other.state_);
    }
    return *this;
  }

  /// The consumer is gone: every send blocked, and every later one, is refused with
  /// error::stream_closed; the buffered items are dropped.
  ~async_stream() { stop(false); }

  /// False for a moved-from stream, which reads as ended.
  bool valid() const noexcept { return state_ != nullptr; }

  /// A new sender of this stream. The stream ends when every sender made is gone (so make
  /// the senders before the last one goes): a sender made after the end is refused on its
  /// first send. A stream no sender was made for ends only by close().
  stream_sender<T> sender() {
    if (!state_)
      throw std::logic_error("smartasync::async_stream::sender on a moved-from stream");
    return stream_sender<T>(state_);
  }

  /// Waits asynchronously for the next item.
  /**
   * @param token Any completion token; the default makes it `co_await stream.async_receive()`.
   *
   * @par Completion signature
   * `void(std::exception_ptr, std::optional<T>)`: the item; std::nullopt once the stream has
   * ended and its buffer is empty; or the exception a sender closed it with (once, after the
   * items sent before it). With use_awaitable it yields the std::optional<T> or throws.
   *
   * @par Blocking
   * Never blocks; completes through the handler's associated executor (a handler without one
   * runs on asio::system_executor), never inside this call. Taking an item wakes one sender
   * blocked on the full buffer.
   *
   * @par Cancellation
   * Any type (terminal, partial, total): the receive completes with an exception_ptr holding
   * smartasync::system_error(asio::error::operation_aborted), and no item is taken: for a
   * receive that can be cancelled (its handler has a connected cancellation slot) an item
   * leaves the buffer only when the completion runs on the caller's executor, so a receive
   * cancelled after an item arrived but before it resumed (the loser of an awaitable `||`)
   * leaves the item for the next receive. (A receive without a slot, which nothing can cancel,
   * takes an item already buffered at once.) The stream itself stays open.
   *
   * @par Lifetime
   * The stream object may be destroyed while a receive is pending (the receive keeps the shared
   * state). When the context of the handler's executor is destroyed with the receive pending,
   * the consumer counts as gone: the stream closes as if destroyed.
   */
  template <typename CompletionToken = asio::use_awaitable_t<>>
  auto async_receive(CompletionToken&& token = CompletionToken()) {
    return asio::async_initiate<CompletionToken, void(std::exception_ptr, std::optional<T>)>(
        detail::initiate_async_stream_receive<T>{state_}, token);
  }

  /// Refuses every later send, and wakes every blocked one, with error::stream_closed; the
  /// items already buffered can still be received, then the stream reads as ended.
  /// Idempotent; callable from any thread.
  void close() { stop(true); }

private:
  static std::size_t checked_capacity(std::size_t capacity) {
    if (capacity == 0)
      throw std::invalid_argument("async_stream: capacity must be at least 1");
    return capacity;
  }

  void stop(bool keep_items) noexcept {
    if (!state_)
      return;
    std::deque<T> dropped; // destroyed after the lock is released: their destructors are yours
    std::lock_guard lock(state_->mutex);
    dropped = state_->stop_consumer(keep_items ? "the consumer closed the stream"
                                               : "the consumer destroyed the stream",
                                    keep_items);
  }

  std::shared_ptr<detail::async_stream_state<T>> state_;
};

} // namespace smartasync

#endif // SMARTASYNC_ASYNC_STREAM_HPP
