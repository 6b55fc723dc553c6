// smartasync/stream.hpp - consume, in plain code or a coroutine, the items async emitters produce.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_STREAM_HPP
#define SMARTASYNC_STREAM_HPP

#include "smartasync/config.hpp"

#include "smartasync/block_on.hpp"
#include "smartasync/detail/call_site.hpp"
#include "smartasync/detail/loop_guard.hpp"
#include "smartasync/detail/stream_state.hpp"
#include "smartasync/error.hpp"
#include "smartasync/source_location.hpp"

// asio::as_tuple left the experimental namespace in Asio 1.24-1.26; 1.33 removed the old name.
#if SMARTASYNC_ASIO_VERSION >= 102600
#include SMARTASYNC_ASIO_HEADER(as_tuple.hpp)
#else
#include SMARTASYNC_ASIO_HEADER(experimental/as_tuple.hpp)
#endif
#include SMARTASYNC_ASIO_HEADER(any_io_executor.hpp)
#include SMARTASYNC_ASIO_HEADER(associated_allocator.hpp)
#include SMARTASYNC_ASIO_HEADER(associated_cancellation_slot.hpp)
#include SMARTASYNC_ASIO_HEADER(associated_executor.hpp)
#include SMARTASYNC_ASIO_HEADER(async_result.hpp)
#include SMARTASYNC_ASIO_HEADER(awaitable.hpp)
#include SMARTASYNC_ASIO_HEADER(bind_cancellation_slot.hpp)
#include SMARTASYNC_ASIO_HEADER(cancellation_type.hpp)
#include SMARTASYNC_ASIO_HEADER(co_spawn.hpp)
#include SMARTASYNC_ASIO_HEADER(dispatch.hpp)
#include SMARTASYNC_ASIO_HEADER(error.hpp)
#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(post.hpp)
#include SMARTASYNC_ASIO_HEADER(system_executor.hpp)
#include SMARTASYNC_ASIO_HEADER(this_coro.hpp)
#include SMARTASYNC_ASIO_HEADER(use_awaitable.hpp)

#include <cstddef>
#include <exception>
#include "smartasync/detail/format.hpp"
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>

namespace SMARTASYNC_NAMESPACE {

template <typename T>
class sync_stream;

/// An emitter's end of a sync_stream: hands items to the consumer.
/**
 * Copyable handle; copies refer to the same stream, and each copy is an emitter. The stream
 * ends (the consumer sees the end) once its producer coroutine has returned *and* every
 * stream_writer has been destroyed (or moved from), so the producer may hand copies to other
 * coroutines, on any executor or thread, and return: the stream stays open until the last of
 * them lets its copy go. A default-constructed or moved-from writer is empty (valid() is
 * false) and its emit() throws std::logic_error.
 *
 * @par Thread safety
 * Distinct objects: safe. Shared objects: unsafe (give each coroutine its own copy). Any
 * number of copies may emit at once, from any threads; items of one emitter arrive in the
 * order it emitted them, and emitters waiting on a full buffer are served first come, first
 * served.
 */
template <typename T>
class stream_writer {
public:
  /// An empty writer: valid() is false.
  stream_writer() noexcept = default;
  /// Another handle on the same stream: the stream ends when the last writer is gone.
  stream_writer(const stream_writer& other) noexcept : state_(other.state_) {
    if (state_) // copied from a live handle: the count cannot reach zero meanwhile
      state_->writers.fetch_add(1, std::memory_order_relaxed);
  }
  /// Takes `other`'s handle; `other` is then empty.
  stream_writer(stream_writer&& other) noexcept : state_(std::move(other.state_)) {}
  /// Releases the handle held, then shares `other`'s stream.
  stream_writer& operator=(const stream_writer& other) noexcept {
    if (this != &other)
      *this = stream_writer(other);
    return *this;
  }
  /// Releases the handle held, then takes `other`'s.
  stream_writer& operator=(stream_writer&& other) noexcept {
    if (this != &other) {
      release();
      state_ = std::move(other.state_);
    }
    return *this;
  }
  ~stream_writer() { release(); }

  /// False for a default-constructed or moved-from writer.
  bool valid() const noexcept { return state_ != nullptr; }

