// smartasync/fan_out.hpp - run one async operation per input, at most K at a time.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_FAN_OUT_HPP
#define SMARTASYNC_FAN_OUT_HPP

#include "smartasync/config.hpp"

#include "smartasync/detail/fan_out_state.hpp"
#include "smartasync/detail/smart_async_fwd.hpp"

#include SMARTASYNC_ASIO_HEADER(awaitable.hpp)
#include SMARTASYNC_ASIO_HEADER(bind_cancellation_slot.hpp)
#include SMARTASYNC_ASIO_HEADER(cancellation_state.hpp)
#include SMARTASYNC_ASIO_HEADER(co_spawn.hpp)
#include SMARTASYNC_ASIO_HEADER(dispatch.hpp)
#include SMARTASYNC_ASIO_HEADER(error.hpp)
#include SMARTASYNC_ASIO_HEADER(this_coro.hpp)
#include SMARTASYNC_ASIO_HEADER(use_awaitable.hpp)

#include <algorithm>
#include <cstddef>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <ranges>
#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace SMARTASYNC_NAMESPACE {

/// Policy tag: on the first failure, cancel the rest and rethrow that failure.
struct fail_fast_t {
  explicit fail_fast_t() = default;
};
/// The fail_fast_t policy, to pass to fan_out.
inline constexpr fail_fast_t fail_fast{};

/// Policy tag: run every input; report each one's value or exception.
struct collect_all_t {
  explicit collect_all_t() = default;
};
/// The collect_all_t policy, to pass to fan_out.
inline constexpr collect_all_t collect_all{};

/// Progress callback: (inputs finished so far, total inputs).
using progress_callback = std::function<void(std::size_t done, std::size_t total)>;

