// smartasync/smart_async.hpp - one wrapped blocking callable, usable from both worlds.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_SMART_ASYNC_HPP
#define SMARTASYNC_SMART_ASYNC_HPP

#include "smartasync/config.hpp"
#include "smartasync/blocking_context.hpp"
#include "smartasync/blocking_pool.hpp"
#include "smartasync/detail/call_signature.hpp"
#include "smartasync/detail/call_target.hpp"
#include "smartasync/detail/call_site.hpp"
#include "smartasync/detail/loop_guard.hpp"
#include "smartasync/detail/smart_async_fwd.hpp"
#include "smartasync/error.hpp"
#include "smartasync/offload.hpp"
#include "smartasync/this_thread.hpp"

#include SMARTASYNC_ASIO_HEADER(associated_allocator.hpp)
#include SMARTASYNC_ASIO_HEADER(associated_executor.hpp)
#include SMARTASYNC_ASIO_HEADER(async_result.hpp)
#include SMARTASYNC_ASIO_HEADER(bind_allocator.hpp)
#include SMARTASYNC_ASIO_HEADER(post.hpp)
#include SMARTASYNC_ASIO_HEADER(system_executor.hpp)
#include SMARTASYNC_ASIO_HEADER(use_awaitable.hpp)

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include "smartasync/source_location.hpp"
#include <stop_token>
#include <string>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>

namespace SMARTASYNC_NAMESPACE {

/// What a terminal cancellation does to an async call that is already running.
enum class running_cancel {
  /// Request stop through the call's std::stop_token and complete with operation_aborted
  /// once the call has returned: nothing the call references is released while it runs.
  wait_for_return,
  /// Complete with operation_aborted at once and leave the call running unobserved. Only for
  /// callables that own everything they touch (see abandon_on_cancel() for the hazard).
  abandon,
  /// The former name of `abandon`, kept until 2.0.
  abandon_call [[deprecated("use running_cancel::abandon")]] = abandon,
};

/// Options of smart_async().
struct smart_options {
  /// A name for reports ("catalog search"); the default is the creation site. Reports may
  /// come after the wrapper is gone (a call it started is still running), so each distinct
  /// name is kept, with its creation site, for the life of the process: name what the wrapper
  /// does, not each request.
  std::string name{};
  /// What the sync form does on an event-loop thread.
  loop_call_policy on_loop = loop_call_policy::report;
  /// What cancelling a running async call does.
  running_cancel on_cancel = running_cancel::wait_for_return;
};

namespace detail {

template <>
struct call_target<blocking_pool> {
  blocking_pool* pool; // nullptr: default_pool(), resolved on each async use
  // The pool's, when one was given: the wrapper may outlive the pool, and then its async form
  // completes with error::pool_stopped instead of reaching for freed memory.
  std::shared_ptr<pool_lifeline> lifeline;

  explicit call_target(blocking_pool* p)
      : pool(p), lifeline(p ? pool_access::lifeline(*p) : nullptr) {}