  /// Appends `item` to the buffer, suspending while the buffer is full (back-pressure).
  /**
   * @par Completion signature
   * `asio::awaitable<void>`; throws smartasync::system_error(asio::error::operation_aborted)
   * without taking the item once the consumer has stopped (broke out of its loop, cancelled,
   * or destroyed the stream), once the producer has failed, or when this emit is cancelled
   * while it waits for space: the emitter should let it propagate (or return).
   *
   * @par Blocking
   * Never blocks the emitter's loop: a full buffer suspends the coroutine, which then resumes
   * on its own executor.
   *
   * @par Cancellation
   * The calling coroutine's cancellation (any type) ends a wait for space with
   * operation_aborted; the item was not added.
   */
  asio::awaitable<void> emit(T item) const {
    if (!state_)
      throw std::logic_error("smartasync::stream_writer::emit on an empty (moved-from) writer");
    // The frame holds its own copy: the item counts as pending output of a live emitter until
    // it is in the buffer, even if this handle is destroyed while the emit waits.
    return do_emit(*this, std::move(item));
  }

private:
  template <typename>
  friend class sync_stream;
  explicit stream_writer(std::shared_ptr<detail::stream_state<T>> state) noexcept
      : state_(std::move(state)) {
    state_->writers.fetch_add(1, std::memory_order_relaxed);
  }

  void release() noexcept {
    if (auto s = std::move(state_)) {
      if (s->writers.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard lock(s->mutex);
        s->notify_if_finished();
      }
    }
  }

  // Leaves the wait lists when the emit ends, however it ends: also when its frame is destroyed
  // while suspended (its execution context shut down), so that the stream neither signals a
  // dead wait nor loses the slot it may have reserved for it.
  struct leave_on_exit {
    detail::stream_state<T>& s;
    std::optional<detail::stream_wait>& wait;
    ~leave_on_exit() {
      if (wait) {
        std::lock_guard lock(s.mutex);
        s.unqueue(s.emitters_waiting, *wait);
        s.return_grant(*wait);
      }
    }
  };

  static asio::awaitable<void> do_emit(stream_writer self, T item) {
    detail::stream_state<T>& s = *self.state_;
    const asio::any_io_executor ex = co_await asio::this_coro::executor;
    std::optional<detail::stream_wait> wait; // made on the first wait, on our own executor
    leave_on_exit leave{s, wait};
    bool wait_failed = false;
    for (;;) {
      {
        std::lock_guard lock(s.mutex);
        bool granted = false;
        if (wait) { // back from a wait: woken, cancelled, or both
          s.unqueue(s.emitters_waiting, *wait);
          granted = std::exchange(wait->granted, false);
          if (granted)
            --s.reserved;
        }
        if (s.accepting() && !wait_failed &&
            (granted || (s.emitters_waiting.empty() && s.items.size() + s.reserved < s.capacity))) {
          s.items.push_back(std::move(item));
          s.wake_one_consumer();
          s.changed.notify_one();
          co_return;
        }
        if (granted) // not used after all: the next waiter gets it
          s.grant_space();
        if (!s.accepting())
          throw system_error(asio::error::operation_aborted,
                             s.cancelled ? "sync_stream consumer stopped"
                                         : "sync_stream producer failed");
        if (wait_failed)
          throw system_error(asio::error::operation_aborted, "stream_writer::emit cancelled");
        if (!wait)
          wait.emplace(ex);
        s.emitters_waiting.push_back(&*wait);
        wait->queued = true;
      }
      // Woken by a freed slot (granted to us), the consumer stopping, or our own cancellation.
#if SMARTASYNC_ASIO_VERSION >= 102600
      auto woken = co_await wait->signal.async_receive(asio::as_tuple(asio::use_awaitable));
#else
      auto woken =
          co_await wait->signal.async_receive(asio::experimental::as_tuple(asio::use_awaitable));
#endif
      wait_failed = static_cast<bool>(std::get<0>(woken));
    }
  }