/// The value or the exception of one operation (fan_out with collect_all).
template <typename T>
class outcome {
public:
  /// A success holding `value`.
  explicit outcome(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  /// A failure holding the operation's exception.
  explicit outcome(std::exception_ptr error) : state_(std::in_place_index<1>, std::move(error)) {}

  /// True when the operation succeeded.
  bool has_value() const noexcept { return state_.index() == 0; }
  /// has_value().
  explicit operator bool() const noexcept { return has_value(); }

  /// The value; rethrows the operation's exception if it failed.
  T& value() & {
    rethrow_if_error();
    return std::get<0>(state_);
  }
  /// The value; rethrows the operation's exception if it failed.
  const T& value() const& {
    rethrow_if_error();
    return std::get<0>(state_);
  }
  /// The value, moved out; rethrows the operation's exception if it failed.
  T&& value() && {
    rethrow_if_error();
    return std::get<0>(std::move(state_));
  }

  /// The exception, or nullptr on success.
  std::exception_ptr error() const noexcept {
    return state_.index() == 1 ? std::get<1>(state_) : nullptr;
  }

private:
  void rethrow_if_error() const {
    if (state_.index() == 1)
      std::rethrow_exception(std::get<1>(state_));
  }
  std::variant<T, std::exception_ptr> state_;
};

/// outcome for operations that produce no value.
template <>
class outcome<void> {
public:
  /// A success.
  outcome() = default;
  /// A failure holding the operation's exception.
  explicit outcome(std::exception_ptr error) : error_(std::move(error)) {}
  /// True when the operation succeeded.
  bool has_value() const noexcept { return !error_; }
  /// has_value().
  explicit operator bool() const noexcept { return has_value(); }
  /// Rethrows the operation's exception if it failed.
  void value() const {
    if (error_)
      std::rethrow_exception(error_);
  }
  /// The exception, or nullptr on success.
  std::exception_ptr error() const noexcept { return error_; }

private:
  std::exception_ptr error_;
};

namespace detail {

template <typename T>
struct is_smart_function : std::false_type {};
template <typename F, typename Executor>
struct is_smart_function<smart_async_function<F, Executor>> : std::true_type {};

template <typename T>
inline constexpr bool always_false_v = false;

template <typename Result>
struct awaitable_value {
  static_assert(always_false_v<Result>,
                "smartasync::fan_out: the function must return asio::awaitable<R> for one input "
                "(a coroutine, or `[&](auto& x) { return wrapper.async_call(x); }`). A smart_async "
                "wrapper may be passed as it is; a plain blocking function may not.");
  using type = void;
};
template <typename T, typename Executor>
struct awaitable_value<asio::awaitable<T, Executor>> {
  using type = T;
};

template <typename Range, typename F>
using fan_out_result_t = typename awaitable_value<
    std::invoke_result_t<F&, std::ranges::range_reference_t<Range>>>::type;

template <typename Range, typename F>
using fan_out_state_for =
    fan_out_state<std::ranges::iterator_t<Range>, F, fan_out_result_t<Range, F>>;

template <typename State>
asio::awaitable<void> fan_out_worker(std::shared_ptr<State> s, std::size_t id) {
  // The worker's own bookkeeping never throws for cancellation: it decides for itself when to
  // stop (s->stopping).
  co_await asio::this_coro::throw_if_cancelled(false);
  while (!s->stopping && s->next != s->end) {
    const std::size_t index = s->next_index++;
    auto it = s->next;
    ++s->next;
    try {
      // The function itself runs with Asio's default: once cancelled, its next co_await of an
      // operation throws. A cancellation that arrives between two of its operations (the one
      // it was emitted at had already completed) would otherwise be lost, and a function that
      // loops, such as a worker taking pages until the end, would run on to its end.
      co_await asio::this_coro::throw_if_cancelled(true);
      if constexpr (std::is_same_v<typename State::stored_type, std::monostate>) {
        co_await std::invoke(s->function, *it);
        s->values[index].emplace();
      } else {
        s->values[index].emplace(co_await std::invoke(s->function, *it));
      }
    } catch (...) {
      s->errors[index] = std::current_exception();
      if (s->fail_fast && !s->first_error) {
        s->first_error = s->errors[index];
        s->stop(asio::cancellation_type::terminal, id);
      }
    }
    ++s->done;
    if (s->on_progress) {
      try {
        s->on_progress(s->done, s->total);
      } catch (...) {
        // The caller's own callback failed: stop everything and give the caller its exception
        // (left to escape, it would end this worker alone and be lost).
        if (!s->callback_error) {
          s->callback_error = std::current_exception();
          s->stop(asio::cancellation_type::terminal, id);
        }
      }
    }
  }
}

/// Runs the workers and returns the state once every one of them has finished.
template <typename Range, typename F>
asio::awaitable<std::shared_ptr<fan_out_state_for<Range, F>>>
fan_out_run(Range& inputs, std::size_t max_in_flight, F f, bool fail_fast,
            progress_callback on_progress) {
  using state_type = fan_out_state_for<Range, F>;
  // We must not leave while workers run (they use `inputs` and the caller's objects), so a
  // cancellation of this coroutine is forwarded to the workers and then waited out rather than
  // thrown at the next co_await. The flag belongs to the caller's whole coroutine stack, so the
  // caller's setting is restored before we return.
  const bool caller_throws_if_cancelled = co_await asio::this_coro::throw_if_cancelled();
  co_await asio::this_coro::throw_if_cancelled(false);
  std::shared_ptr<state_type> s;
  std::exception_ptr failure;
  try {
    auto ex = co_await asio::this_coro::executor;
    const auto total = static_cast<std::size_t>(std::ranges::distance(inputs));
    const std::size_t workers = std::min(max_in_flight, total);
    s = std::make_shared<state_type>(ex, std::ranges::begin(inputs), std::ranges::end(inputs),
                                     total, workers, std::move(f), fail_fast,
                                     std::move(on_progress));
    if (workers != 0) {
      asio::cancellation_state cancel_state = co_await asio::this_coro::cancellation_state;
      if (cancel_state.slot().is_connected()) {
        cancel_state.slot().assign([s](asio::cancellation_type type) {
          // The emitter runs on the caller's side; worker state lives on the strand.
          asio::dispatch(s->strand, [s, type] {
            s->cancelled_by_caller = true;
            s->stop(type);
          });
        });
      }

      // Spawn from the strand, so that attaching each worker to its signal cannot race with a
      // fail-fast stop() emitting on the signals.
      asio::dispatch(s->strand, [s] {
        for (std::size_t i = 0; i < s->signals.size(); ++i) {
          asio::co_spawn(s->strand, detail::fan_out_worker(s, i),
                         asio::bind_cancellation_slot(s->signals[i]->slot(),
                                                      [s](std::exception_ptr) {
                                                        if (--s->live_workers == 0)
                                                          s->finished.try_send(error_code{}, 0);
                                                      }));
        }
      });

      // An unconnected slot: this wait itself is never cancelled (see above).
      co_await s->finished.async_receive(
          asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable));
    }
  } catch (...) {
    failure = std::current_exception();
  }
  co_await asio::this_coro::throw_if_cancelled(caller_throws_if_cancelled);
  if (failure)
    std::rethrow_exception(failure);
  co_return s;
}

template <typename Held, typename F>
auto fan_out_fail_fast(Held inputs, std::size_t max_in_flight, F f, progress_callback on_progress)
    -> asio::awaitable<std::conditional_t<std::is_void_v<fan_out_result_t<Held, F>>, void,
                                          std::vector<fan_out_result_t<Held, F>>>> {
  auto s = co_await detail::fan_out_run(inputs, max_in_flight, std::move(f), true,
                                        std::move(on_progress));
  if (s->callback_error)
    std::rethrow_exception(s->callback_error);
  if (s->first_error)
    std::rethrow_exception(s->first_error);
  if (s->done != s->total) // the caller cancelled us before every input ran
    throw system_error(asio::error::operation_aborted, "fan_out cancelled");
  if constexpr (!std::is_void_v<fan_out_result_t<Held, F>>) {
    std::vector<fan_out_result_t<Held, F>> results;
    results.reserve(s->total);
    for (auto& v : s->values)
      results.push_back(std::move(*v));
    co_return results;
  }
}

template <typename Held, typename F>
auto fan_out_collect_all(Held inputs, std::size_t max_in_flight, F f,
                         progress_callback on_progress)
    -> asio::awaitable<std::vector<outcome<fan_out_result_t<Held, F>>>> {
  using result_type = fan_out_result_t<Held, F>;
  auto s = co_await detail::fan_out_run(inputs, max_in_flight, std::move(f), false,
                                        std::move(on_progress));
  if (s->callback_error)
    std::rethrow_exception(s->callback_error);
  std::vector<outcome<result_type>> results;
  results.reserve(s->total);
  for (std::size_t i = 0; i < s->total; ++i) {
    if (s->errors[i]) {
      results.emplace_back(s->errors[i]);
    } else if (s->values[i]) {
      if constexpr (std::is_void_v<result_type>)
        results.emplace_back();
      else
        results.emplace_back(std::move(*s->values[i]));
    } else {
      // Never started: the caller cancelled us first.
      results.emplace_back(std::make_exception_ptr(
          system_error(asio::error::operation_aborted, "fan_out cancelled before start")));
    }
  }
  co_return results;
}

// A smart_async wrapper passed to fan_out is awaited through its async form: called as it is,
// it would run each input inline, blocking the loop.
template <typename F>
auto as_fan_out_function(F f) {
  if constexpr (is_smart_function<F>::value)
    return [w = std::move(f)](auto&& input) { return w.async_call(std::forward<decltype(input)>(input)); };
  else
    return f;
}

inline void check_max_in_flight(std::size_t max_in_flight) {
  if (max_in_flight == 0)
    throw std::invalid_argument("fan_out: max_in_flight must be at least 1");
}

} // namespace detail

