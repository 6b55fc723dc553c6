// smartasync/watchdog.hpp - tells you when an event loop stops serving handlers, and who did it.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_WATCHDOG_HPP
#define SMARTASYNC_WATCHDOG_HPP

#include "smartasync/config.hpp"
#include "smartasync/detail/call_site.hpp"
#include "smartasync/diagnostics.hpp"

#include SMARTASYNC_ASIO_HEADER(any_io_executor.hpp)
#include SMARTASYNC_ASIO_HEADER(detail/scheduler.hpp)
#include SMARTASYNC_ASIO_HEADER(execution_context.hpp)
#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(post.hpp)
#include "smartasync/detail/format.hpp"

#include <atomic>
#include <chrono>
#include <concepts>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

namespace SMARTASYNC_NAMESPACE {

/// Options of loop_watchdog.
struct watchdog_options {
  /// A loop that has not run a handler for this long is reported as blocked.
  std::chrono::milliseconds threshold{100};
  /// A name for reports ("http server loop").
  std::string name{};
};

/// Watches an execution context that runs handlers (an io_context, with one thread or many, or
/// an asio::thread_pool) and reports, through the diagnostics hook, when it or one of its
/// threads stops running handlers for longer than a threshold.
/**
 * A monitor thread posts one tiny heartbeat handler at a time to the context. A heartbeat
 * still waiting after `threshold` means every thread of the loop is stuck in some handler:
 * the watchdog reports it at once (kind diagnostic_kind::loop_blocked), naming the wrapped
 * call running inline on the loop thread when there is one, and reports again, with the total
 * time, when the loop recovers. A loop that is not running (never started, or run() returned,
 * or stopped) is not blocked and is not reported.
 *
 * On a loop with several threads, one stuck thread does not delay the heartbeat: the others
 * run it. While the heartbeats flow, the watchdog therefore also looks at each thread of the
 * loop: a smartasync-wrapped call that has run inline on one of them for longer than
 * `threshold` is reported once (also diagnostic_kind::loop_blocked), naming the thread and the
 * call. (Blocking code that smartasync does not wrap is invisible to it on such a thread: Asio
 * does not say when a handler started.)
 *
 * @par Cost
 * One posted handler every threshold/4 on a healthy loop (see docs/benchmarks.md), one thread,
 * and every threshold/4 a look at each thread's inline-call slot (one uncontended lock each).
 *
 * @par Thread safety
 * Construct and destroy it like any I/O object: the context must outlive it.
 *
 * @par Example
 * @code
 * asio::io_context ioc;
 * smartasync::loop_watchdog watchdog{ioc, {.threshold = 100ms, .name = "api"}};
 * ioc.run();
 * @endcode
 */
class loop_watchdog {
public:
  /// Starts watching `context`'s event loop (an io_context, or any execution context with an
  /// executor) from a thread of its own; see watchdog_options.
  template <typename ExecutionContext>
    requires std::derived_from<ExecutionContext, asio::execution_context> &&
             requires(ExecutionContext& context) { context.get_executor(); }
  explicit loop_watchdog(ExecutionContext& context, watchdog_options options = {})
      : state_(std::make_shared<state>(context, std::move(options))),
        monitor_([s = state_](std::stop_token stop) { s->monitor(stop); }) {
    detail::watched_loops::instance().add(state_->scheduler);
  }

  loop_watchdog(const loop_watchdog&) = delete;
  loop_watchdog& operator=(const loop_watchdog&) = delete;

  /// Stops and joins the monitor thread. A heartbeat still queued in the io_context is
  /// harmless: it only touches state it shares ownership of.
  ~loop_watchdog() {
    monitor_.request_stop();
    monitor_.join();
    detail::watched_loops::instance().remove(state_->scheduler);
  }

  /// How many stalls have been detected so far.
  std::uint64_t stalls() const noexcept { return state_->stalls.load(std::memory_order_relaxed); }

  /// How many heartbeats the loop has run so far.
  std::uint64_t heartbeats() const noexcept {
    return state_->beats.load(std::memory_order_relaxed);
  }

private:
  struct state : std::enable_shared_from_this<state> {
    template <typename ExecutionContext>
    state(ExecutionContext& context, watchdog_options o)
        : executor(context.get_executor()),
          stopped(stopped_check(context)),
          scheduler(&asio::use_service<asio::detail::scheduler>(context)),
          options(std::move(o)),
          period(std::max<std::chrono::steady_clock::duration>(options.threshold / 4,
                                                               std::chrono::milliseconds(1))) {}

    template <typename ExecutionContext>
    static std::function<bool()> stopped_check(ExecutionContext& context) {
      if constexpr (std::is_base_of_v<asio::io_context, ExecutionContext>)
        return [&context] { return context.stopped(); };
      else
        return [] { return false; }; // a thread_pool runs until it is joined
    }

    const asio::any_io_executor executor;
    const std::function<bool()> stopped;
    const asio::detail::thread_context* const scheduler;
    const watchdog_options options;
    const std::chrono::steady_clock::duration period;

