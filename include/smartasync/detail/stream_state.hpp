// smartasync/detail/stream_state.hpp - the buffer shared by a sync_stream and its emitters; the
// options and the wake-up of either direction's streams.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_STREAM_STATE_HPP
#define SMARTASYNC_DETAIL_STREAM_STATE_HPP

#include "smartasync/config.hpp"
#include "smartasync/detail/call_site.hpp"

#include SMARTASYNC_ASIO_HEADER(any_io_executor.hpp)
#include SMARTASYNC_ASIO_HEADER(cancellation_signal.hpp)
#include SMARTASYNC_ASIO_HEADER(experimental/concurrent_channel.hpp)
#include SMARTASYNC_ASIO_HEADER(strand.hpp)

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <string>

namespace SMARTASYNC_NAMESPACE {

/// Options of a stream (sync_stream, async_stream): who it is in reports, and what its blocking
/// calls do on an event loop.
struct stream_options {
  /// A name for reports ("export rows"); the default is where the stream was made.
  std::string name{};
  /// What the stream's blocking calls (a sync_stream's next(), begin() and ++; a stream_sender's
  /// send()) do on a thread running an event loop, as for a smart_async wrapper's sync form:
  /// report (go ahead, then report how long the loop was blocked), strict (throw
  /// error::blocking_call_on_loop without taking or sending an item), silent. Contexts declared
  /// with allow_blocking() pass.
  loop_call_policy on_loop = loop_call_policy::report;
};

} // namespace SMARTASYNC_NAMESPACE

namespace SMARTASYNC_NAMESPACE::detail {

/// One suspended wait: an emitter waiting for space, or a coroutine consumer waiting for an
/// item or the end.
/**
 * The wake-up is a capacity-1 channel on the *waiter's* executor: try_send is thread-safe and
 * never runs the waiter inline, and the pending receive belongs to the waiter's execution
 * context, so when that context is destroyed Asio's own shutdown abandons the wait (destroying
 * the coroutine frame that owns this object) as it does for any of its operations. Every field
 * but `signal` is guarded by the stream's mutex; the state only ever signals a wait while it
 * is queued, and the owner unqueues it (under that mutex) before destroying it.
 */
struct stream_wait {
  explicit stream_wait(const asio::any_io_executor& ex) : signal(ex, 1) {}
  stream_wait(const stream_wait&) = delete;
  stream_wait& operator=(const stream_wait&) = delete;

  void wake() { signal.try_send(error_code{}, 0); } // capacity 1, sent once per queueing

  // void(error_code, int): Asio 1.22's channel_traits is ambiguous for void(error_code).
  asio::experimental::concurrent_channel<void(error_code, int)> signal;
  bool queued = false;           // in one of the state's wait lists
  bool granted = false;          // an emitter woken with a reserved slot it has not used yet
  bool cancel_requested = false; // a consumer wait cancelled through its slot
};

template <typename T>
struct stream_state {
  stream_state(asio::any_io_executor ex, std::size_t buffer_size)
      : strand(asio::make_strand(ex)), capacity(buffer_size) {}

  // The producer runs on this strand; cancellation is emitted on it too (Asio's rule). The
  // strand belongs to the producer's execution context: when that context is destroyed before
  // the producer finished, it is released (under `mutex`) while its services still exist, so
  // that the stream may outlive it.
  std::optional<asio::strand<asio::any_io_executor>> strand;
  std::size_t capacity;

  std::mutex mutex;
  std::condition_variable changed; // a synchronous consumer waits: an item, or the end
  std::deque<T> items;
  // Slots promised to emitters woken for space that have not pushed yet: a fresh emitter may
  // not take them, so waiting emitters are served first come, first served.
  std::size_t reserved = 0;
  // Live stream_writer handles, the producer's included. Atomic so that copying a handle (every
  // emit holds one) costs no lock: a copy is made from a live handle, so the count cannot reach
  // zero meanwhile. The decrement to zero takes `mutex` to announce the end.
  std::atomic<std::size_t> writers{0};
  bool producer_done = false;   // the producer coroutine has finished (or was destroyed)
  bool cancelled = false;       // the consumer stopped: items dropped, no more accepted
  bool closed = false;          // the producer failed: no more items accepted
  std::exception_ptr error;     // the producer's failure, reported once after the items
  std::deque<stream_wait*> emitters_waiting;  // FIFO, for space
  std::deque<stream_wait*> consumers_waiting; // async_next, for an item or the end
  asio::cancellation_signal cancel_producer;  // touched only on `strand`

  // Every function below expects `mutex` to be held.

  // The end: the producer has returned and no other emitter can add anything.
  bool finished() const noexcept {
    return producer_done && (cancelled || closed || writers.load(std::memory_order_acquire) == 0);
  }
  bool accepting() const noexcept { return !cancelled && !closed; }

  void unqueue(std::deque<stream_wait*>& list, stream_wait& w) {
    if (w.queued) {
      list.erase(std::find(list.begin(), list.end(), &w));
      w.queued = false;
    }
  }

  // Hands free slots to waiting emitters, oldest first.
  void grant_space() {
    while (!emitters_waiting.empty() && items.size() + reserved < capacity) {
      stream_wait* w = emitters_waiting.front();
      emitters_waiting.pop_front();
      w->queued = false;
      w->granted = true;
      ++reserved;
      w->wake();
    }
  }

  // A woken emitter that will not push after all passes its slot on.
  void return_grant(stream_wait& w) {
    if (w.granted) {
      w.granted = false;
      --reserved;
      grant_space();
    }
  }

  void wake_all(std::deque<stream_wait*>& list) {
    for (stream_wait* w : list) {
      w->queued = false;
      w->wake();
    }
    list.clear();
  }

  void wake_one_consumer() {
    if (!consumers_waiting.empty()) {
      stream_wait* w = consumers_waiting.front();
      consumers_waiting.pop_front();
      w->queued = false;
      w->wake();
    }
  }

  // After anything that may have ended the stream.
  void notify_if_finished() {
    if (finished()) {
      wake_all(consumers_waiting);
      changed.notify_all();
    }
  }
};

} // namespace smartasync::detail

#endif // SMARTASYNC_DETAIL_STREAM_STATE_HPP
