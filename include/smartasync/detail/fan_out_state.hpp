// smartasync/detail/fan_out_state.hpp - shared state of one fan_out call.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_FAN_OUT_STATE_HPP
#define SMARTASYNC_DETAIL_FAN_OUT_STATE_HPP

#include "smartasync/config.hpp"

#include SMARTASYNC_ASIO_HEADER(any_io_executor.hpp)
#include SMARTASYNC_ASIO_HEADER(awaitable.hpp)
#include SMARTASYNC_ASIO_HEADER(cancellation_signal.hpp)
#include SMARTASYNC_ASIO_HEADER(experimental/concurrent_channel.hpp)
#include SMARTASYNC_ASIO_HEADER(strand.hpp)

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <variant>
#include <vector>

namespace SMARTASYNC_NAMESPACE::detail {

/// Everything the workers of one fan_out share. Touched only on `strand` (the workers run
/// there and cancellation is dispatched there), except `finished`, which is thread-safe and
/// hands the finished state back to the awaiting coroutine.
template <typename Iterator, typename Function, typename Result>
struct fan_out_state {
  using stored_type = std::conditional_t<std::is_void_v<Result>, std::monostate, Result>;

  fan_out_state(asio::any_io_executor ex, Iterator first, Iterator last, std::size_t inputs,
                std::size_t workers, Function f, bool stop_on_failure,
                std::function<void(std::size_t, std::size_t)> progress)
      : strand(asio::make_strand(ex)), next(std::move(first)), end(std::move(last)), total(inputs),
        function(std::move(f)), fail_fast(stop_on_failure), on_progress(std::move(progress)),
        values(inputs), errors(inputs), live_workers(workers), finished(ex, 1) {
    signals.reserve(workers);
    for (std::size_t i = 0; i < workers; ++i)
      signals.push_back(std::make_unique<asio::cancellation_signal>());
  }

  /// Stops handing out inputs and cancels every worker except `except` (the one reporting).
  void stop(asio::cancellation_type type, std::size_t except = static_cast<std::size_t>(-1)) {
    stopping = true;
    for (std::size_t i = 0; i < signals.size(); ++i)
      if (i != except)
        signals[i]->emit(type);
  }

  asio::strand<asio::any_io_executor> strand;
  Iterator next;
  Iterator end;
  std::size_t next_index = 0;
  std::size_t total;
  std::size_t done = 0;
  Function function;
  bool fail_fast;
  bool stopping = false;
  bool cancelled_by_caller = false;
  std::function<void(std::size_t, std::size_t)> on_progress;
  std::vector<std::optional<stored_type>> values;
  std::vector<std::exception_ptr> errors;
  std::exception_ptr first_error;
  std::exception_ptr callback_error; // thrown by on_progress
  // unique_ptr: a cancellation_signal can be neither copied nor moved.
  std::vector<std::unique_ptr<asio::cancellation_signal>> signals;
  std::size_t live_workers;
  asio::experimental::concurrent_channel<void(error_code, int)> finished;
};

} // namespace smartasync::detail

#endif // SMARTASYNC_DETAIL_FAN_OUT_STATE_HPP
