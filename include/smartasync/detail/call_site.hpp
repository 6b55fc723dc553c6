// smartasync/detail/call_site.hpp - who a wrapped call is, for reports about it.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_CALL_SITE_HPP
#define SMARTASYNC_DETAIL_CALL_SITE_HPP

#include "smartasync/config.hpp"
#include "smartasync/diagnostics.hpp"

#include "smartasync/source_location.hpp"
#include "smartasync/detail/scheduler_set.hpp"

#include SMARTASYNC_ASIO_HEADER(detail/call_stack.hpp)
#include SMARTASYNC_ASIO_HEADER(detail/thread_context.hpp)
#include "smartasync/detail/format.hpp"

#if __has_include(<cxxabi.h>)
#include <cxxabi.h>
#endif

#include <algorithm>
#include <atomic>
#include <concepts>
#include <cstdint>
#include <cstdlib>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <typeinfo>
#include <utility>
#include <vector>

namespace SMARTASYNC_NAMESPACE {

/// What a wrapper's sync form does when called on a thread that is running an event loop.
enum class loop_call_policy {
  /// Run inline, then report through the diagnostics hook, saying how long the loop was
  /// blocked and where the call was made: the first time for each call expression, then at
  /// most once per set_report_repeat_interval() (60 s by default) with the count of calls in
  /// between.
  report,
  /// Throw smartasync::system_error(error::blocking_call_on_loop) without running the call.
  strict,
  /// Run inline and say nothing (for calls known to be short).
  silent,
};

namespace detail {

struct call_origin;

// The public calls that block their thread until other work has finished, each checked
// against loop_call_policy the same way (detail/loop_guard.hpp). What the report calls it and
// what it advises instead depend on which one it is.
enum class blocking_entry {
  wrapper,            // smart_async_function's sync form
  serial_lane,        // serial_lane::run
  thread_affine_lane, // thread_affine_lane::run
  sync_stream,        // sync_stream::next, begin, ++
  async_stream_send,  // stream_sender::send
};

struct call_site {
  std::string name;
  loop_call_policy on_loop;
  smartasync::source_location created_at;
  blocking_entry entry = blocking_entry::wrapper;

  call_site(std::string n, loop_call_policy policy, smartasync::source_location where,
            blocking_entry e = blocking_entry::wrapper)
      : name(std::move(n)), on_loop(policy), created_at(where), entry(e) {}

  // How reports say where the object was made.
  const char* made() const noexcept { return entry == blocking_entry::wrapper ? "wrapped" : "made"; }

  std::string display_name() const {
    if (!name.empty())
      return fmt::format("'{}'", name);
    return fmt::format("{} at {}:{}", made(), created_at.file_name(), created_at.line());
  }

  // "blocking call 'x'", "serial_lane::run() on lane 'x'", ...
  std::string subject() const {
    switch (entry) {
    case blocking_entry::serial_lane:
      return fmt::format("serial_lane::run() on lane {}", display_name());
    case blocking_entry::thread_affine_lane:
      return fmt::format("thread_affine_lane::run() on lane {}", display_name());
    case blocking_entry::sync_stream:
      return fmt::format("a blocking read (next(), begin(), ++) of sync_stream {}", display_name());
    case blocking_entry::async_stream_send:
      return fmt::format("a blocking send() into async_stream {}", display_name());
    case blocking_entry::wrapper:
      break;
    }
    return fmt::format("blocking call {}", display_name());
  }

  // The asynchronous spelling of the same call, for the advice in reports.
  const char* instead() const noexcept {
    switch (entry) {
    case blocking_entry::serial_lane:
    case blocking_entry::thread_affine_lane:
      return "co_await async_offload(lane, f) or async_offload(lane, f, token)";
    case blocking_entry::sync_stream:
      return "co_await stream.async_next()";
    case blocking_entry::async_stream_send:
      return "sender.try_send(item), which never blocks, or send() from a pool worker "
             "(co_await async_offload(pool, f))";
    case blocking_entry::wrapper:
      break;
    }
    return "co_await w.async_call(...) or w.async_call(..., token)";
  }

  std::string strict_message(const call_origin& origin) const;
  std::string report_message(const call_origin& origin, std::chrono::nanoseconds blocked,
                             std::uint64_t unreported) const;
};

// Where one sync call was made. The call expression is known when the wrapper knows its
// callable's parameter types (detail/call_signature.hpp); for a generic callable only the
// creation site is.
struct call_origin {
  smartasync::source_location called_at{};
  bool known = false;

  // The source location reports carry and are rate-limited by.
  const smartasync::source_location& where(const call_site& site) const noexcept {
    return known ? called_at : site.created_at;
  }

