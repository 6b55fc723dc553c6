// smartasync/context_carrier.hpp - thread-local context carried across the hop to the pool.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_CONTEXT_CARRIER_HPP
#define SMARTASYNC_CONTEXT_CARRIER_HPP

#include "smartasync/config.hpp"
#include "smartasync/detail/context_capture.hpp"

#include <algorithm>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace SMARTASYNC_NAMESPACE {

/// A thread-local context (a request or trace id, a logging context, a locale, ...) that
/// offloaded calls carry from the submitting thread to the worker and back.
/**
 * A carrier is a class with a value type and two static functions:
 * - `static value_type capture()`: reads the context on the submitting thread;
 * - `static value_type exchange(value_type v)`: makes `v` this thread's context and returns
 *   the one it replaces.
 * `value_type` must be nothrow-move-constructible, and both functions must not throw.
 */
template <typename C>
concept context_carrier = std::is_nothrow_move_constructible_v<typename C::value_type> &&
                          requires(typename C::value_type v) {
                            { C::capture() } -> std::same_as<typename C::value_type>;
                            { C::exchange(std::move(v)) } -> std::same_as<typename C::value_type>;
                          };


/// Keeps a carrier registered; unregisters it when destroyed. Move-only.
class context_registration {
public:
  /// Holds no registration.
  context_registration() = default;
  /// Takes over `other`'s registration; `other` then holds none.
  context_registration(context_registration&& other) noexcept
      : remove_(std::exchange(other.remove_, nullptr)) {}
  /// Unregisters the carrier held, then takes over `other`'s.
  context_registration& operator=(context_registration&& other) noexcept {
    if (this != &other) {
      reset();
      remove_ = std::exchange(other.remove_, nullptr);
    }
    return *this;
  }
  ~context_registration() { reset(); }

  /// Unregisters now (calls submitted afterwards no longer carry it).
  void reset() noexcept {
    if (auto remove = std::exchange(remove_, nullptr))
      remove();
  }

  /// Used by carry_context(): `remove` unregisters the carrier.
  explicit context_registration(void (*remove)() noexcept) noexcept : remove_(remove) {}

private:
  void (*remove_)() noexcept = nullptr;
};

/// Registers carrier `C` for the whole process: from now on every offloaded call captures
/// `C::capture()` on the submitting thread, runs with it installed on the worker (restored
/// afterwards), and its completion handler runs with it installed on the caller's executor.
/**
 * Several carriers compose: each is captured, installed and restored independently (installed
 * in registration order, restored in the same order; keep them independent of each other).
 * A call that runs inline (the synchronous form, a nested call on a worker) needs no carrying:
 * it already runs on the thread whose context it has.
 *
 * @par Lifetime
 * A call keeps what it captured until it has finished, even when that is after the
 * registration was reset or after main returned (a call still running on the default pool is
 * finished during static destruction): the carriers' bookkeeping is never destroyed. A carrier's
 * own state (its thread_local) must therefore stay usable on the pool's threads until then.
 *
 * @par Cost
 * Nothing registered: one atomic load per submission. Registered: one allocation per call
 * holding every carrier's value, plus two exchange() calls per carrier on each side.
 *
 * @par Example
 * @code
 * struct request_id {
 *   using value_type = std::string;
 *   static inline thread_local std::string current;
 *   static value_type capture() noexcept { return current; }
 *   static value_type exchange(value_type v) noexcept { return std::exchange(current, std::move(v)); }
 * };
 * auto carried = smartasync::carry_context<request_id>(); // for as long as `carried` lives
 * @endcode
 */
template <context_carrier C>
[[nodiscard]] context_registration carry_context() {
  detail::carrier_registry::instance().add<C>();
  return context_registration(+[]() noexcept {
    try {
      detail::carrier_registry::instance().remove<C>();
    } catch (...) {
      // Out of memory while unregistering: the carrier stays registered, harmlessly.
    }
  });
}

/// A thread_local that offloaded calls carry, declared in one line: no registration.
/**
 * Each `carried_thread_local<T, Tag>` is a variable of its own, one per thread, and a
 * context_carrier for it; `Tag` is any type that names the variable, usually declared right in
 * the argument list:
 * @code
 * using tenant = smartasync::carried_thread_local<int, struct tenant_tag>;
 * tenant::current() = 42;          // on the loop thread, for the request being served
 * co_await w.async_call(query);    // the call sees tenant::current() == 42 on its worker
 * @endcode
 * It is carried like a carrier registered with carry_context(): captured on the submitting
 * thread, installed on the worker around the call and restored afterwards, and installed
 * around the completion handler on the caller's executor.
 *
 * @par Cost
 * Carrying starts the first time any thread calls current() (a variable a program never uses
 * costs nothing, and neither does the declaration), and lasts for the rest of the process, at
 * the cost of a registered carrier: one allocation per offloaded call holding every carried
 * value, a copy of this one, and two moves on each side. Until then, an offloaded call pays one
 * atomic load for all carriers together. current() itself costs a thread-local access and a
 * check that the carrier is registered.
 *
 * @par Lifetime
 * The value lives in a thread_local of `T`, destroyed when its thread exits; the carrier's
 * bookkeeping is never destroyed, so calls still finishing during static destruction (on the
 * default pool) restore and destroy their captured value safely.
 *
 * @tparam T The value type: default-constructible (each thread starts with `T{}`), copyable
 * (capture copies it) and nothrow-move-constructible.
 * @tparam Tag Any type, only to make distinct declarations distinct variables.
 */
template <typename T, typename Tag>
class carried_thread_local {
  static_assert(std::is_default_constructible_v<T> && std::is_copy_constructible_v<T> &&
                    std::is_nothrow_move_constructible_v<T>,
                "smartasync::carried_thread_local<T, Tag>: T must be default-constructible, "
                "copyable and nothrow-move-constructible");

public:
  /// The carried value type.
  using value_type = T;

  /// This thread's value; the first call in the process starts carrying it.
  static T& current() {
    // A function-local static: registered once, by whichever thread gets here first, and
    // retried on the next call if registering ran out of memory.
    static const bool registered = (detail::carrier_registry::instance().add<carried_thread_local>(),
                                    true);
    (void)registered;
    return slot();
  }

  /// The carrier's capture: a copy of this thread's value.
  static value_type capture() noexcept { return slot(); }
  /// The carrier's exchange: makes `v` this thread's value and returns the one it replaces.
  static value_type exchange(value_type v) noexcept { return std::exchange(slot(), std::move(v)); }

private:
  static T& slot() noexcept {
    thread_local T value{};
    return value;
  }
};

namespace detail {
struct request_id_tag;
} // namespace detail

/// The id of the request this thread is serving ("req-17"), carried to every offloaded call
/// without registration.
/**
 * Set it where a request starts (on the loop thread, in the coroutine serving it); read it
 * anywhere downstream, including inside blocking calls offloaded to a pool, which see their
 * own request's id, and in the coroutine after each co_await, which resumes with its own
 * request's id whatever other requests set on that thread meanwhile. An empty string means no
 * request. See carried_thread_local for what carrying costs.
 * @code
 * smartasync::request_id::current() = fmt::format("req-{}", ++served);
 * auto hits = co_await search.async_call(query);   // logs request_id::current() on its worker
 * @endcode
 */
using request_id = carried_thread_local<std::string, detail::request_id_tag>;

} // namespace smartasync

#endif // SMARTASYNC_CONTEXT_CARRIER_HPP
