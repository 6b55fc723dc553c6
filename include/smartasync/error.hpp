// smartasync/error.hpp - the library's error codes.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_ERROR_HPP
#define SMARTASYNC_ERROR_HPP

#include "smartasync/config.hpp"

#include <string>
#include <system_error>

namespace smartasync {

/// Errors reported by smartasync, in the category smartasync::error_category().
/**
 * Operations that fail for one of these reasons complete with (or throw) a
 * std::system_error carrying the code, so a caller can test
 * `e.code() == smartasync::error::queue_full`.
 */
enum class error {
  /// The pool's queue was full and the pool's full_policy is reject.
  queue_full = 1,
  /// The pool was shut down before the operation was accepted.
  pool_stopped,
  /// A wrapped blocking call was made synchronously on a thread running an
  /// event loop while the wrapper's policy is strict.
  blocking_call_on_loop,
  /// block_on was called on a thread that runs the event loop it would wait on.
  deadlock,
  /// An operation did not complete before its deadline (with_timeout).
  timeout,
  /// A stream's producer stopped before the consumer asked for the next item.
  stream_closed,
};

/// The category of smartasync::error values; its name() is "smartasync".
inline const std::error_category& error_category() noexcept {
  class category final : public std::error_category {
  public:
    const char* name() const noexcept override { return "smartasync"; }
    std::string message(int value) const override {
      switch (static_cast<error>(value)) {
      case error::queue_full:
        return "the blocking pool's queue is full";
      case error::pool_stopped:
        return "the blocking pool has been shut down";
      case error::blocking_call_on_loop:
        return "a blocking call was made on a thread running an event loop";
      case error::deadlock:
        return "waiting here would deadlock: this thread runs the event loop it waits on";
      case error::timeout:
        return "the operation timed out";
      case error::stream_closed:
        return "the stream's producer has finished";
      }
      return "unknown smartasync error";
    }
  };
  static const category instance;
  return instance;
}

/// Makes error values usable wherever a std::error_code is expected.
inline std::error_code make_error_code(error e) noexcept {
  return {static_cast<int>(e), error_category()};
}

} // namespace smartasync

template <>
struct std::is_error_code_enum<smartasync::error> : std::true_type {};

#endif // SMARTASYNC_ERROR_HPP