  // "called at f:12", plus the creation site when the name does not already say it.
  std::string describe(const call_site& site) const {
    const bool named = !site.name.empty();
    if (known)
      return named ? fmt::format("called at {}:{} ({} at {}:{})", called_at.file_name(),
                                 called_at.line(), site.made(), site.created_at.file_name(),
                                 site.created_at.line())
                   : fmt::format("called at {}:{}", called_at.file_name(), called_at.line());
    constexpr const char* unknown = "its call site is not known (the callable has auto or "
                                    "overloaded parameters, or the call leaves out a "
                                    "defaulted one)";
    return named ? fmt::format("{} at {}:{}; {}", site.made(), site.created_at.file_name(),
                               site.created_at.line(), unknown)
                 : std::string(unknown);
  }
};

// The call sites of every wrapper made, one per distinct (name, policy, creation site), kept
// for the life of the process: an operation names its wrapper in reports (a call that ignores
// its stop request, a handler that throws) by a plain pointer, also once the wrapper is gone,
// without a reference count per call.
inline const call_site* intern_call_site(std::string name, loop_call_policy policy,
                                         smartasync::source_location where,
                                         blocking_entry entry = blocking_entry::wrapper) {
  struct registry {
    std::mutex mutex;
    std::vector<std::unique_ptr<const call_site>> sites;
  };
  static registry& all = *new registry; // never destroyed: reports may come at exit
  std::lock_guard lock(all.mutex);
  for (const auto& site : all.sites)
    if (site->on_loop == policy && site->entry == entry && site->created_at.line() == where.line() &&
        site->created_at.column() == where.column() && site->name == name &&
        std::string_view(site->created_at.file_name()) == where.file_name())
      return site.get();
  all.sites.push_back(std::make_unique<const call_site>(std::move(name), policy, where, entry));
  return all.sites.back().get();
}

// What an operation runs, for reports about it: a wrapper's call site (interned, see above),
// or else the callable's type.
struct call_identity {
  const call_site* site = nullptr;
  const std::type_info* type = nullptr;
  // The serial_lane the call went through, when it did (interned as a wrapper's site is).
  const call_site* lane = nullptr;

  // "blocking call 'search' (wrapped at f.cpp:12)", "callable main::{lambda()#1}", either
  // followed by " on serial_lane 'ledger' (made at f.cpp:20)".
  std::string describe() const {
    std::string text;
    if (site)
      text = site->name.empty()
                 ? fmt::format("blocking call {}", site->display_name())
                 : fmt::format("blocking call {} (wrapped at {}:{})", site->display_name(),
                               site->created_at.file_name(), site->created_at.line());
    else if (type)
      text = fmt::format("callable {}", readable_type_name(*type));
    else
      text = "an unknown callable";
    if (lane)
      text += lane->name.empty()
                  ? fmt::format(" on serial_lane {}", lane->display_name())
                  : fmt::format(" on serial_lane {} (made at {}:{})", lane->display_name(),
                                lane->created_at.file_name(), lane->created_at.line());
    return text;
  }

  static std::string readable_type_name(const std::type_info& type) {
#if __has_include(<cxxabi.h>)
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> name(
        abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free);
    if (status == 0 && name)
      return name.get();
#endif
    return type.name();
  }
};

// A pool operation's work says who it is: a wrapper's call exposes its site; the adapters that
// wrap a callable (a lane's, abandon_on_cancel's) expose it as `work`.
template <typename Work>
call_identity identity_of(const Work& work) noexcept {
  if constexpr (requires { { work.site() } -> std::convertible_to<const call_site*>; }) {
    return {work.site(), &typeid(Work), nullptr};
  } else if constexpr (requires { work.work; }) {
    call_identity who = identity_of(work.work);
    if constexpr (requires { { work.lane_site() } -> std::convertible_to<const call_site*>; })
      who.lane = work.lane_site();
    return who;
  } else {
    return {nullptr, &typeid(Work), nullptr};
  }
}

inline std::string call_site::strict_message(const call_origin& origin) const {
  return fmt::format("smartasync: {} was called synchronously on a thread running an event "
                     "loop (loop_call_policy::strict), {}; await it instead: {}",
                     subject(), origin.describe(*this), instead());
}

inline std::string call_site::report_message(const call_origin& origin,
                                             std::chrono::nanoseconds blocked,
                                             std::uint64_t unreported) const {
  const auto ms = std::chrono::duration<double, std::milli>(blocked).count();
  const std::string thread = thread_text(std::this_thread::get_id());
  // A wrapper's call runs on the loop's thread; a lane or a stream may run the work elsewhere
  // while the loop's thread waits for it.
  const std::string blocked_text =
      entry == blocking_entry::wrapper
          ? fmt::format("ran for {:.3f} ms inline on event-loop thread {}", ms, thread)
          : fmt::format("blocked event-loop thread {} for {:.3f} ms", thread, ms);
  return fmt::format("{} {}, {}; every other handler on that loop waited. Await it instead: "
                     "{}. (Reported again at most once per repeat interval{}.)",
                     subject(), blocked_text, origin.describe(*this), instead(),
                     more_since(unreported));
}

// What this thread is running inline on its event loop, published for the blocked-loop
// watchdog, which reads it from its own thread (hence the mutex: the site must stay valid
// while the watchdog copies its name).
struct inline_call_slot {
  struct entry {
    const call_site* site = nullptr;
    call_origin origin{};
    std::chrono::steady_clock::time_point since;        // when the call started
    const asio::detail::thread_context* loop = nullptr; // the scheduler this thread ran it on

