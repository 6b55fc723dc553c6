// smartasync/stream.hpp - iterate synchronously over items an async producer emits.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_STREAM_HPP
#define SMARTASYNC_STREAM_HPP

#include "smartasync/config.hpp"

#include "smartasync/block_on.hpp"
#include "smartasync/detail/stream_state.hpp"
#include "smartasync/error.hpp"
#include "smartasync/source_location.hpp"

// asio::as_tuple left the experimental namespace in Asio 1.24-1.26; 1.33 removed the old name.
#if SMARTASYNC_ASIO_VERSION >= 102600
#include SMARTASYNC_ASIO_HEADER(as_tuple.hpp)
#else
#include SMARTASYNC_ASIO_HEADER(experimental/as_tuple.hpp)
#endif
#include SMARTASYNC_ASIO_HEADER(awaitable.hpp)
#include SMARTASYNC_ASIO_HEADER(bind_cancellation_slot.hpp)
#include SMARTASYNC_ASIO_HEADER(co_spawn.hpp)
#include SMARTASYNC_ASIO_HEADER(dispatch.hpp)
#include SMARTASYNC_ASIO_HEADER(error.hpp)
#include SMARTASYNC_ASIO_HEADER(use_awaitable.hpp)

#include <cstddef>
#include <exception>
#include "smartasync/detail/format.hpp"
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <utility>

