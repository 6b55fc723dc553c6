// smartasync/context_carrier.hpp - thread-local context carried across the hop to the pool.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_CONTEXT_CARRIER_HPP
#define SMARTASYNC_CONTEXT_CARRIER_HPP

#include "smartasync/config.hpp"

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

namespace detail {

// One registered carrier, type-erased: where its value lives in a captured block and how to
// capture, swap in and destroy it.
struct carrier_entry {
  const void* id;
  std::size_t offset;
  void (*capture)(void* slot) noexcept;
  void (*exchange)(void* slot) noexcept;
  void (*destroy)(void* slot) noexcept;
};

// The carriers registered at one moment; immutable once published, so that a submission reads
// them with a single atomic load and no lock.
struct carrier_set {
  std::vector<carrier_entry> entries;
  std::size_t block_size = 0;
};

class carrier_registry {
public:
  // Made on first use and never destroyed. A captured context points at the set it was
  // captured with and is restored and destroyed by whichever thread finishes its call: a pool's
  // worker can do that during static destruction (the default pool is joined then), after a
  // registry made later than that pool would already be gone. Never destroying it keeps every
  // set valid for as long as any thread may run; what it holds is a few small sets per process,
  // still reachable through this pointer at exit (so leak checkers do not count it).
  static carrier_registry& instance() {
    static carrier_registry* const registry = new carrier_registry;
    return *registry;
  }

  const carrier_set* active() const noexcept { return active_.load(std::memory_order_acquire); }

  // Registering a carrier that is registered already only counts: it is carried once, until
  // its last registration goes.
  template <typename C>
  void add() {
    static_assert(alignof(typename C::value_type) <= alignof(std::max_align_t),
                  "smartasync: a carrier's value_type may not be over-aligned");
    std::lock_guard lock(mutex_);
    if (registrations_[type_id<C>()]++ > 0)
      return;
    auto next = std::make_unique<carrier_set>(current_copy());
    std::size_t offset = next->block_size;
    offset = (offset + alignof(typename C::value_type) - 1) / alignof(typename C::value_type) *
             alignof(typename C::value_type);
    next->entries.push_back(carrier_entry{
        .id = type_id<C>(),
        .offset = offset,
        .capture = [](void* slot) noexcept { ::new (slot) typename C::value_type(C::capture()); },
        .exchange =
            [](void* slot) noexcept {
              auto& held = *std::launder(static_cast<typename C::value_type*>(slot));
              held = C::exchange(std::move(held));
            },
        .destroy =
            [](void* slot) noexcept {
              using value_type = typename C::value_type;
              std::launder(static_cast<value_type*>(slot))->~value_type();
            },
    });
    next->block_size = offset + sizeof(typename C::value_type);
    publish(std::move(next));
  }

  template <typename C>
  void remove() {
    std::lock_guard lock(mutex_);
    if (--registrations_[type_id<C>()] > 0)
      return;
    carrier_set kept = current_copy();
    // Offsets stay as they were: a block is laid out by the set it was captured with.
    std::erase_if(kept.entries, [](const carrier_entry& e) { return e.id == type_id<C>(); });
    publish(kept.entries.empty() ? nullptr : std::make_unique<carrier_set>(std::move(kept)));
  }

private:
  template <typename C>
  static const void* type_id() noexcept {
    static const char id = 0;
    return &id;
  }

  carrier_set current_copy() const {
    const carrier_set* current = active_.load(std::memory_order_relaxed);
    return current ? *current : carrier_set{};
  }

  // Captured blocks point at the set they were captured with, so a replaced set stays alive
  // (registrations are rare: a few per process).
  void publish(std::unique_ptr<carrier_set> next) {
    active_.store(next.get(), std::memory_order_release);
    if (next)
      sets_.push_back(std::move(next));
  }

  std::mutex mutex_;
  std::map<const void*, std::size_t> registrations_;
  std::atomic<const carrier_set*> active_{nullptr};
  std::vector<std::unique_ptr<carrier_set>> sets_;
};

// The contexts captured for one call: one allocation holding every carrier's value, right
// after this header (whose alignment keeps the values aligned).
class alignas(std::max_align_t) captured_context {
public:
  // Null when no carrier is registered: that is the whole cost then.
  static captured_context* capture() {
    const carrier_set* set = carrier_registry::instance().active();
    if (!set)
      return nullptr;
    void* memory = ::operator new(sizeof(captured_context) + set->block_size,
                                  std::align_val_t{alignof(std::max_align_t)});
    auto* captured = ::new (memory) captured_context(set);
    for (const carrier_entry& e : set->entries)
      e.capture(captured->slot(e));
    return captured;
  }

  // Swaps the captured values with this thread's: once to install them, once more to restore
  // what was there (the call's changes then travel on with the captured values).
  void exchange() noexcept {
    for (const carrier_entry& e : set_->entries)
      e.exchange(slot(e));
  }

  struct deleter {
    void operator()(captured_context* c) const noexcept {
      for (const carrier_entry& e : c->set_->entries)
        e.destroy(c->slot(e));
      c->~captured_context();
      ::operator delete(c, std::align_val_t{alignof(std::max_align_t)});
    }
  };

private:
  explicit captured_context(const carrier_set* set) noexcept : set_(set) {}
  void* slot(const carrier_entry& e) noexcept {
    return reinterpret_cast<unsigned char*>(this) + sizeof(captured_context) + e.offset;
  }

  const carrier_set* set_;
};
using captured_context_ptr = std::unique_ptr<captured_context, captured_context::deleter>;

inline captured_context_ptr capture_context() {
  return captured_context_ptr(captured_context::capture());
}

// Installs a captured context on this thread for the scope (nothing when there is none).
class context_scope {
public:
  explicit context_scope(captured_context* captured) noexcept : captured_(captured) {
    if (captured_)
      captured_->exchange();
  }
  context_scope(const context_scope&) = delete;
  context_scope& operator=(const context_scope&) = delete;
  ~context_scope() {
    if (captured_)
      captured_->exchange();
  }

private:
  captured_context* captured_;
};

} // namespace detail

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