  std::shared_ptr<detail::stream_state<T>> state_;
};

namespace detail {

// An async_next wait, shared by the pending receive (which owns it) and the cancellation
// handler (which only observes it).
template <typename T>
struct stream_next_wait : stream_wait {
  stream_next_wait(std::shared_ptr<stream_state<T>> s, const asio::any_io_executor& ex)
      : stream_wait(ex), state(std::move(s)) {}
  ~stream_next_wait() {
    std::lock_guard lock(state->mutex);
    state->unqueue(state->consumers_waiting, *this);
  }
  std::shared_ptr<stream_state<T>> state;
};

// Installed in the caller's cancellation slot. It does not take anything back, because nothing
// has been taken: an item leaves the buffer only when the wait completes on the caller's
// executor, and a wait that finds itself cancelled then leaves it there.
template <typename T>
struct stream_next_cancel {
  std::weak_ptr<stream_next_wait<T>> wait;
  void operator()(asio::cancellation_type type) const {
    if (type == asio::cancellation_type::none)
      return;
    auto w = wait.lock();
    if (!w)
      return;
    std::lock_guard lock(w->state->mutex);
    w->cancel_requested = true;
    if (w->queued) {
      w->state->unqueue(w->state->consumers_waiting, *w);
      w->wake();
    }
  }
};

// The channel's completion handler: runs on the caller's executor, takes the item (or the end,
// or reports the cancellation) and completes the caller. It presents the caller's executor and
// allocator to the channel but not its cancellation slot, which stream_next_cancel serves.
template <typename T, typename Handler>
class stream_next_op {
public:
  using executor_type = asio::associated_executor_t<Handler, asio::system_executor>;
  using allocator_type = asio::associated_allocator_t<Handler>;

  stream_next_op(Handler handler, std::shared_ptr<stream_next_wait<T>> wait)
      : handler_(std::move(handler)), wait_(std::move(wait)) {}

  executor_type get_executor() const noexcept {
    return asio::get_associated_executor(handler_, asio::system_executor());
  }
  allocator_type get_allocator() const noexcept { return asio::get_associated_allocator(handler_); }

  void operator()(error_code ec, int) {
    stream_state<T>& s = *wait_->state;
    std::exception_ptr error;
    std::optional<T> item;
    {
      std::unique_lock lock(s.mutex);
      s.unqueue(s.consumers_waiting, *wait_);
      if (wait_->cancel_requested || ec) {
        error = std::make_exception_ptr(
            system_error(asio::error::operation_aborted, "sync_stream::async_next cancelled"));
        // A wake-up meant for this wait must not be lost with it.
        if (!s.items.empty() || s.finished())
          s.wake_one_consumer();
      } else if (!s.items.empty()) {
        item.emplace(std::move(s.items.front()));
        s.items.pop_front();
        s.grant_space();
      } else if (s.finished()) {
        error = std::exchange(s.error, nullptr); // once; the stream then reads as finished
      } else { // another consumer took the item: wait again
        wait_->queued = true;
        s.consumers_waiting.push_back(wait_.get());
        lock.unlock();
        auto& signal = wait_->signal;
        signal.async_receive(std::move(*this));
        return;
      }
    }
    asio::get_associated_cancellation_slot(handler_).clear();
    wait_.reset();
    std::move(handler_)(std::move(error), std::move(item));
  }

private:
  Handler handler_;
  std::shared_ptr<stream_next_wait<T>> wait_;
};

template <typename T>
struct initiate_stream_next {
  std::shared_ptr<stream_state<T>> state;

