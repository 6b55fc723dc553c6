// smartasync/diagnostics.hpp - the one place where smartasync reports misuse.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DIAGNOSTICS_HPP
#define SMARTASYNC_DIAGNOSTICS_HPP

#include "smartasync/config.hpp"

#include "smartasync/detail/format.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <map>
#include <optional>
#include <sstream>
#include "smartasync/source_location.hpp"
#include <string>
#include <thread>
#include <tuple>
#include <utility>

namespace SMARTASYNC_NAMESPACE {

/// What a diagnostic is about.
enum class diagnostic_kind {
  /// A wrapped blocking call ran synchronously on an event-loop thread.
  blocking_call_on_loop,
  /// block_on waited on one event loop from a thread that runs another.
  block_on_from_loop,
  /// The blocked-loop watchdog saw an event loop miss its heartbeat.
  loop_blocked,
  /// A completion handler with no associated executor threw on a pool worker.
  handler_exception,
  /// A running call was cancelled and keeps running long after its stop request (its caller
  /// waits for it): see pool_options::report_ignored_stop_after.
  stop_ignored,
  /// A call has been running on a pool worker for longer than
  /// pool_options::report_slow_call_after (the worker watchdog).
  slow_call,
};

/// A report from smartasync. `message` is complete and human-readable; the other fields
/// carry the same facts for programs that route reports to their own logger.
struct diagnostic {
  /// What happened.
  diagnostic_kind kind{};
  /// The whole report, human-readable.
  std::string message{};
  /// The wrapped function's name ("" when unnamed or not applicable).
  std::string name{};
  /// Where the misuse happened: the call expression of a wrapped call made on (or stuck on) an
  /// event loop (its creation site when the callable is generic, see smart_async_function's sync
  /// form), or the block_on call.
  smartasync::source_location where{};
  /// How long the offending call blocked (zero when not measured).
  std::chrono::nanoseconds duration{};
  /// The thread the report is about.
  std::thread::id thread{};
  /// Where the wrapped function was made (smart_async's call), for reports about one.
  smartasync::source_location created_at{};
};

/// Receives diagnostics. It may be called from any thread, concurrently.
using diagnostics_handler = std::function<void(const diagnostic&)>;

namespace detail {
// A thread id as std::thread::id's operator<< writes it, for report messages: <fmt/std.h>
// formats it too, but costs every includer more compile time than the rest of fmt.
inline std::string thread_text(std::thread::id id) {
  std::ostringstream out;
  out << id;
  return out.str();
}

struct diagnostics_registry {
  std::mutex mutex;
  std::shared_ptr<const diagnostics_handler> handler;

  // Never destroyed: reports come from static destructors and exit handlers too (the default
  // pool's, at exit), whatever the order in which the statics were first used.
  static diagnostics_registry& instance() {
    static diagnostics_registry& registry = *new diagnostics_registry;
    return registry;
  }
};

// Misuse in a hot loop must not flood the handler, and a long-running service must keep
// telling its operators: a site is reported the first time, then at most once per
// repeat_interval, with the number of occurrences left unreported in between.
struct report_limiter {
  struct site_state {
    std::chrono::steady_clock::time_point last_report;
    std::uint64_t unreported = 0;
  };
  std::mutex mutex;
  // Keyed by text ("kind|file:line:column|file:line:column"): a map over a tuple of strings
  // and numbers costs every translation unit a noticeable share of its compile time.
  std::map<std::string, site_state, std::less<>> sites;
  std::chrono::steady_clock::duration repeat_interval = std::chrono::seconds(60);