/// Runs `f(input)` for every input with at most `max_in_flight` operations at once and returns
/// the results in input order; the first failure cancels the rest and is rethrown.
/**
 * @param inputs A forward range. An lvalue range must outlive the returned awaitable (it does
 *        when the call is co_awaited in one expression); an rvalue range is moved into it.
 * @param max_in_flight The most operations in flight at any moment; at least 1 (otherwise
 *        std::invalid_argument is thrown at once).
 * @param f Called as `f(*it)` and returns `asio::awaitable<R>`. Called only when a slot is
 *        free, so at most `max_in_flight` of its awaitables exist at once. A smart_async
 *        wrapper may be passed as it is: it is called through its async form.
 * @param on_progress Optional; called as (done, total) after each input finishes, whether it
 *        succeeded or not. If it throws, no further input is started, the in-flight
 *        operations get terminal cancellation, and once they have finished its exception is
 *        rethrown (by both overloads: it is the caller's own failure, not an input's).
 * @returns `asio::awaitable<std::vector<R>>` (`asio::awaitable<void>` when R is void).
 *
 * @par Blocking
 * Never blocks. `max_in_flight` worker coroutines run on a strand of the awaiting coroutine's
 * executor, each taking the next input when its previous one finishes. `f`, the operations'
 * continuations and `on_progress` therefore never run concurrently with each other, even on
 * a multi-threaded executor; offload blocking work inside `f`.
 *
 * @par Cancellation
 * On the first exception, no further input is started, the other in-flight operations get
 * terminal cancellation, and once they have all finished the first exception is rethrown.
 * Cancelling the awaiting coroutine forwards the cancellation (same type) to every in-flight
 * operation, waits for them, and throws operation_aborted. Nothing outlives the call. `f`'s
 * coroutine runs with Asio's default `throw_if_cancelled(true)`: a cancellation that arrives
 * between two of its operations is thrown at the next one it awaits.
 *
 * @par Thread safety
 * `f` and `on_progress` need no synchronisation of their own (see Blocking).
 *
 * @par Example
 * @code
 * std::vector<std::string> pages = co_await smartasync::fan_out(
 *     urls, 8, [&](const std::string& url) { return fetch(url); });
 * @endcode
 */