  template <typename Handler>
  void operator()(Handler handler) const {
    const auto handler_ex = asio::get_associated_executor(handler, asio::system_executor());
    if (!state) { // a moved-from stream reads as finished
      asio::post(handler_ex, [h = std::move(handler)]() mutable {
        std::move(h)(std::exception_ptr(), std::optional<T>());
      });
      return;
    }
    // The wait lives in the caller's execution context, so that its shutdown abandons the wait
    // like any of its own operations. An executor that cannot host one (use_future's) has no
    // context to shut down: the system executor's serves.
    asio::any_io_executor wait_ex = [&]() -> asio::any_io_executor {
      if constexpr (std::is_constructible_v<asio::any_io_executor, decltype(handler_ex)>)
        return handler_ex;
      else
        return asio::system_executor();
    }();
    auto wait = std::make_shared<stream_next_wait<T>>(state, wait_ex);
    {
      std::lock_guard lock(state->mutex);
      if (state->items.empty() && !state->finished()) {
        wait->queued = true;
        state->consumers_waiting.push_back(wait.get());
      } else {
        wait->wake(); // completes through the channel: never inside this call
      }
    }
    auto slot = asio::get_associated_cancellation_slot(handler);
    if (slot.is_connected())
      slot.template emplace<stream_next_cancel<T>>(stream_next_cancel<T>{wait});
    auto& signal = wait->signal;
    signal.async_receive(stream_next_op<T, Handler>(std::move(handler), std::move(wait)));
  }
};

} // namespace detail

/// A single-pass range over the items async emitters produce, for a synchronous consumer (a
/// range-for, next()) or a coroutine (async_next()).
/**
 * The producer, `producer(stream_writer<T>) -> asio::awaitable<void>`, starts at construction
 * on the shared background loop (or the given executor) and fills a buffer of `capacity`
 * items. It may hand copies of its writer to other coroutines (on any executor) that emit
 * concurrently; the stream ends when the producer has returned and every writer is gone.
 *
 * @par Blocking
 * A synchronous consumer blocks while the buffer is empty; async_next() suspends instead.
 * Emitters never block their loops: a full buffer suspends them (back-pressure).
 *
 * @par Cancellation and early exit
 * Breaking out of a range-for (destroying an unfinished iterator), calling cancel(), or
 * destroying the stream cancels the producer: the operation it is awaiting gets terminal
 * cancellation, and every emitter's next emit() throws operation_aborted. The destructor waits
 * for the producer to finish, so the producer may safely use references to the consumer's
 * locals; see the destructor for the two cases where it cannot wait.
 *
 * @par Errors
 * An exception thrown by the producer ends the stream: the items already buffered are
 * delivered, then the exception is rethrown to the consumer (once), and other emitters' emit()
 * throws operation_aborted. (operation_aborted caused by our own cancellation is not
 * reported.) If the producer's execution context is destroyed before the producer finished,
 * the consumer gets operation_aborted the same way, and the stream may outlive the context.
 *
 * @par Misuse
 * Constructing it on a thread that runs the producer's execution context throws
 * smartasync::system_error(error::deadlock): a synchronous consumer there would wait forever.
 *
 * @par Moving
 * Movable; iterators refer to the stream object and are invalidated. A moved-from stream is
 * empty: valid() is false, it reads as finished (next() returns std::nullopt, async_next()
 * completes with std::nullopt, begin() == end()), cancel() does nothing.
 *
 * @par Thread safety
 * One consumer at a time; cancel() may be called from any thread.
 *
 * @par Example
 * @code
 * smartasync::sync_stream<row> rows(64, [&](smartasync::stream_writer<row> out) -> asio::awaitable<void> {
 *   while (auto r = co_await cursor.async_next()) co_await out.emit(*r);
 * });
 * for (const row& r : rows) process(r);
 * @endcode
 */
template <typename T>
class sync_stream {
public:
  class iterator;

  /// Starts `producer` on the shared background loop.
  template <typename Producer>
  sync_stream(std::size_t capacity, Producer producer,
              smartasync::source_location where = smartasync::source_location::current())
      : sync_stream(asio::any_io_executor(background_executor()), capacity, std::move(producer),
                    stream_options{}, where) {}

  /// Starts `producer` on the shared background loop, with a name and a loop_call_policy.
  template <typename Producer>
  sync_stream(std::size_t capacity, Producer producer, stream_options options,
              smartasync::source_location where = smartasync::source_location::current())
      : sync_stream(asio::any_io_executor(background_executor()), capacity, std::move(producer),
                    std::move(options), where) {}

  /// Starts `producer` on `ex`.
  template <typename Producer>
    requires std::is_invocable_r_v<asio::awaitable<void>, Producer&, stream_writer<T>>
  sync_stream(asio::any_io_executor ex, std::size_t capacity, Producer producer,
              smartasync::source_location where = smartasync::source_location::current())
      : sync_stream(std::move(ex), capacity, std::move(producer), stream_options{}, where) {}