  static report_limiter& instance() {
    static report_limiter limiter;
    return limiter;
  }
};

// When this occurrence of `kind` at `where` (and `also`, when given: a second location that
// tells occurrences at one place apart) is to be reported: how many occurrences there were
// since the last report (0 the first time). Empty when it is to be counted, not reported.
// report_due for any key that tells occurrences apart (one per key is reported first, then at
// most one per repeat interval).
inline std::optional<std::uint64_t> report_due_key(std::string key) {
  auto& limiter = report_limiter::instance();
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(limiter.mutex);
  auto [it, first] = limiter.sites.try_emplace(std::move(key));
  auto& site = it->second;
  if (!first && now - site.last_report < limiter.repeat_interval) {
    ++site.unreported;
    return std::nullopt;
  }
  site.last_report = now;
  return std::exchange(site.unreported, 0);
}

inline std::optional<std::uint64_t> report_due(diagnostic_kind kind,
                                               const smartasync::source_location& where,
                                               const smartasync::source_location* also = nullptr) {
  auto key = std::to_string(static_cast<int>(kind));
  auto append = [&key](const smartasync::source_location& at) {
    key += '|';
    key += at.file_name();
    key += ':';
    key += std::to_string(at.line());
    key += ':';
    key += std::to_string(at.column());
  };
  append(where);
  if (also)
    append(*also);
  return report_due_key(std::move(key));
}

// " (3 more since the last report)", or "" when there were none.
inline std::string more_since(std::uint64_t unreported) {
  return unreported == 0
             ? std::string()
             : fmt::format(" ({} more since the last report of this site)", unreported);
}

inline void default_diagnostics_handler(const diagnostic& d) {
  fmt::print(stderr, "smartasync: {}\n", d.message);
  std::fflush(stderr);
}

} // namespace detail

/// Routes every diagnostic to `handler` and returns the previous one.
/**
 * Pass an empty handler to restore the default, which prints one line to stderr.
 *
 * @par Thread safety
 * Safe to call concurrently with reports: a report in flight finishes with the old handler.
 */
inline diagnostics_handler set_diagnostics_handler(diagnostics_handler handler) {
  auto& registry = detail::diagnostics_registry::instance();
  auto next = handler ? std::make_shared<const diagnostics_handler>(std::move(handler)) : nullptr;
  std::lock_guard lock(registry.mutex);
  auto previous = std::exchange(registry.handler, std::move(next));
  return previous ? *previous : diagnostics_handler{};
}

/// Sets how often a misuse at one site (diagnostic_kind::blocking_call_on_loop,
/// block_on_from_loop), or a slow call of one wrapper on one pool (diagnostic_kind::slow_call),
/// is reported again, and returns the previous setting.
/**
 * The first occurrence at a site is always reported; later ones at most once per interval
 * (default: 60 s), each report saying how many occurrences went unreported since the last.
 * Zero reports every occurrence.
 */
inline std::chrono::steady_clock::duration
set_report_repeat_interval(std::chrono::steady_clock::duration interval) {
  auto& limiter = detail::report_limiter::instance();
  std::lock_guard lock(limiter.mutex);
  return std::exchange(limiter.repeat_interval, interval);
}

/// Delivers `d` to the installed handler (or the default one).
/**
 * Public and stable: smartasync reports through it, and so may code built on smartasync that
 * wants its own misuse reports to reach the same hook (an adapter of another blocking API, a
 * test of a diagnostics handler). It does not rate-limit; set `kind` to the closest
 * diagnostic_kind and say what and where in `message`.
 *
 * A handler that throws is not allowed to take the caller down: the exception is swallowed
 * and the report goes to the default handler instead.
 */
inline void report(const diagnostic& d) noexcept {
  auto& registry = detail::diagnostics_registry::instance();
  std::shared_ptr<const diagnostics_handler> handler;
  {
    std::lock_guard lock(registry.mutex);
    handler = registry.handler;
  }
  try {
    if (handler)
      (*handler)(d);
    else
      detail::default_diagnostics_handler(d);
  } catch (...) {
    try {
      detail::default_diagnostics_handler(d);
    } catch (...) {
    }
  }
}

} // namespace smartasync

// Formats the message; a format specification applies to it as to any string ("{:>60}").
template <>
struct fmt::formatter<smartasync::diagnostic> {
  // The specification is kept as text and applied with fmt's own string formatting, which
  // fmt/core.h provides (the inherited string formatter would need fmt/format.h).
  std::string_view spec;

  constexpr auto parse(fmt::format_parse_context& ctx) {
    auto end = ctx.begin();
    while (end != ctx.end() && *end != '}')
      ++end;
    spec = std::string_view(ctx.begin(), static_cast<std::size_t>(end - ctx.begin()));
    return end;
  }

  template <typename FormatContext>
  auto format(const smartasync::diagnostic& d, FormatContext& ctx) const {
    if (spec.empty())
      return fmt::format_to(ctx.out(), "{}", d.message);
    return fmt::format_to(ctx.out(), fmt::runtime("{:" + std::string(spec) + "}"), d.message);
  }
};

#endif // SMARTASYNC_DIAGNOSTICS_HPP
