// smartasync/detail/context_capture.hpp - the registered context carriers, captured and restored.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_CONTEXT_CAPTURE_HPP
#define SMARTASYNC_DETAIL_CONTEXT_CAPTURE_HPP

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

} // namespace smartasync

#endif // SMARTASYNC_DETAIL_CONTEXT_CAPTURE_HPP
