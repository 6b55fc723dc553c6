// smartasync/detail/scheduler_set.hpp - a set of Asio schedulers, asked "is this thread in one?".
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_SCHEDULER_SET_HPP
#define SMARTASYNC_DETAIL_SCHEDULER_SET_HPP

#include "smartasync/config.hpp"
#include "smartasync/this_thread.hpp"

#include SMARTASYNC_ASIO_HEADER(detail/call_stack.hpp)
#include SMARTASYNC_ASIO_HEADER(detail/thread_context.hpp)

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <mutex>
#include <vector>

namespace SMARTASYNC_NAMESPACE::detail {

// Schedulers registered by their owners (a context declared with allow_blocking(), a loop a
// watchdog watches), looked up from the thread asking: Asio's call stack can answer "is this
// thread running scheduler S?", not "which scheduler is this thread running?", so the lookup
// tries each member. The count keeps the common case, an empty set, to one atomic load: the
// lookup sits on the sync form's on-loop path and on every submission from a loop thread.
//
// A scheduler may be added more than once (two watchdogs on one loop); each remove() takes
// one of its entries away, so it stays a member until its last owner removes it.
class scheduler_set {
public:
  using scheduler = asio::detail::thread_context;

  void add(const scheduler* s) {
    std::lock_guard lock(mutex_);
    schedulers_.push_back(s);
    count_.fetch_add(1, std::memory_order_release);
  }

  // Removes one entry of `s`; nothing when it has none.
  void remove(const scheduler* s) {
    std::lock_guard lock(mutex_);
    if (auto at = std::find(schedulers_.begin(), schedulers_.end(), s); at != schedulers_.end()) {
      schedulers_.erase(at);
      count_.fetch_sub(1, std::memory_order_release);
    }
  }

  // The member this thread is running (the first found, when it runs several), or null.
  const scheduler* running_here() const {
    if (count_.load(std::memory_order_acquire) == 0)
      return nullptr;
    std::lock_guard lock(mutex_);
    for (const scheduler* s : schedulers_)
      if (asio::detail::call_stack<scheduler, asio::detail::thread_info_base>::contains(
              const_cast<scheduler*>(s)))
        return s;
    return nullptr;
  }

  bool contains_this_thread() const { return running_here() != nullptr; }

  std::size_t size() const noexcept { return count_.load(std::memory_order_acquire); }

private:
  std::atomic<std::size_t> count_{0};
  mutable std::mutex mutex_;
  std::vector<const scheduler*> schedulers_;
};

// The schedulers of the contexts declared with allow_blocking() (blocking_context.hpp).
struct blocking_contexts {
  static scheduler_set& instance() {
    static scheduler_set contexts;
    return contexts;
  }
};

// True when a blocking call on this thread stalls no event loop (this_thread::may_block()).
inline bool may_block_here() noexcept {
  return !this_thread::is_running_event_loop() ||
         blocking_contexts::instance().contains_this_thread();
}

} // namespace SMARTASYNC_NAMESPACE::detail

#endif // SMARTASYNC_DETAIL_SCHEDULER_SET_HPP