  blocking_pool& executor_pool() const { return pool ? *pool : default_pool(); }
  initiate_smart_call initiation() const { return {lifeline}; }
};

template <typename F>
inline constexpr bool is_std_function_v = false;
template <typename Signature>
inline constexpr bool is_std_function_v<std::function<Signature>> = true;

template <typename F, typename Executor>
struct smart_state {
  F fn;
  call_target<Executor> target; // where calls run: a pool, or a lane
  const call_site* site;        // interned: operations name it in reports, also after the wrapper
  bool abandon_on_cancel;
};

template <typename F, typename... Args>
inline constexpr bool plain_callable_v = std::is_invocable_v<const F&, Args...>;

template <typename F, typename... Args>
inline constexpr bool stop_callable_v =
    !plain_callable_v<F, Args...> && std::is_invocable_v<const F&, std::stop_token, Args...>;

template <typename F, typename... Args>
inline constexpr bool callable_v = plain_callable_v<F, Args...> || stop_callable_v<F, Args...>;

// How an operation reaches the wrapped callable. A small trivially copyable one (a lambda
// without captures, a function pointer, a function object holding a pointer or two) is copied
// into the operation: sharing it would bump a reference count on the caller's thread and drop
// it on a worker for every call, moving that count's cache line between them, and make every
// operation 16 bytes bigger. Anything else is shared with the wrapper. (Both are invoked as
// const, so a copy behaves as the original.)
template <typename F>
inline constexpr bool copied_into_calls_v =
    std::is_trivially_copyable_v<F> && sizeof(F) <= 2 * sizeof(void*);

template <typename F, bool Copied = copied_into_calls_v<F>>
struct callee {
  std::shared_ptr<const F> shared; // aliases the wrapper's state
  template <typename Executor>
  explicit callee(const std::shared_ptr<const smart_state<F, Executor>>& s) : shared(s, &s->fn) {}
  const F& fn() const noexcept { return *shared; }
};
template <typename F>
struct callee<F, true> {
  [[no_unique_address]] F copy;
  template <typename Executor>
  explicit callee(const std::shared_ptr<const smart_state<F, Executor>>& s) : copy(s->fn) {}
  const F& fn() const noexcept { return copy; }
};

// The wrapped call with its decay-copied arguments, as a pool operation's work.
template <typename F, typename... Args>
struct bound_call {
  [[no_unique_address]] callee<F> target;
  std::tuple<Args...> args;
  const call_site* site_; // for reports about the call (see intern_call_site)
  bool abandon = false;   // smart_options::on_cancel

  bool abandons_on_cancel() const noexcept { return abandon; }
  const call_site* site() const noexcept { return site_; }

  decltype(auto) operator()()
    requires plain_callable_v<F, Args...>
  {
    return std::apply(target.fn(), std::move(args));
  }

  decltype(auto) operator()(std::stop_token token)
    requires stop_callable_v<F, Args...>
  {
    return std::apply(
        [&](Args&... a) -> decltype(auto) {
          return std::invoke(target.fn(), token, std::move(a)...);
        },
        args);
  }
};

template <typename Token, typename Work>
struct token_for_work
    : std::bool_constant<asio::completion_token_for<Token, smartasync::offload_signature_t<Work>>> {};

template <typename T>
struct as_token_t;

template <typename T>
inline constexpr bool is_as_token_v = false;
template <typename T>
inline constexpr bool is_as_token_v<as_token_t<T>> = true;

// Whether the callable takes the arguments of Ts but the last, and the last is a completion
// token for the signature of that call (as Asio's completion_token_for decides it).
template <typename F, typename All, typename Rest>
struct last_is_token_for_rest;

template <typename F, typename... Ts, std::size_t... I>
struct last_is_token_for_rest<F, std::tuple<Ts...>, std::index_sequence<I...>> {
  using all = std::tuple<Ts...>;
  using last = std::tuple_element_t<sizeof...(Ts) - 1, all>;

  using work = bound_call<F, std::decay_t<std::tuple_element_t<I, all>>...>;
  static constexpr bool rest_callable =
      callable_v<F, std::decay_t<std::tuple_element_t<I, all>>...>;
  // conjunction: the signature is only computed when the callable takes the other arguments.
  static constexpr bool value =
      std::conjunction_v<std::bool_constant<rest_callable>, token_for_work<last, work>>;
};

// How async(xs...) reads its arguments.
enum class token_position {
  none,      // every argument goes to the callable; the default token
  last,      // the last argument is the token
  marked,    // the last argument is as_token(token)
  ambiguous, // the last argument could be either: refused
};

template <typename F, typename... Ts>
constexpr token_position find_token() {
  if constexpr (sizeof...(Ts) == 0) {
    return token_position::none;
  } else {
    using rest = std::make_index_sequence<sizeof...(Ts) - 1>;
    using last = std::decay_t<std::tuple_element_t<sizeof...(Ts) - 1, std::tuple<Ts...>>>;
    if constexpr (is_as_token_v<last>)
      return token_position::marked;
    else if constexpr (!last_is_token_for_rest<F, std::tuple<Ts...>, rest>::value)
      return token_position::none;
    else if constexpr (callable_v<F, std::decay_t<Ts>...>)
      return token_position::ambiguous; // a generic or variadic callable takes it too
    else
      return token_position::last;
  }
}

// The sync form, `w(args...)`. Self (the smart_async_function) provides call_sync(origin, args...).
// When the callable's parameters are known, the sync form is declared with them and a
// defaulted source_location after them, so a report names the call expression; otherwise it
// deduces its arguments, and reports name the wrapper's creation site.
template <typename Self, typename F, bool Located = located_calls_v<F>,
          typename Params = sync_params_t<F>>
struct sync_call_operator;

template <typename Self, typename F, typename Params>
struct sync_call_operator<Self, F, false, Params> {
  template <typename... Args>
  decltype(auto) operator()(Args&&... args) const {
    static_assert(callable_v<F, Args...>, "smartasync: the wrapped callable cannot be "
                  "called with these arguments through a const reference. Note that a mutable "
                  "lambda or a non-const operator() is not allowed: the callable is shared by "
                  "concurrent calls; guard its state and make operator() const.");
    return static_cast<const Self&>(*this).call_sync(call_origin{}, std::forward<Args>(args)...);
  }
};

template <typename Self, typename F, typename... P>
struct sync_call_operator<Self, F, true, param_list<P...>> {
  typename call_signature<F>::result
  operator()(P... args,
             smartasync::source_location called_at = smartasync::source_location::current()) const {
    return static_cast<const Self&>(*this).call_sync(call_origin{called_at, true},
                                                     std::forward<P>(args)...);
  }

