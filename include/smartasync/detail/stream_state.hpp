// smartasync/detail/stream_state.hpp - the buffer shared by a sync_stream and its producer.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_STREAM_STATE_HPP
#define SMARTASYNC_DETAIL_STREAM_STATE_HPP

#include "smartasync/config.hpp"

#include SMARTASYNC_ASIO_HEADER(any_io_executor.hpp)
#include SMARTASYNC_ASIO_HEADER(cancellation_signal.hpp)
#include SMARTASYNC_ASIO_HEADER(experimental/concurrent_channel.hpp)
#include SMARTASYNC_ASIO_HEADER(strand.hpp)

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>

namespace SMARTASYNC_NAMESPACE::detail {

template <typename T>
struct stream_state {
  stream_state(asio::any_io_executor ex, std::size_t capacity)
      : strand(asio::make_strand(ex)), capacity(capacity), space(std::in_place, *strand, 1) {}

  // The producer runs on this strand; cancellation is emitted on it too (Asio's rule).
  // Both the strand and the channel belong to the producer's execution context: when that
  // context is destroyed before the producer finished, they are released (under `mutex`)
  // while its services still exist, so that the stream may outlive it.
  std::optional<asio::strand<asio::any_io_executor>> strand;
  std::size_t capacity;

  std::mutex mutex;
  std::condition_variable changed; // consumer waits: item, or producer finished
  std::deque<T> items;
  bool producer_done = false;
  bool producer_waiting = false; // suspended in emit() on a full buffer
  bool cancelled = false;
  std::exception_ptr error;

  // Wakes a producer suspended on a full buffer (thread-safe, so the consumer thread can send).
  // Capacity 1 and sent only when producer_waiting was set, so try_send never fails.
  // void(error_code, int): Asio 1.22's channel_traits is ambiguous for void(error_code).
  std::optional<asio::experimental::concurrent_channel<void(error_code, int)>> space;
  asio::cancellation_signal cancel_producer; // touched only on `strand`
};

} // namespace smartasync::detail

#endif // SMARTASYNC_DETAIL_STREAM_STATE_HPP
