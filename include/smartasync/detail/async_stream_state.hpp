// smartasync/detail/async_stream_state.hpp - the buffer shared by an async_stream and its senders,
// and the receive operation that takes from it.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_ASYNC_STREAM_STATE_HPP
#define SMARTASYNC_DETAIL_ASYNC_STREAM_STATE_HPP

#include "smartasync/config.hpp"
#include "smartasync/detail/call_site.hpp"
#include "smartasync/detail/format.hpp"
#include "smartasync/detail/stream_state.hpp"
#include "smartasync/error.hpp"

#include SMARTASYNC_ASIO_HEADER(any_io_executor.hpp)
#include SMARTASYNC_ASIO_HEADER(associated_allocator.hpp)
#include SMARTASYNC_ASIO_HEADER(associated_cancellation_slot.hpp)
#include SMARTASYNC_ASIO_HEADER(associated_executor.hpp)
#include SMARTASYNC_ASIO_HEADER(cancellation_type.hpp)
#include SMARTASYNC_ASIO_HEADER(error.hpp)
#include SMARTASYNC_ASIO_HEADER(post.hpp)
#include SMARTASYNC_ASIO_HEADER(system_executor.hpp)

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace SMARTASYNC_NAMESPACE::detail {

template <typename T>
struct async_stream_state {
  async_stream_state(std::size_t buffer_size, call_site who)
      : capacity(buffer_size), site(std::move(who)) {}

  const std::size_t capacity;
  const call_site site; // who the stream is, for the loop check of send() and its errors

  std::mutex mutex;
  std::condition_variable space; // blocked senders wait here: a free slot, or the stream closed
  std::deque<T> items;
  // Live stream_sender handles. Atomic so that copying one costs no lock (a copy is made from
  // a live handle, so the count cannot reach zero meanwhile); the decrement to zero takes
  // `mutex` to end the stream.
  std::atomic<std::size_t> senders{0};
  bool closed = false;        // a sender closed it, or the last one went: the end comes after
                              // the buffered items, for good
  bool consumer_gone = false; // the consumer closed it, was destroyed, or its context was
  const char* refusal = "";   // why sends are refused, once they are (finished())
  std::exception_ptr error;   // a sender's close(error), reported once after the items
  std::deque<stream_wait*> consumers_waiting;

  // Every function below expects `mutex` to be held.

  // No more items can arrive.
  bool finished() const noexcept { return closed || consumer_gone; }

  bool accepting() const noexcept { return !finished(); }

  system_error refused() const {
    return system_error(make_error_code(error::stream_closed),
                        fmt::format("async_stream {}: {}", site.display_name(),
                                    refusal));
  }

  void unqueue(stream_wait& w) {
    if (w.queued) {
      consumers_waiting.erase(
          std::find(consumers_waiting.begin(), consumers_waiting.end(), &w));
      w.queued = false;
    }
  }

  void wake_one_consumer() {
    if (!consumers_waiting.empty()) {
      stream_wait* w = consumers_waiting.front();
      consumers_waiting.pop_front();
      w->queued = false;
      w->wake();
    }
  }

  // After anything that may have ended the stream: every waiter learns it.
  void notify_if_finished() {
    if (finished()) {
      for (stream_wait* w : consumers_waiting) {
        w->queued = false;
        w->wake();
      }
      consumers_waiting.clear();
      space.notify_all();
    }
  }

  // The consumer will take nothing more: blocked and later sends are refused. Returns the
  // items dropped, for the caller to destroy outside the lock (their destructors are the
  // user's code), or keeps them when `keep_items` (close(): the consumer may still drain).
  std::deque<T> stop_consumer(const char* why, bool keep_items) {
    std::deque<T> dropped;
    if (!consumer_gone) {
      consumer_gone = true;
      if (refusal[0] == '\0')
        refusal = why;
    }
    if (!keep_items)
      dropped.swap(items);
    notify_if_finished();
    return dropped;
  }
};

// A receive's wait, shared by the pending receive (which owns it) and the cancellation handler
// (which only observes it).
template <typename T>
struct async_stream_wait : stream_wait {
  async_stream_wait(std::shared_ptr<async_stream_state<T>> s, const asio::any_io_executor& ex)
      : stream_wait(ex), state(std::move(s)) {}
  ~async_stream_wait() {
    std::lock_guard lock(state->mutex);
    state->unqueue(*this);
  }
  std::shared_ptr<async_stream_state<T>> state;
};

// Installed in the caller's cancellation slot. It takes nothing back, because nothing has been
// taken: an item leaves the buffer only when the receive completes on the caller's executor,
// and a receive that finds itself cancelled then leaves it there.
template <typename T>
struct async_stream_receive_cancel {
  std::weak_ptr<async_stream_wait<T>> wait;
  void operator()(asio::cancellation_type type) const {
    if (type == asio::cancellation_type::none)
      return;
    auto w = wait.lock();
    if (!w)
      return;
    std::lock_guard lock(w->state->mutex);
    w->cancel_requested = true;
    if (w->queued) {
      w->state->unqueue(*w);
      w->wake();
    }
  }
};

// The wake-up channel's completion handler: runs on the caller's executor, takes the item (or
// the end, or reports the cancellation) and completes the caller. It presents the caller's
// executor and allocator to the channel but not its cancellation slot, which
// async_stream_receive_cancel serves.
//
// Destroyed without having run, it was abandoned by the shutdown of its execution context: the
// consumer is gone, and senders must learn it rather than wait for it forever.
template <typename T, typename Handler>
class async_stream_receive_op {
public:
  using executor_type = asio::associated_executor_t<Handler, asio::system_executor>;
  using allocator_type = asio::associated_allocator_t<Handler>;

  async_stream_receive_op(Handler handler, std::shared_ptr<async_stream_wait<T>> wait)
      : handler_(std::move(handler)), wait_(std::move(wait)) {}
  async_stream_receive_op(async_stream_receive_op&& other) noexcept
      : handler_(std::move(other.handler_)), wait_(std::move(other.wait_)) {}
  async_stream_receive_op& operator=(async_stream_receive_op&&) = delete;
  ~async_stream_receive_op() {
    if (!wait_)
      return; // completed, or moved from
    std::deque<T> dropped;
    {
      std::lock_guard lock(wait_->state->mutex);
      dropped = wait_->state->stop_consumer(
          "the consumer's execution context was destroyed while it waited for an item", false);
    }
  }

  executor_type get_executor() const noexcept {
    return asio::get_associated_executor(handler_, asio::system_executor());
  }
  allocator_type get_allocator() const noexcept { return asio::get_associated_allocator(handler_); }

  void operator()(error_code ec, int) {
    async_stream_state<T>& s = *wait_->state;
    std::exception_ptr error;
    std::optional<T> item;
    {
      std::unique_lock lock(s.mutex);
      s.unqueue(*wait_);
      if (wait_->cancel_requested || ec) {
        error = std::make_exception_ptr(
            system_error(asio::error::operation_aborted, "async_stream::async_receive cancelled"));
        // A wake-up meant for this receive must not be lost with it.
        if (!s.items.empty() || s.finished())
          s.wake_one_consumer();
      } else if (!s.items.empty()) {
        item.emplace(std::move(s.items.front()));
        s.items.pop_front();
        s.space.notify_one();
      } else if (s.finished()) {
        error = std::exchange(s.error, nullptr); // once; the stream then reads as ended
      } else { // another receive took the item: wait again
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
  std::shared_ptr<async_stream_wait<T>> wait_;
};

template <typename T>
struct initiate_async_stream_receive {
  std::shared_ptr<async_stream_state<T>> state;

  template <typename Handler>
  void operator()(Handler handler) const {
    const auto handler_ex = asio::get_associated_executor(handler, asio::system_executor());
    if (!state) { // a moved-from stream reads as ended
      asio::post(handler_ex, [h = std::move(handler)]() mutable {
        std::move(h)(std::exception_ptr(), std::optional<T>());
      });
      return;
    }
    // A receive that nothing can cancel (no cancellation slot: a coroutine spawned detached,
    // a plain callback) takes an item already there at once and completes through a post, with
    // no wait to make: nothing can come between the take and the completion but the consumer's
    // own context shutting down, which is the consumer going away.
    auto slot = asio::get_associated_cancellation_slot(handler);
    if (!slot.is_connected()) {
      std::optional<T> item;
      std::exception_ptr error;
      bool ready = true;
      {
        std::lock_guard lock(state->mutex);
        if (!state->items.empty()) {
          item.emplace(std::move(state->items.front()));
          state->items.pop_front();
          state->space.notify_one();
        } else if (state->finished()) {
          error = std::exchange(state->error, nullptr); // once; the stream then reads as ended
        } else {
          ready = false;
        }
      }
      if (ready) {
        asio::post(handler_ex, [h = std::move(handler), error = std::move(error),
                                item = std::move(item)]() mutable {
          std::move(h)(std::move(error), std::move(item));
        });
        return;
      }
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
    auto wait = std::make_shared<async_stream_wait<T>>(state, wait_ex);
    {
      std::lock_guard lock(state->mutex);
      if (state->items.empty() && !state->finished()) {
        wait->queued = true;
        state->consumers_waiting.push_back(wait.get());
      } else {
        wait->wake(); // completes through the channel: never inside this call
      }
    }
    if (slot.is_connected())
      slot.template emplace<async_stream_receive_cancel<T>>(async_stream_receive_cancel<T>{wait});
    auto& signal = wait->signal;
    signal.async_receive(async_stream_receive_op<T, Handler>(std::move(handler), std::move(wait)));
  }
};

} // namespace smartasync::detail

#endif // SMARTASYNC_DETAIL_ASYNC_STREAM_STATE_HPP