  /// Starts `producer` on `ex`, with a name and a loop_call_policy.
  template <typename Producer>
    requires std::is_invocable_r_v<asio::awaitable<void>, Producer&, stream_writer<T>>
  sync_stream(asio::any_io_executor ex, std::size_t capacity, Producer producer,
              stream_options options,
              smartasync::source_location where = smartasync::source_location::current())
      : site_(std::move(options.name), options.on_loop, where,
              detail::blocking_entry::sync_stream) {
    if (capacity == 0)
      throw std::invalid_argument("sync_stream: capacity must be at least 1");
    if (detail::runs_on_this_thread(ex)) {
      throw system_error(
          make_error_code(error::deadlock),
          fmt::format("sync_stream at {}:{} was created on a thread that runs its producer's "
                      "execution context, so the producer could never run while this thread "
                      "waits for items; give it another executor (the default background "
                      "loop, say) and consume it with co_await async_next()",
                      where.file_name(), where.line()));
    }
    state_ = std::make_shared<detail::stream_state<T>>(std::move(ex), capacity);
    auto s = state_;
    asio::dispatch(*s->strand, [s, producer = std::move(producer),
                                done = producer_completion(s)]() mutable {
      asio::co_spawn(*s->strand, start_producer(std::move(producer), stream_writer<T>(s)),
                     asio::bind_cancellation_slot(s->cancel_producer.slot(), std::move(done)));
    });
  }

  sync_stream(const sync_stream&) = delete;
  sync_stream& operator=(const sync_stream&) = delete;

  /// Takes over `other`'s stream; `other` is left empty (valid() is false).
  sync_stream(sync_stream&& other) noexcept
      : state_(std::move(other.state_)), site_(std::move(other.site_)) {}

  /// Ends this stream as the destructor does, then takes over `other`'s.
  sync_stream& operator=(sync_stream&& other) noexcept {
    if (this != &other) {
      stop_and_wait();
      state_ = std::move(other.state_);
      site_ = std::move(other.site_);
    }
    return *this;
  }

  /// Cancels the producer if it is still running and waits for it to finish.
  /**
   * It does not wait where waiting could never end: on a thread that runs the producer's
   * execution context (a stream moved into a coroutine on that loop), or when that context is
   * an io_context that has been stopped (it is being destroyed, say, at process exit). The
   * producer then finishes, or is destroyed, on its own later; it must not rely on the
   * consumer's locals in those cases.
   */
  ~sync_stream() { stop_and_wait(); }

  /// False for a moved-from stream, which reads as finished.
  bool valid() const noexcept { return state_ != nullptr; }

  /// The next item, or std::nullopt when the stream has ended; rethrows the producer's exception.
  /**
   * @par Blocking
   * Blocks the calling thread while the buffer is empty. Use async_next() in a coroutine. On
   * a thread running an event loop stream_options::on_loop decides, as for a smart_async
   * wrapper's sync form (report, naming `called_at`; strict, throwing
   * error::blocking_call_on_loop without taking an item; silent).
   */
  std::optional<T> next(smartasync::source_location called_at =
                            smartasync::source_location::current()) {
    return next_from(detail::call_origin{called_at, true});
  }

  /// Waits asynchronously for the next item, for a coroutine (or callback) consumer.
  /**
   * @param token Any completion token; the default makes it `co_await stream.async_next()`.
   *
   * @par Completion signature
   * `void(std::exception_ptr, std::optional<T>)`: the item, std::nullopt once the stream has
   * ended, or the producer's exception (once, after the items emitted before it). With
   * use_awaitable it yields the std::optional<T> or throws.
   *
   * @par Blocking
   * Never blocks; completes through the handler's associated executor (a handler without one
   * runs on asio::system_executor), never inside this call.
   *
   * @par Cancellation
   * Any type (terminal, partial, total): the wait completes with an exception_ptr holding
   * smartasync::system_error(asio::error::operation_aborted), and no item is consumed: an item
   * leaves the buffer only when the completion runs on the caller's executor, so a wait
   * cancelled after an item arrived but before it resumed (the loser of an awaitable `||`)
   * leaves the item for the next call. The stream itself is not cancelled.
   *
   * @par Lifetime
   * The stream object may be destroyed while a wait is pending (the wait keeps the shared
   * state); the context of the handler's executor must outlive the wait, or be destroyed
   * with it (its shutdown abandons the wait, as it abandons Asio's own operations).
   */
  template <typename CompletionToken = asio::use_awaitable_t<>>
  auto async_next(CompletionToken&& token = CompletionToken()) {
    return asio::async_initiate<CompletionToken, void(std::exception_ptr, std::optional<T>)>(
        detail::initiate_stream_next<T>{state_}, token);
  }