  // Calls the declared form cannot take but the callable can: those leaving out a parameter
  // the callable gives a default argument (which no type carries). Their site is not known.
  template <typename... Args>
    requires(!std::is_invocable_v<void (*)(P...), Args...> && callable_v<F, Args...>)
  decltype(auto) operator()(Args&&... args) const {
    return static_cast<const Self&>(*this).call_sync(call_origin{}, std::forward<Args>(args)...);
  }
};

} // namespace detail

class serial_lane;
class thread_affine_lane;
template <typename Key, typename Hash, typename KeyEqual>
class keyed_lanes;

template <typename F, typename Executor> // Executor defaults to blocking_pool
class smart_async_function;

namespace detail {
template <typename G>
smart_async_function<std::decay_t<G>> make_smart_function(blocking_pool* pool, G&& fn,
                                                    smart_options options,
                                                    smartasync::source_location where);

template <typename Executor, typename G>
smart_async_function<std::decay_t<G>, Executor>
make_smart_function_on(call_target<Executor> target, G&& fn, smart_options options,
                       smartasync::source_location where);

// The executors a wrapper can run on besides a blocking_pool (serial_lane.hpp).
template <typename T>
inline constexpr bool is_lane_v = false;
template <>
inline constexpr bool is_lane_v<serial_lane> = true;
template <>
inline constexpr bool is_lane_v<thread_affine_lane> = true;

template <typename T>
inline constexpr bool dependent_false_v = false;

template <typename T>
struct as_token_t {
  using token_type = T;
  T&& token;
};
} // namespace detail

/// Marks the last argument of smart_async_function::async_call() as its completion token.
/**
 * Needed only when a generic or variadic callable could take the token as an argument too
 * (such a call does not compile without it); accepted anywhere. The result refers to `token`:
 * use it in the call's own argument list, as in `w.async_call(x, smartasync::as_token(token))`.
 */
template <typename Token>
detail::as_token_t<Token> as_token(Token&& token) noexcept {
  return {std::forward<Token>(token)};
}

/// A blocking callable that runs inline for synchronous callers and on a pool for async ones.
/**
 * Made by smart_async(). Copies share the callable and its pool (or lane).
 *
 * `Executor` is where calls run: blocking_pool (the default), serial_lane or
 * thread_affine_lane (see smart_async(lane, fn)). Most code says `auto` and never spells it.
 *
 * @par Thread safety
 * The callable is invoked concurrently, from the caller's thread (sync form) and from pool
 * workers (async form), through a const reference: its `operator() const` must be safe to call
 * concurrently. Copying and calling a smart_async_function from several threads is safe.
 */
template <typename F, typename Executor>
class smart_async_function
    : public detail::sync_call_operator<smart_async_function<F, Executor>, F> {
public:
  /// The wrapped callable's type.
  using function_type = F;
  /// Where calls run: blocking_pool, serial_lane or thread_affine_lane.
  using executor_type = Executor;

  /// Type erasure: any smart_async_function whose callable can be called as Signature converts to
  /// `smart_async_function<std::function<Signature>, Executor>` (alias
  /// any_smart_async_function<Signature, Executor>), the type to store as a class member. Pool
  /// or lane, name and policies carry over; the original callable is shared, not copied.
  template <typename G>
    requires(!std::is_same_v<G, F> && detail::is_std_function_v<F> &&
             std::is_constructible_v<F, const G&>)
  smart_async_function(const smart_async_function<G, Executor>& other) // NOLINT: implicit, like std::function's
      : state_(std::make_shared<const detail::smart_state<F, Executor>>(
            detail::smart_state<F, Executor>{
                F([shared = other.state_](auto&&... args) -> decltype(auto) {
                  return std::invoke(shared->fn, std::forward<decltype(args)>(args)...);
                }),
                other.state_->target, other.state_->site, other.state_->abandon_on_cancel})) {}

  /// The sync form, `w(args...)`: calls the wrapped function on this thread and returns what it
  /// returns.
  /**
   * Off an event loop this is a plain call (plus a thread-local check); exceptions propagate
   * unchanged. On a thread running an event loop, the wrapper's loop_call_policy applies (see
   * loop_call_policy). A callable whose first parameter is std::stop_token receives a token
   * that is never stopped.
   *
   * When the callable has one parameter list (a function pointer, a lambda without `auto`
   * parameters, a class with one non-template `operator() const`, std::function), the sync
   * form is declared with exactly those parameters plus a defaulted source_location, so that a
   * report names the call expression: arguments convert at the call, as they would calling the
   * function directly, and a by-value parameter is moved once more on its way in. A generic or
   * overloaded callable deduces its arguments instead, and reports name where the wrapper was
   * made; so do calls that leave out a parameter the callable gives a default argument.
   */
  using detail::sync_call_operator<smart_async_function<F, Executor>, F>::operator();

  /// The async form: `async_call(args..., token)`; the token defaults to asio::use_awaitable.
  /**
   * Arguments are decay-copied into the operation (use std::ref to pass a reference; the
   * referent must then outlive the operation).
   *
   * @par Which argument is the token
   * The last argument is the completion token when it is one for the call made with the others
   * (Asio's `completion_token_for` decides, for the signature below) and the callable takes
   * those others; otherwise every argument goes to the callable and the token is the default.
   * A call where both readings work (a generic or variadic callable given a token last, as in
   * `w.async_call(1, 2, asio::use_future)` for `[](const auto&... xs) {...}`) does not compile;
   * say which with as_token(): `w.async_call(1, 2, smartasync::as_token(asio::use_future))`
   * completes through use_future, `w.async_call(1, 2, asio::use_future,
   * smartasync::as_token(asio::use_awaitable))` passes it to the callable.
   *
   * @par Completion signature
   * `void(std::exception_ptr, R)` with R the decayed result type, or `void(std::exception_ptr)`.
   * @par Blocking, Cancellation
   * As async_offload(): the call runs on the pool, the result returns through the token's
   * associated executor, cancellation removes a queued call, or stops a running one and
   * completes once it has returned (smart_options::on_cancel can opt out of that wait).
   * @par Example
   * @code
   * auto rows = co_await search.async_call("asio");                    // use_awaitable
   * search.async_call("asio", [](std::exception_ptr e, rows r) {...}); // callback
   * std::future<rows> f = search.async_call("asio", asio::use_future);
   * @endcode
   */
  template <typename... ArgsAndToken>
  auto async_call(ArgsAndToken&&... xs) const {
    constexpr auto position = detail::find_token<F, ArgsAndToken...>();
    static_assert(position != detail::token_position::ambiguous,
                  "smartasync: the last argument of async_call() is both a completion token for a "
                  "call with the other arguments and an argument the callable accepts (a "
                  "generic or variadic callable). Say which: w.async_call(args..., "
                  "smartasync::as_token(token)) to complete through it, or w.async_call(args..., "
                  "value, smartasync::as_token(asio::use_awaitable)) to pass it to the callable.");
    if constexpr (position == detail::token_position::last ||
                  position == detail::token_position::marked) {
      constexpr std::size_t n = sizeof...(ArgsAndToken) - 1;
      auto refs = std::forward_as_tuple(std::forward<ArgsAndToken>(xs)...);
      return [&]<std::size_t... I>(std::index_sequence<I...>) {
        if constexpr (position == detail::token_position::marked) {
          using marked = std::decay_t<std::tuple_element_t<n, std::tuple<ArgsAndToken...>>>;
          using token_type = typename marked::token_type;
          static_assert(detail::callable_v<F, std::decay_t<std::tuple_element_t<I, std::tuple<ArgsAndToken...>>>...>,
                        "smartasync: the wrapped callable cannot be called with the arguments "
                        "before as_token(...) (decay-copied, through a const reference).");
          return initiate(static_cast<token_type&&>(std::get<n>(refs).token),
                          std::get<I>(std::move(refs))...);
        } else {
          return initiate(std::get<n>(std::move(refs)), std::get<I>(std::move(refs))...);
        }
      }(std::make_index_sequence<n>{});
    } else {
      static_assert(detail::callable_v<F, std::decay_t<ArgsAndToken>...>,
                    "smartasync: the wrapped callable cannot be called with these arguments "
                    "(decay-copied, through a const reference), and the last argument is not a "
                    "completion token for the remaining ones either.");
      return initiate(asio::use_awaitable, std::forward<ArgsAndToken>(xs)...);
    }
  }

  /// The former name of async_call(), kept until 2.0.
  template <typename... ArgsAndToken>
  [[deprecated("use async_call")]] auto async(ArgsAndToken&&... xs) const {
    return async_call(std::forward<ArgsAndToken>(xs)...);
  }

  /// The pool used by the async form (default_pool() unless one was given; a lane's pool for a
  /// wrapper on a lane). Only valid while that pool exists (the wrapper may outlive it: see
  /// smart_async()).
  blocking_pool& pool() const { return state_->target.executor_pool(); }

  /// The name given in smart_options, or "" .
  const std::string& name() const noexcept { return state_->site->name; }

  /// Where smart_async() was called to make this wrapper.
  const smartasync::source_location& created_at() const noexcept { return state_->site->created_at; }

  /// The wrapped callable.
  const F& function() const noexcept { return state_->fn; }

private:
  template <typename, typename>
  friend class smart_async_function;
  template <typename, typename, bool, typename>
  friend struct detail::sync_call_operator;

  template <typename E, typename G>
  friend smart_async_function<std::decay_t<G>, E>
  detail::make_smart_function_on(detail::call_target<E>, G&&, smart_options,
                                 smartasync::source_location);

  explicit smart_async_function(std::shared_ptr<const detail::smart_state<F, Executor>> state)
      : state_(std::move(state)) {}

  template <typename... Args>
  decltype(auto) invoke(Args&&... args) const {
    if constexpr (detail::plain_callable_v<F, Args...>)
      return std::invoke(state_->fn, std::forward<Args>(args)...);
    else
      return std::invoke(state_->fn, std::stop_token{}, std::forward<Args>(args)...);
  }

  template <typename... Args>
  decltype(auto) call_sync(const detail::call_origin& origin, Args&&... args) const {
    if (this_thread::is_running_event_loop()) [[unlikely]]
      return call_on_loop(origin, std::forward<Args>(args)...);
    return run(std::forward<Args>(args)...);
  }

  template <typename... Args>
  decltype(auto) call_on_loop(const detail::call_origin& origin, Args&&... args) const {
    // Strict throws here, before the call; report reports when the guard goes, even if the
    // call throws, so the report can say how long the loop was blocked (a lane's wait for the
    // turn included). The lane does not check again.
    detail::loop_guard guard(*state_->site, origin);
    return run(std::forward<Args>(args)...);
  }

  // The sync call: inline for a pool; through the lane's turn, or on the lane's thread.
  template <typename... Args>
  decltype(auto) run(Args&&... args) const {
    if constexpr (std::is_same_v<Executor, blocking_pool>) {
      return invoke(std::forward<Args>(args)...);
    } else {
      auto call = [&]() -> decltype(auto) { return invoke(std::forward<Args>(args)...); };
      return state_->target.run_sync(call);
    }
  }

  template <typename Token, typename... Args>
  auto initiate(Token&& token, Args&&... args) const {
    using work = detail::bound_call<F, std::decay_t<Args>...>;
    return asio::async_initiate<Token, offload_signature_t<work>>(
        state_->target.initiation(), token,
        work{detail::callee<F>{state_}, {std::forward<Args>(args)...}, state_->site,
             state_->abandon_on_cancel});
  }

  std::shared_ptr<const detail::smart_state<F, Executor>> state_;
};

/// A smart_async_function of any callable with this signature, for storing as a member:
/**
 * @code
 * class repository {
 *   smartasync::any_smart_async_function<std::vector<row>(std::string)> search_;
 * public:
 *   explicit repository(smartasync::blocking_pool& pool)
 *       : search_(smartasync::smart_async(pool, [this](std::string q) { return db_.search(q); },
 *                                         {.name = "search"})) {}
 * };
 * @endcode
 * A Signature whose first parameter is std::stop_token makes the wrapper stop-aware, as for any
 * callable. Cost: one std::function call more per call. A wrapper on a lane is stored as
 * `any_smart_async_function<Signature, smartasync::serial_lane>` (or thread_affine_lane): the
 * executor is part of the type, so that a pool wrapper pays nothing for the lanes.
 */
template <typename Signature, typename Executor = blocking_pool>
using any_smart_async_function = smart_async_function<std::function<Signature>, Executor>;

/// The former name of smart_async_function, kept until 2.0.
template <typename F>
using smart_function [[deprecated("use smart_async_function")]] = smart_async_function<F>;

/// The former name of any_smart_async_function, kept until 2.0.
template <typename Signature>
using any_smart_function [[deprecated("use any_smart_async_function")]] =
    any_smart_async_function<Signature>;

namespace detail {
template <typename Executor, typename G>
smart_async_function<std::decay_t<G>, Executor>
make_smart_function_on(call_target<Executor> target, G&& fn, smart_options options,
                       smartasync::source_location where) {
  using F = std::decay_t<G>;
  static_assert(std::is_constructible_v<F, G&&>,
                "smartasync::smart_async: the callable must be copy- or move-constructible into "
                "the wrapper; wrap one that is neither in std::ref (it must then outlive the "
                "wrapper) or a std::shared_ptr.");
  return smart_async_function<F, Executor>(
      std::make_shared<const detail::smart_state<F, Executor>>(detail::smart_state<F, Executor>{
          std::forward<G>(fn), std::move(target),
          detail::intern_call_site(std::move(options.name), options.on_loop, where),
          options.on_cancel == running_cancel::abandon}));
}

template <typename G>
smart_async_function<std::decay_t<G>> make_smart_function(blocking_pool* pool, G&& fn,
                                                    smart_options options,
                                                    smartasync::source_location where) {
  return make_smart_function_on(call_target<blocking_pool>(pool), std::forward<G>(fn),
                                std::move(options), where);
}
} // namespace detail

/// Not part of the API (an implementation detail of smart_async that was visible here).
template <typename G>
[[deprecated("use smartasync::smart_async(pool, fn, options) or smart_async(fn, options)")]]
smart_async_function<std::decay_t<G>> make_smart_function(blocking_pool* pool, G&& fn,
                                                    smart_options options,
                                                    smartasync::source_location where) {
  return detail::make_smart_function(pool, std::forward<G>(fn), std::move(options), where);
}

/// Wraps a blocking callable so that sync callers call it and async callers offload it.
/**
 * @param pool The pool the async form runs on; it must outlive the operations started on it.
 * The wrapper may outlive it: once the pool is destroyed, the async form completes with
 * error::pool_stopped (through the token, as a pool that is shut down does), while the sync
 * form keeps calling inline. Destroying the pool while another thread starts a call on it is
 * a race, as any use of an object being destroyed is.
 * @param fn The blocking callable, decay-copied. Its `operator() const` may take a
 * std::stop_token first, to learn that a running async call was cancelled.
 * @param options A name for reports and the loop_call_policy of the sync form.
 * @param where Where the wrapper is created, for reports; leave it to its default (the caller).
 * @returns A smart_async_function: `w(args...)` calls, `co_await w.async_call(args...)` offloads.
 *
 * @par Example
 * @code
 * smartasync::blocking_pool pool{4};
 * auto search = smartasync::smart_async(pool, [&db](std::string q) { return db.search(q); },
 *                                       {.name = "catalog search"});
 * auto rows = search("asio");                  // CLI: inline, no thread hop
 * auto rows = co_await search.async_call("asio");   // server: offloaded, the loop stays free
 * @endcode
 */
template <typename G>
smart_async_function<std::decay_t<G>>
smart_async(blocking_pool& pool, G&& fn, smart_options options = {},
            smartasync::source_location where = smartasync::source_location::current()) {
  return detail::make_smart_function(&pool, std::forward<G>(fn), std::move(options), where);
}

/// Wraps a blocking callable whose calls must go through a lane: one at a time in order
/// (serial_lane), or all on one thread (thread_affine_lane).
/**
 * The same wrapper as smart_async(pool, fn): name, loop_call_policy, both forms, every token.
 * - Sync form `w(args...)`: off a loop it runs the call through the lane, so the lane's rules
 *   hold for it too: on a serial_lane it waits for its turn and runs on this thread (as
 *   lane.run() does); on a thread_affine_lane it runs on the lane's thread while this one
 *   waits. On a loop the wrapper's loop_call_policy applies, once (the lane's own is not
 *   consulted).
 * - Async form `w.async_call(args..., token)`: as async_offload(lane, ...), reports naming the
 *   wrapper.
 * - The wrapper holds no reference to the lane object. Once the lane is destroyed, the async
 *   form completes with error::pool_stopped (a serial_lane's pool may still exist; a
 *   thread_affine_lane's does not), the sync form throws: a serial_lane's with
 *   asio::error::operation_aborted (as run() on a destroyed lane), a thread_affine_lane's with
 *   error::pool_stopped. The pool of a serial_lane must outlive the lane, as always.
 *
 * Stored as `any_smart_async_function<Signature, serial_lane>` (or thread_affine_lane).
 * @par Example
 * @code
 * smartasync::serial_lane writes{pool};
 * auto insert = smartasync::smart_async(writes, [&db](row r) { db.insert(r); }, {.name = "insert"});
 * insert(r);                          // CLI: waits for the turn, runs here
 * co_await insert.async_call(r);      // server: queued on the lane, the loop stays free
 * @endcode
 */
template <typename Lane, typename G>
  requires detail::is_lane_v<Lane>
smart_async_function<std::decay_t<G>, Lane>
smart_async(Lane& lane, G&& fn, smart_options options = {},
            smartasync::source_location where = smartasync::source_location::current()) {
  return detail::make_smart_function_on(detail::call_target<Lane>(lane), std::forward<G>(fn),
                                        std::move(options), where);
}

/// Refused: a keyed_lanes picks its lane by a key, which a wrapper's call does not carry.
/**
 * Wrap the key's lane instead, `smart_async(lanes[key], fn)`, or offload each call with
 * `async_offload(lanes[key], work)`. (A wrapper that took the key as an extra first argument
 * would make `w(key, x)` and the callable's `f(x)` disagree on their parameters, and hide
 * which lane, hence which order, a call joins.)
 */
template <typename Key, typename Hash, typename KeyEqual, typename G>
auto smart_async(keyed_lanes<Key, Hash, KeyEqual>& lanes, G&& fn, smart_options options = {},
                 smartasync::source_location where = smartasync::source_location::current()) {
  static_assert(detail::dependent_false_v<G>,
                "smartasync::smart_async: a keyed_lanes picks its lane by a key, which a "
                "wrapper's call does not carry. Wrap the key's lane: smart_async(lanes[key], fn), "
                "or offload each call with async_offload(lanes[key], work).");
  (void)lanes, (void)fn, (void)options, (void)where;
}

/// Wraps `fn` for default_pool(); otherwise as smart_async(pool, fn, options).
template <typename G>
  requires(!std::is_same_v<std::decay_t<G>, blocking_pool> && !detail::is_lane_v<std::decay_t<G>>)
smart_async_function<std::decay_t<G>>
smart_async(G&& fn, smart_options options = {},
            smartasync::source_location where = smartasync::source_location::current()) {
  return detail::make_smart_function(nullptr, std::forward<G>(fn), std::move(options), where);
}

} // namespace smartasync

#endif // SMARTASYNC_SMART_ASYNC_HPP