template <std::ranges::forward_range Range, typename F>
auto fan_out(Range&& inputs, std::size_t max_in_flight, F f, fail_fast_t = fail_fast,
             progress_callback on_progress = {}) {
  detail::check_max_in_flight(max_in_flight);
  return detail::fan_out_fail_fast<Range>(std::forward<Range>(inputs), max_in_flight,
                                          detail::as_fan_out_function(std::move(f)),
                                          std::move(on_progress));
}

/// Runs `f(input)` for every input with at most `max_in_flight` at once, and reports each
/// input's value or exception in input order.
/**
 * The same as the fail_fast overload except that a failure neither cancels nor stops anything.
 *
 * @returns `asio::awaitable<std::vector<outcome<R>>>`. If the awaiting coroutine is
 *          cancelled, the in-flight operations complete (usually with operation_aborted) and
 *          inputs never started report operation_aborted; no exception is thrown.
 *
 * @par Example
 * @code
 * auto results = co_await smartasync::fan_out(ids, 4, load_user, smartasync::collect_all,
 *     [](std::size_t done, std::size_t total) { fmt::print("{}/{}\n", done, total); });
 * for (auto& r : results) if (!r) log(r.error());
 * @endcode
 */
template <std::ranges::forward_range Range, typename F>
auto fan_out(Range&& inputs, std::size_t max_in_flight, F f, collect_all_t,
             progress_callback on_progress = {}) {
  detail::check_max_in_flight(max_in_flight);
  return detail::fan_out_collect_all<Range>(std::forward<Range>(inputs), max_in_flight,
                                            detail::as_fan_out_function(std::move(f)),
                                            std::move(on_progress));
}

} // namespace smartasync

#endif // SMARTASYNC_FAN_OUT_HPP