  /// Stops the producer (every emit() throws operation_aborted) without waiting. Idempotent.
  /** Buffered items are dropped; the stream then reads as finished once the producer is done. */
  void cancel() {
    if (!state_)
      return;
    std::optional<asio::strand<asio::any_io_executor>> strand;
    {
      std::lock_guard lock(state_->mutex);
      // Also after the producer has returned: other emitters may still be running.
      if (state_->cancelled || state_->finished())
        return;
      state_->cancelled = true;
      state_->items.clear();
      state_->wake_all(state_->emitters_waiting);
      state_->notify_if_finished();
      if (!state_->producer_done)
        strand = state_->strand;
    }
    if (!strand)
      return;
    auto s = state_;
    asio::dispatch(*strand, [s] { s->cancel_producer.emit(asio::cancellation_type::terminal); });
  }

  /// Single-pass input iterator; each stream has one meaningful begin().
  class iterator {
  public:
    /// The item type.
    using value_type = T;
    /// Required of an iterator; never used.
    using difference_type = std::ptrdiff_t;
    /// What dereferencing gives: the current item, which the consumer may move from.
    using reference = T&;

    /// Takes `other`'s position; `other` then owns nothing (move-only).
    iterator(iterator&& other) noexcept
        : stream_(std::exchange(other.stream_, nullptr)), origin_(other.origin_),
          current_(std::move(other.current_)) {}
    /// Stops the producer if this iterator was unfinished, then takes `other`'s position.
    iterator& operator=(iterator&& other) noexcept {
      stop_if_unfinished();
      stream_ = std::exchange(other.stream_, nullptr);
      origin_ = other.origin_;
      current_ = std::move(other.current_);
      return *this;
    }
    /// An iterator dropped before the end (break out of range-for) cancels the producer.
    ~iterator() { stop_if_unfinished(); }

    /// The current item.
    T& operator*() const { return *current_; }
    /// The current item's address.
    T* operator->() const { return &*current_; }
    /// Fetches the next item, blocking until it arrives or the stream ends; on an event loop,
    /// checked as begin() was (and named by it).
    iterator& operator++() {
      current_ = stream_->next_from(origin_);
      return *this;
    }
    /// As ++it (a single-pass iterator returns nothing).
    void operator++(int) { ++*this; }
    /// True once the stream has ended (no current item).
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
      return !it.current_.has_value();
    }

  private:
    friend class sync_stream;
    iterator(sync_stream* s, const detail::call_origin& origin)
        : stream_(s), origin_(origin), current_(s->next_from(origin)) {}
    void stop_if_unfinished() noexcept {
      if (stream_ && current_)
        stream_->cancel();
    }
    sync_stream* stream_;
    detail::call_origin origin_; // begin()'s call, which a range-for's ++ reports name
    mutable std::optional<T> current_;
  };

  /// Fetches the first item (blocking) and returns an iterator to it.
  /**
   * On an event loop, checked as next() is; the iterator's ++ is checked the same way and
   * names this call (in a range-for, the loop statement).
   */
  iterator begin(smartasync::source_location called_at = smartasync::source_location::current()) {
    return iterator(this, detail::call_origin{called_at, true});
  }
  /// The end: an iterator equals it once the stream has ended.
  std::default_sentinel_t end() const noexcept { return {}; }

private:
  // next(), begin() and ++: the loop check (`origin` is the call's), then the blocking read.
  std::optional<T> next_from(const detail::call_origin& origin) {
    if (!state_)
      return std::nullopt;
    detail::loop_guard guard(site_, origin);
    auto& s = *state_;
    std::unique_lock lock(s.mutex);
    s.changed.wait(lock, [&] { return !s.items.empty() || s.finished(); });
    if (!s.items.empty()) {
      std::optional<T> item(std::move(s.items.front()));
      s.items.pop_front();
      s.grant_space();
      return item;
    }
    if (auto e = std::exchange(s.error, nullptr))
      std::rethrow_exception(e); // once; the stream then reads as finished
    return std::nullopt;
  }


