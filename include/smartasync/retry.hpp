// smartasync/retry.hpp - retry an async operation with exponential backoff and full jitter.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_RETRY_HPP
#define SMARTASYNC_RETRY_HPP

#include "smartasync/config.hpp"

#include "smartasync/error.hpp"

#include SMARTASYNC_ASIO_HEADER(awaitable.hpp)
#include SMARTASYNC_ASIO_HEADER(error.hpp)
#include SMARTASYNC_ASIO_HEADER(steady_timer.hpp)
#include SMARTASYNC_ASIO_HEADER(this_coro.hpp)
#include SMARTASYNC_ASIO_HEADER(use_awaitable.hpp)

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <random>
#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <utility>

namespace SMARTASYNC_NAMESPACE {

/// A failure that another attempt may cure: retry()'s default classifier retries it.
/**
 * Throw it, or derive an exception of your own from it, to mark a failure as transient (a
 * server that asked to be called again, a lock held by someone else). Failures of other types
 * are classified by is_transient().
 */
class transient_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

namespace detail {

// The generic (POSIX) conditions in which the same request can succeed a little later.
inline bool is_transient_errno(int value) noexcept {
  switch (static_cast<std::errc>(value)) {
  case std::errc::resource_unavailable_try_again: // EAGAIN, EWOULDBLOCK
  case std::errc::interrupted:
  case std::errc::timed_out:
  case std::errc::device_or_resource_busy:
  case std::errc::no_buffer_space:
  case std::errc::connection_refused:
  case std::errc::connection_reset:
  case std::errc::connection_aborted:
  case std::errc::broken_pipe:
  case std::errc::network_down:
  case std::errc::network_reset:
  case std::errc::network_unreachable:
  case std::errc::host_unreachable:
    return true;
  default:
    return false;
  }
}

template <typename Code, typename Category>
bool is_transient_code(const Code& code, const Category& generic) noexcept {
  if (!code)
    return false;
  const auto condition = code.default_error_condition();
  return condition.category() == generic && is_transient_errno(condition.value());
}

// Asio's socket errors: standalone Asio puts them in a category of its own ("asio.system")
// whose conditions are not the generic ones, so they are compared by name.
inline bool is_transient_asio_code(const error_code& code) noexcept {
  namespace e = asio::error;
  return code == e::try_again || code == e::would_block || code == e::interrupted ||
         code == e::timed_out || code == e::no_buffer_space || code == e::connection_refused ||
         code == e::connection_reset || code == e::connection_aborted || code == e::broken_pipe ||
         code == e::network_down || code == e::network_reset || code == e::network_unreachable ||
         code == e::host_unreachable;
}

} // namespace detail

/// retry()'s default classifier: whether a failure is worth another attempt.
/**
 * Transient, and so retried by default:
 * - an exception derived from smartasync::transient_error;
 * - a smartasync::system_error (or std::system_error) carrying
 *   - error::queue_full (the pool refused the call), error::deadline_expired (the call never
 *     started) or error::timeout (it ran out of time);
 *   - a code equivalent to one of these std::errc conditions, or the asio::error of the same
 *     name, in which the same request can succeed a little later:
 *     resource_unavailable_try_again (asio's try_again, would_block), interrupted, timed_out,
 *     device_or_resource_busy, no_buffer_space, connection_refused, connection_reset,
 *     connection_aborted, broken_pipe, network_down, network_reset, network_unreachable,
 *     host_unreachable.
 *
 * Everything else is not: logic errors (std::logic_error, std::invalid_argument, ...),
 * std::bad_alloc, other error codes, and exceptions whose meaning the library cannot know
 * (a plain std::runtime_error). Retrying those repeats the failure, or worse, its side effects.
 * Cancellation (operation_aborted) is never transient.
 *
 * To retry more, give retry_policy::retryable a predicate, which can build on this one:
 * @code
 * policy.retryable = [](std::exception_ptr e) { return smartasync::is_transient(e) || is_busy(e); };
 * @endcode
 */
inline bool is_transient(std::exception_ptr e) noexcept {
  if (!e)
    return false;
  try {
    std::rethrow_exception(e);
  } catch (const transient_error&) {
    return true;
  } catch (const system_error& failure) {
    const error_code& code = failure.code();
    if (code.category() == error_category())
      return code == error::queue_full || code == error::deadline_expired ||
             code == error::timeout;
    if (detail::is_transient_asio_code(code))
      return true;
#if defined(SMARTASYNC_USE_BOOST_ASIO)
    return detail::is_transient_code(code, boost::system::generic_category());
  } catch (const std::system_error& failure) {
#endif
    return detail::is_transient_code(failure.code(), std::generic_category());
  } catch (...) {
  }
  return false;
}

/// How retry() spaces and limits its attempts.
/**
 * The delay before retry number n (n = 1 after the first failure) is drawn uniformly from
 * [0, min(max_delay, base_delay * factor^(n-1))] ("full jitter"): clients that failed
 * together spread out instead of retrying in lock-step.
 */
struct retry_policy {
  /// The type of every delay below.
  using duration = std::chrono::steady_clock::duration;

