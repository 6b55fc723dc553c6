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

} // namespace smartasync

#endif // SMARTASYNC_CONTEXT_CARRIER_HPP