    // "blocking call 'x' running inline, called at f:12", for the watchdog's reports.
    std::string describe() const {
      return fmt::format("{} {}, {}", site->subject(),
                         site->entry == blocking_entry::wrapper ? "running inline" : "in progress",
                         origin.describe(*site));
    }
  };
  std::mutex mutex;
  entry current;
  const std::thread::id thread = std::this_thread::get_id();
};

// Every thread's slot. A thread stuck in a handler never runs the watchdog's heartbeat, which
// on a loop with several threads the others keep running; so the watchdog also looks at what
// each thread of its loop is running inline, and for how long.
struct inline_call_slots {
  std::mutex mutex;
  std::vector<std::weak_ptr<inline_call_slot>> slots;

  static inline_call_slots& instance() {
    static inline_call_slots all;
    return all;
  }
  std::vector<std::shared_ptr<inline_call_slot>> live() {
    std::vector<std::shared_ptr<inline_call_slot>> result;
    std::lock_guard lock(mutex);
    for (const auto& weak : slots)
      if (auto slot = weak.lock())
        result.push_back(std::move(slot));
    return result;
  }
};

// The schedulers that loop_watchdogs watch. An inline call records which of them its thread is
// running, for the watchdog of that loop to name it.
struct watched_loops {
  static scheduler_set& instance() {
    static scheduler_set loops;
    return loops;
  }
};

inline const std::shared_ptr<inline_call_slot>& this_thread_inline_slot() {
  thread_local const std::shared_ptr<inline_call_slot> slot = [] {
    auto created = std::make_shared<inline_call_slot>();
    auto& all = inline_call_slots::instance();
    std::lock_guard lock(all.mutex);
    std::erase_if(all.slots, [](const auto& weak) { return weak.expired(); });
    all.slots.push_back(created);
    return created;
  }();
  return slot;
}

// Marks an inline call on a loop thread and reports it (rate-limited per site) when it ends.
class inline_call_scope {
public:
  inline_call_scope(const call_site& site, const call_origin& origin)
      : site_(site), origin_(origin), slot_(*this_thread_inline_slot()),
        start_(std::chrono::steady_clock::now()) {
    const auto* loop = watched_loops::instance().running_here();
    std::lock_guard lock(slot_.mutex);
    previous_ = std::exchange(slot_.current, {&site_, origin_, start_, loop});
  }
  inline_call_scope(const inline_call_scope&) = delete;
  inline_call_scope& operator=(const inline_call_scope&) = delete;

  ~inline_call_scope() {
    const auto blocked = std::chrono::steady_clock::now() - start_;
    {
      std::lock_guard lock(slot_.mutex);
      slot_.current = previous_;
    }
    try {
      if (site_.on_loop != loop_call_policy::report)
        return;
      // Per call expression and wrapper: two handlers calling one wrapper are two mistakes to
      // fix, and so are two wrappers called from one function template.
      const auto& where = origin_.where(site_);
      const auto unreported =
          report_due(diagnostic_kind::blocking_call_on_loop, where, &site_.created_at);
      if (!unreported)
        return;
      report(diagnostic{
          .kind = diagnostic_kind::blocking_call_on_loop,
          .message = site_.report_message(
              origin_, std::chrono::duration_cast<std::chrono::nanoseconds>(blocked), *unreported),
          .name = site_.name,
          .where = where,
          .duration = std::chrono::duration_cast<std::chrono::nanoseconds>(blocked),
          .thread = std::this_thread::get_id(),
          .created_at = site_.created_at});
    } catch (...) {
      // A report must never turn a successful call into a failure.
    }
  }

private:
  const call_site& site_;
  call_origin origin_;
  inline_call_slot& slot_;
  std::chrono::steady_clock::time_point start_;
  inline_call_slot::entry previous_;
};

} // namespace detail
} // namespace smartasync

#endif // SMARTASYNC_DETAIL_CALL_SITE_HPP