namespace SMARTASYNC_NAMESPACE {

/// The producer's end of a sync_stream: hands items to the synchronous consumer.
/**
 * Copyable handle; copies refer to the same stream.
 *
 * @par Thread safety
 * Use it from the producer coroutine only: at most one emit() may be in progress at a time
 * (a second one, from another coroutine, throws std::logic_error rather than risk waiting
 * forever). To stream events from fan_out workers, send them to the one producer coroutine.
 */
template <typename T>
class stream_writer {
public:
  /// Appends `item` to the buffer, suspending while the buffer is full (back-pressure).
  /**
   * @par Completion signature
   * `asio::awaitable<void>`; throws smartasync::system_error(asio::error::operation_aborted) once the
   * consumer has stopped (broke out of its loop, cancelled, or destroyed the stream): the
   * producer should let it propagate (or return).
   *
   * @par Blocking
   * Never blocks the producer's loop: a full buffer suspends the coroutine.
   */
  asio::awaitable<void> emit(T item) const {
    for (;;) {
      {
        std::lock_guard lock(state_->mutex);
        if (state_->cancelled)
          throw system_error(asio::error::operation_aborted, "sync_stream consumer stopped");
        if (state_->items.size() < state_->capacity) {
          state_->items.push_back(std::move(item));
          state_->changed.notify_one();
          co_return;
        }
        // One wake-up slot serves one suspended emitter; a second would wait forever, so
        // refuse it loudly instead (fan-out producers must funnel through one emitter).
        if (state_->producer_waiting)
          throw std::logic_error("smartasync::stream_writer::emit: two coroutines are emitting "
                                 "into one sync_stream at once; funnel items through a single "
                                 "producer coroutine");
        state_->producer_waiting = true;
      }
      // Woken by the consumer taking an item or cancelling; the loop re-checks which.
#if SMARTASYNC_ASIO_VERSION >= 102600
      co_await state_->space->async_receive(asio::as_tuple(asio::use_awaitable));
#else
      co_await state_->space->async_receive(asio::experimental::as_tuple(asio::use_awaitable));
#endif
    }
  }

private:
  template <typename>
  friend class sync_stream;
  explicit stream_writer(std::shared_ptr<detail::stream_state<T>> state)
      : state_(std::move(state)) {}
  std::shared_ptr<detail::stream_state<T>> state_;
};

/// A synchronous, single-pass range over the items an async producer coroutine emits.
/**
 * The producer, `producer(stream_writer<T>) -> asio::awaitable<void>`, starts at construction
 * on the shared background loop (or the given executor) and fills a buffer of `capacity`
 * items; the consumer takes them with range-for, next(), or the iterator.
 *
 * @par Blocking
 * The consumer thread blocks while the buffer is empty. The producer never blocks its loop: a
 * full buffer suspends it (back-pressure).
 *
 * @par Cancellation and early exit
 * Breaking out of a range-for (destroying an unfinished iterator), calling cancel(), or
 * destroying the stream cancels the producer: the operation it is awaiting gets terminal
 * cancellation, and its next emit() throws operation_aborted. The destructor waits for the
 * producer to finish, so the producer may safely use references to the consumer's locals.
 *
 * @par Errors
 * An exception thrown by the producer is rethrown to the consumer after the items emitted
 * before it (operation_aborted caused by our own cancellation is not reported).
 *
 * @par Misuse
 * Constructing it on a thread that runs the producer's execution context would deadlock at
 * the first wait, so the constructor throws smartasync::system_error(error::deadlock).
 *
 * @par Thread safety
 * One consumer thread at a time; cancel() may be called from any thread.
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
                    where) {}

  /// Starts `producer` on `ex`.
  template <typename Producer>
    requires std::is_invocable_r_v<asio::awaitable<void>, Producer&, stream_writer<T>>
  sync_stream(asio::any_io_executor ex, std::size_t capacity, Producer producer,
              smartasync::source_location where = smartasync::source_location::current()) {
    if (capacity == 0)
      throw std::invalid_argument("sync_stream: capacity must be at least 1");
    if (detail::runs_on_this_thread(ex)) {
      throw system_error(
          make_error_code(error::deadlock),
          fmt::format("sync_stream at {}:{} was created on a thread that runs its producer's "
                      "execution context, so the producer could never run while this thread "
                      "waits for items; consume it with a coroutine instead",
                      where.file_name(), where.line()));
    }
    state_ = std::make_shared<detail::stream_state<T>>(std::move(ex), capacity);
    auto s = state_;
    asio::dispatch(*s->strand, [s, producer = std::move(producer),
                                done = producer_completion(s)]() mutable {
      asio::co_spawn(*s->strand, run_producer(std::move(producer), stream_writer<T>(s)),
                     asio::bind_cancellation_slot(s->cancel_producer.slot(), std::move(done)));
    });
  }

  sync_stream(const sync_stream&) = delete;
  sync_stream& operator=(const sync_stream&) = delete;

  /// Cancels the producer if it is still running and waits for it to finish.
  ~sync_stream() {
    cancel();
    std::unique_lock lock(state_->mutex);
    state_->changed.wait(lock, [&] { return state_->producer_done; });
  }

  /// The next item, or std::nullopt when the producer has finished; rethrows its exception.
  std::optional<T> next() {
    std::unique_lock lock(state_->mutex);
    state_->changed.wait(lock, [&] { return !state_->items.empty() || state_->producer_done; });
    if (!state_->items.empty()) {
      std::optional<T> item(std::move(state_->items.front()));
      state_->items.pop_front();
      wake_producer(lock);
      return item;
    }
    if (auto e = std::exchange(state_->error, nullptr))
      std::rethrow_exception(e); // once; the stream then reads as finished
    return std::nullopt;
  }

  /// Stops the producer (its next emit() throws operation_aborted) without waiting. Idempotent.
  void cancel() {
    std::optional<asio::strand<asio::any_io_executor>> strand;
    {
      std::unique_lock lock(state_->mutex);
      if (state_->cancelled || state_->producer_done)
        return;
      state_->cancelled = true;
      state_->items.clear();
      wake_producer(lock);
      strand = state_->strand;
    }
    auto s = state_;
    asio::dispatch(*strand, [s] { s->cancel_producer.emit(asio::cancellation_type::terminal); });
  }

  /// Single-pass input iterator; each stream has one meaningful begin().
  class iterator {
  public:
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using reference = T&;

    iterator(iterator&& other) noexcept
        : stream_(std::exchange(other.stream_, nullptr)), current_(std::move(other.current_)) {}
    iterator& operator=(iterator&& other) noexcept {
      stop_if_unfinished();
      stream_ = std::exchange(other.stream_, nullptr);
      current_ = std::move(other.current_);
      return *this;
    }
    /// An iterator dropped before the end (break out of range-for) cancels the producer.
    ~iterator() { stop_if_unfinished(); }

    T& operator*() const { return *current_; }
    T* operator->() const { return &*current_; }
    iterator& operator++() {
      current_ = stream_->next();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
      return !it.current_.has_value();
    }

  private:
    friend class sync_stream;
    explicit iterator(sync_stream* s) : stream_(s), current_(s->next()) {}
    void stop_if_unfinished() noexcept {
      if (stream_ && current_)
        stream_->cancel();
    }
    sync_stream* stream_;
    mutable std::optional<T> current_;
  };

  /// Fetches the first item (blocking) and returns an iterator to it.
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() const noexcept { return {}; }

private:
  // Ends the stream when the producer finishes. If the producer's execution context is
  // destroyed first, Asio destroys this handler (or the dispatch carrying it) without calling
  // it; the destructor then ends the stream with operation_aborted, so that neither next() nor
  // ~sync_stream waits forever for a producer that will never run.
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
      if (!(s->cancelled && is_abort(e)))
        s->error = std::move(e);
      s->producer_done = true;
      if (context_dying) {
        // The strand and the channel belong to the dying context: released now, while its
        // services still exist, so that the stream may outlive it.
        s->producer_waiting = false;
        s->space.reset();
        s->strand.reset();
      }
      s->changed.notify_all();
    }
    std::shared_ptr<detail::stream_state<T>> s_;
  };

  // The producer is usually a lambda coroutine with captures; its frame refers to the closure,
  // so the closure must live in a frame that outlasts it: this one.
  template <typename Producer>
  static asio::awaitable<void> run_producer(Producer producer, stream_writer<T> out) {
    co_await producer(std::move(out));
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

  void wake_producer(std::unique_lock<std::mutex>&) {
    if (state_->producer_waiting) {
      state_->producer_waiting = false;
      state_->space->try_send(error_code{}, 0);
    }
  }

  std::shared_ptr<detail::stream_state<T>> state_;
};

} // namespace smartasync

#endif // SMARTASYNC_STREAM_HPP
