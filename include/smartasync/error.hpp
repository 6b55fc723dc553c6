// smartasync/error.hpp - the library's error codes.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_ERROR_HPP
#define SMARTASYNC_ERROR_HPP

#include "smartasync/config.hpp"

#include <string>
#include <system_error>

namespace SMARTASYNC_NAMESPACE {

/// Errors reported by smartasync, in the category smartasync::error_category().
/**
 * Operations that fail for one of these reasons complete with (or throw) a
 * smartasync::system_error carrying the code, so a caller can test
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
  /// A stream no longer accepts items: an async_stream's send() or try_send() after a sender
  /// closed it, the last sender went, or its consumer closed it or is gone. The item was not
  /// sent.
  stream_closed,
  /// The operation's deadline (with_deadline, with_timeout) passed while it was still queued:
  /// the call never started.
  deadline_expired,
};

namespace detail {
// The flavour's category type, so that a smartasync::error_code made from an error value names
// its category "smartasync" (a Boost error_code wrapping a std category would say "std:unknown").
#if defined(SMARTASYNC_USE_BOOST_ASIO)
using error_category_base = boost::system::error_category;
#else
using error_category_base = std::error_category;
#endif
} // namespace detail

/// The category of smartasync::error values; its name() is "smartasync".
/**
 * A std::error_category with standalone Asio, a boost::system::error_category with Boost.Asio.
 */
inline const detail::error_category_base& error_category() noexcept {
#if defined(SMARTASYNC_USE_BOOST_ASIO)
  // boost::system::error_category's destructor is protected and not virtual, as it must be for
  // categories that live until after main; -Wnon-virtual-dtor still flags every class derived
  // from it (Boost silences it around its own categories the same way).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
#endif
  class category final : public detail::error_category_base {
  public:
#if defined(SMARTASYNC_USE_BOOST_ASIO)
    // Boost compares categories by this id when it is set, so the category stays one category
    // even if several shared objects each hold a copy of it.
    constexpr category() noexcept : detail::error_category_base(0x5a7a5c0de1e7e001ULL) {}
#endif
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
        return "the stream is closed";
      case error::deadline_expired:
        return "the deadline passed while the call was still queued; it never started";
      }
      return "unknown smartasync error";
    }
  };
#if defined(SMARTASYNC_USE_BOOST_ASIO)
#pragma GCC diagnostic pop
#endif
  static const category instance;
  return instance;
}

/// Makes error values usable wherever a smartasync::error_code is expected.
inline error_code make_error_code(error e) noexcept {
  return {static_cast<int>(e), error_category()};
}

} // namespace smartasync

// One trait per flavour: with both, Boost's error_code would see two equally good operator==.
#if defined(SMARTASYNC_USE_BOOST_ASIO)
template <>
struct boost::system::is_error_code_enum<smartasync::error> : std::true_type {};
#else
template <>
struct std::is_error_code_enum<smartasync::error> : std::true_type {};
#endif

#endif // SMARTASYNC_ERROR_HPP