  /// Attempts in total, the first included; at least 1.
  std::size_t max_attempts = 3;
  /// The ceiling of the first delay.
  duration base_delay = std::chrono::milliseconds(100);
  /// No computed delay exceeds this.
  duration max_delay = std::chrono::seconds(10);
  /// Growth of the ceiling per attempt; at least 1.
  double factor = 2.0;
  /// Whether a failure may be retried. Empty: what is_transient() calls transient.
  /// Cancellation (operation_aborted) is never retried, whatever this says.
  std::function<bool(std::exception_ptr)> retryable{};
  /// A delay the failure itself asks for (an HTTP Retry-After, say). When it returns a value,
  /// that value, capped by max_server_delay, replaces the computed delay for this retry.
  std::function<std::optional<duration>(std::exception_ptr)> server_delay{};
  /// The ceiling of a delay asked for by server_delay; empty: max_delay. A server (or whatever
  /// sits in front of it) cannot make a client sleep longer than this; to give up instead of
  /// waiting that long, say so in `retryable`.
  std::optional<duration> max_server_delay{};
  /// Called before each wait as (attempt that failed, delay, its exception): progress events.
  std::function<void(std::size_t attempt, duration delay, std::exception_ptr error)> on_retry{};
};

namespace detail {

inline bool is_cancellation(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const system_error& error) {
    return error.code() == asio::error::operation_aborted;
  } catch (...) {
  }
  return false;
}

/// The full-jitter delay before retry `retry_number` (1-based).
template <typename Engine>
retry_policy::duration backoff_delay(const retry_policy& policy, std::size_t retry_number,
                                     Engine& engine) {
  // Computed in double and clamped before converting back, so a large exponent saturates at
  // max_delay instead of overflowing the integer tick count.
  const double base = static_cast<double>(policy.base_delay.count());
  const double cap = static_cast<double>(policy.max_delay.count());
  const double ceiling =
      std::min(cap, base * std::pow(policy.factor, static_cast<double>(retry_number - 1)));
  using rep = retry_policy::duration::rep;
  std::uniform_int_distribution<rep> pick(0, static_cast<rep>(std::max(0.0, ceiling)));
  return retry_policy::duration(pick(engine));
}

/// A seed for a retry's own engine: drawn from a per-thread engine (no lock), which is itself
/// seeded once from the OS.
inline std::uint_fast32_t retry_seed() {
  thread_local std::minstd_rand seeds{std::random_device{}()};
  return seeds(); // minstd_rand's result_type is std::uint_fast32_t
}

template <typename F>
using retry_awaitable_t = std::invoke_result_t<F&>;

} // namespace detail

/// Calls `attempt()` and awaits it, retrying failures as `policy` says.
/**
 * @param policy Limits, delays, what to retry and the hooks; see retry_policy.
 * @param attempt Called once per attempt, returning a fresh `asio::awaitable<T>` each time (an
 *        awaitable runs only once, so the callable builds a new one).
 * @param engine A uniform random bit generator for the jitter, used by reference; it must
 *        outlive the returned awaitable. Pass a seeded engine to make delays reproducible.
 * @returns `asio::awaitable<T>`: the first successful result; when every attempt failed, or a
 *          failure was not retryable, that failure's exception, rethrown unchanged.
 *
 * @par What is retried
 * By default only what is_transient() calls transient (smartasync::transient_error, the pool's
 * queue_full, deadline_expired and timeout, and transient std::errc conditions such as
 * connection_refused); a logic error or an unknown exception fails at once. Pass
 * retry_policy::retryable to decide otherwise.
 *
 * @par Blocking
 * Never blocks: delays are steady_timer waits on the awaiting coroutine's executor. The
 * hooks (retryable, server_delay, on_retry) run on that executor and should be quick.
 *
 * @par Cancellation
 * Cancelling the awaiting coroutine aborts the current attempt or the current delay, and
 * operation_aborted is rethrown at once, never retried.
 *
 * @par Thread safety
 * The policy is copied into the operation. `engine` must not be used concurrently elsewhere.
 *
 * @par Example
 * @code
 * smartasync::retry_policy policy{.max_attempts = 5, .base_delay = 200ms, .max_delay = 5s};
 * policy.retryable = [](std::exception_ptr e) { return smartasync::is_transient(e) || is_busy(e); };
 * auto body = co_await smartasync::retry(policy, [&] { return client.get(url); });
 * @endcode
 */
template <typename F, typename Engine>
  requires std::uniform_random_bit_generator<std::remove_cvref_t<Engine>>
detail::retry_awaitable_t<F> retry(retry_policy policy, F attempt, Engine& engine) {
  if (policy.max_attempts == 0)
    throw std::invalid_argument("retry: max_attempts must be at least 1");
  if (!(policy.factor >= 1.0))
    throw std::invalid_argument("retry: factor must be at least 1");
  for (std::size_t attempt_number = 1;; ++attempt_number) {
    std::exception_ptr failure;
    try {
      co_return co_await attempt();
    } catch (...) {
      failure = std::current_exception();
    }
    const bool may_retry = !detail::is_cancellation(failure) &&
                           (policy.retryable ? policy.retryable(failure) : is_transient(failure));
    if (!may_retry || attempt_number >= policy.max_attempts)
      std::rethrow_exception(failure);

    std::optional<retry_policy::duration> delay;
    if (policy.server_delay) {
      delay = policy.server_delay(failure);
      if (delay)
        delay = std::max(retry_policy::duration::zero(),
                         std::min(*delay, policy.max_server_delay.value_or(policy.max_delay)));
    }
    if (!delay)
      delay = detail::backoff_delay(policy, attempt_number, engine);
    if (policy.on_retry)
      policy.on_retry(attempt_number, *delay, failure);

    asio::steady_timer timer(co_await asio::this_coro::executor, *delay);
    co_await timer.async_wait(asio::use_awaitable);
  }
}

/// As above, with an engine of its own, randomly seeded.
/**
 * The engine lives in the operation rather than in a thread_local, because the coroutine may
 * resume on another thread of a multi-threaded executor.
 */
template <typename F>
detail::retry_awaitable_t<F> retry(retry_policy policy, F attempt) {
  std::minstd_rand engine{detail::retry_seed()};
  co_return co_await smartasync::retry(std::move(policy), std::move(attempt), engine);
}

} // namespace smartasync

#endif // SMARTASYNC_RETRY_HPP