    std::mutex mutex;
    std::condition_variable_any wake;
    bool beat_pending = false;
    bool seen_running = false;
    bool stall_open = false;
    std::chrono::steady_clock::time_point posted_at;
    std::chrono::steady_clock::time_point last_beat_at;
    // Inline calls already reported per thread, by slot: the start of the call reported.
    std::map<const detail::inline_call_slot*, std::chrono::steady_clock::time_point> thread_stalls;
    std::string culprit;
    std::shared_ptr<detail::inline_call_slot> loop_thread_slot;
    std::thread::id loop_thread;

    std::atomic<std::uint64_t> stalls{0}, beats{0};

    void monitor(std::stop_token stop) {
      std::unique_lock lock(mutex);
      for (;;) {
        wake.wait_for(lock, stop, period, [] { return false; });
        if (stop.stop_requested())
          return;
        const auto now = std::chrono::steady_clock::now();
        if (!beat_pending) {
          beat_pending = true;
          posted_at = now;
          lock.unlock();
          asio::post(executor, [self = shared_from_this()] { self->on_beat(); });
          lock.lock();
          check_threads(lock, now);
          continue;
        }
        if (stall_open || !seen_running || stopped() || now - posted_at <= options.threshold) {
          check_threads(lock, now);
          continue;
        }
        stall_open = true;
        culprit = describe_culprit();
        stalls.fetch_add(1, std::memory_order_relaxed);
        auto d = make_report(now - posted_at, "has not run a handler for", " and counting");
        lock.unlock();
        report(d);
        lock.lock();
      }
    }

    void on_beat() {
      const auto now = std::chrono::steady_clock::now();
      std::unique_lock lock(mutex);
      beat_pending = false;
      seen_running = true;
      last_beat_at = now;
      beats.fetch_add(1, std::memory_order_relaxed);
      if (loop_thread != std::this_thread::get_id()) {
        loop_thread = std::this_thread::get_id();
        loop_thread_slot = detail::this_thread_inline_slot();
      }
      if (!stall_open)
        return;
      stall_open = false;
      auto d = make_report(now - posted_at, "recovered after being blocked for", "");
      lock.unlock();
      report(d);
    }

    // Called with `mutex` held. Only while the loop demonstrably runs heartbeats (a whole
    // stuck loop is the heartbeat's to report, with its culprit): reports each wrapped call
    // that has run inline on one of the loop's threads for longer than the threshold, once.
    void check_threads(std::unique_lock<std::mutex>& lock,
                       std::chrono::steady_clock::time_point now) {
      if (stall_open || !seen_running || now - last_beat_at > 2 * period)
        return;
      std::vector<diagnostic> due;
      std::map<const detail::inline_call_slot*, std::chrono::steady_clock::time_point> still;
      for (const auto& slot : detail::inline_call_slots::instance().live()) {
        std::lock_guard slot_lock(slot->mutex);
        const auto& call = slot->current;
        if (!call.site || call.loop != scheduler || now - call.since <= options.threshold)
          continue;
        still.emplace(slot.get(), call.since);
        const auto reported = thread_stalls.find(slot.get());
        if (reported != thread_stalls.end() && reported->second == call.since)
          continue;
        stalls.fetch_add(1, std::memory_order_relaxed);
        const auto blocked = now - call.since;
        const auto ms = std::chrono::duration<double, std::milli>(blocked).count();
        due.push_back(diagnostic{
            .kind = diagnostic_kind::loop_blocked,
            .message = fmt::format(
                "thread {} of {} has been stuck for {:.1f} ms (threshold {} ms) in {}; the "
                "loop's other threads carry on. Await it with co_await w.async_call(...) instead",
                detail::thread_text(slot->thread), label(), ms, options.threshold.count(),
                call.describe()),
            .name = options.name,
            .where = call.origin.where(*call.site),
            .duration = std::chrono::duration_cast<std::chrono::nanoseconds>(blocked),
            .thread = slot->thread,
            .created_at = call.site->created_at});
      }
      thread_stalls = std::move(still); // ended calls are forgotten
      if (due.empty())
        return;
      lock.unlock();
      for (const auto& d : due)
        report(d);
      lock.lock();
    }

    std::string label() const {
      return options.name.empty() ? std::string("an event loop")
                                  : fmt::format("event loop '{}'", options.name);
    }

    // Called with `mutex` held, from the monitor thread, while the loop thread is stuck.
    std::string describe_culprit() {
      if (loop_thread_slot) {
        std::lock_guard slot_lock(loop_thread_slot->mutex);
        const auto& call = loop_thread_slot->current;
        if (call.site)
          return fmt::format("culprit: {}; await it with co_await w.async_call(...) instead",
                             call.describe());
      }
      return "culprit: no smartasync-wrapped call was running inline on it; look for other "
             "blocking code in its handlers";
    }

    diagnostic make_report(std::chrono::steady_clock::duration blocked, const char* what,
                           const char* tail) const {
      const auto ms = std::chrono::duration<double, std::milli>(blocked).count();
      return diagnostic{
          .kind = diagnostic_kind::loop_blocked,
          .message = fmt::format("{} {} {:.1f} ms{} (threshold {} ms); {}", label(), what, ms, tail,
                                 options.threshold.count(), culprit),
          .name = options.name,
          .where = {},
          .duration = std::chrono::duration_cast<std::chrono::nanoseconds>(blocked),
          .thread = loop_thread};
    }
  };

  std::shared_ptr<state> state_;
  std::jthread monitor_;
};

} // namespace smartasync

#endif // SMARTASYNC_WATCHDOG_HPP