  // Ends the stream when the producer finishes. If the producer's execution context is
  // destroyed first, Asio destroys this handler (or the dispatch carrying it) without calling
  // it; the destructor then ends the stream with operation_aborted, so that neither a consumer
  // nor ~sync_stream waits forever for a producer that will never run.
  class producer_completion {
  public:
    explicit producer_completion(std::shared_ptr<detail::stream_state<T>> s) : s_(std::move(s)) {}
    producer_completion(producer_completion&& other) noexcept : s_(std::move(other.s_)) {}
    producer_completion& operator=(producer_completion&&) = delete;
    ~producer_completion() {
      if (s_)
        finish(std::make_exception_ptr(system_error(
                   asio::error::operation_aborted,
                   "sync_stream: the producer's execution context was destroyed before it "
                   "finished")),
               /*context_dying=*/true);
    }
    void operator()(std::exception_ptr e) { finish(std::move(e), false); }

  private:
    void finish(std::exception_ptr e, bool context_dying) {
      auto s = std::move(s_);
      std::lock_guard lock(s->mutex);
      if (e && !(s->cancelled && is_abort(e))) {
        s->error = std::move(e);
        s->closed = true; // the other emitters' items would come after the error: refused
        s->wake_all(s->emitters_waiting);
      }
      s->producer_done = true;
      if (context_dying) {
        // The strand belongs to the dying context: released now, while its services still
        // exist, so that the stream may outlive it.
        s->strand.reset();
      }
      s->notify_if_finished();
      s->changed.notify_all(); // a destructor waits for producer_done alone
    }
    std::shared_ptr<detail::stream_state<T>> s_;
  };

  // The producer is usually a lambda coroutine with captures; its frame refers to the closure,
  // so the closure must outlive it: it goes to the heap, owned by the frame that awaits it.
  // Type-erased, because a coroutine frame with a member of the closure's type has no linkage
  // (HACK(gcc 12): -Wsubobject-linkage, on by default, then warns wherever the lambda was
  // written outside the main file, e.g. in an inline function of a user's header). A producer
  // that throws instead of returning an awaitable fails the stream like one that throws later.
  template <typename Producer>
  static asio::awaitable<void> start_producer(Producer producer, stream_writer<T> out) {
    auto closure = std::make_shared<Producer>(std::move(producer));
    try {
      asio::awaitable<void> body = (*closure)(std::move(out));
      return run_producer(std::move(closure), std::move(body));
    } catch (...) {
      return fail_producer(std::current_exception());
    }
  }

  static asio::awaitable<void> run_producer(std::shared_ptr<void> closure,
                                            asio::awaitable<void> body) {
    co_await std::move(body);
    closure.reset(); // after the producer's frame, which refers to it, is gone
  }

  static asio::awaitable<void> fail_producer(std::exception_ptr e) {
    co_await asio::this_coro::executor; // a coroutine, so that the error completes it
    std::rethrow_exception(e);
  }

  static bool is_abort(std::exception_ptr e) {
    try {
      if (e)
        std::rethrow_exception(e);
    } catch (const system_error& error) {
      return error.code() == asio::error::operation_aborted;
    } catch (...) {
    }
    return false;
  }

  // True when waiting for the producer could never end (see the destructor).
  static bool producer_unreachable(const asio::strand<asio::any_io_executor>& strand) {
    if (detail::runs_on_this_thread(strand))
      return true;
    // A stopped io_context runs nothing until restarted: at exit, nothing restarts it.
    const asio::any_io_executor& inner = strand.get_inner_executor();
    if (const auto* io = inner.template target<asio::io_context::executor_type>())
      return io->context().stopped();
    using io_strand = asio::strand<asio::io_context::executor_type>;
    if (const auto* user_strand = inner.template target<io_strand>())
      return user_strand->get_inner_executor().context().stopped();
    return false;
  }

  void stop_and_wait() noexcept {
    if (!state_)
      return;
    cancel();
    auto& s = *state_;
    std::unique_lock lock(s.mutex);
    // While the producer is not done its context is alive (its destruction would have
    // destroyed the producer, and so finished it, under this mutex).
    if (!s.producer_done && s.strand && producer_unreachable(*s.strand))
      return;
    s.changed.wait(lock, [&] { return s.producer_done; });
  }

  std::shared_ptr<detail::stream_state<T>> state_;
  detail::call_site site_; // who the stream is, for the loop check of its blocking reads
};

} // namespace smartasync

#endif // SMARTASYNC_STREAM_HPP
