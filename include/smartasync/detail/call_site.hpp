// smartasync/detail/call_site.hpp - who a wrapped call is, for reports about it.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_CALL_SITE_HPP
#define SMARTASYNC_DETAIL_CALL_SITE_HPP

#include "smartasync/config.hpp"
#include "smartasync/diagnostics.hpp"

#include <fmt/format.h>

#include <chrono>
#include <memory>
#include <mutex>
#include "smartasync/source_location.hpp"
#include <string>
#include <thread>
#include <utility>

namespace SMARTASYNC_NAMESPACE {

/// What a wrapper's sync form does when called on a thread that is running an event loop.
enum class loop_call_policy {
  /// Run inline, then report through the diagnostics hook, saying how long the loop was
  /// blocked: the first time for each wrapper creation site, then at most once per
  /// set_report_repeat_interval() (60 s by default) with the count of calls in between.
  report,
  /// Throw smartasync::system_error(error::blocking_call_on_loop) without running the call.
  strict,
  /// Run inline and say nothing (for calls known to be short).
  silent,
};

namespace detail {

struct call_site {
  std::string name;
  loop_call_policy on_loop;
  smartasync::source_location created_at;

  call_site(std::string n, loop_call_policy policy, smartasync::source_location where)
      : name(std::move(n)), on_loop(policy), created_at(where) {}

  std::string display_name() const {
    if (!name.empty())
      return fmt::format("'{}'", name);
    return fmt::format("wrapped at {}:{}", created_at.file_name(), created_at.line());
  }

  std::string strict_message() const {
    return fmt::format("smartasync: blocking call {} was called synchronously on a thread "
                       "running an event loop (loop_call_policy::strict); await it instead: "
                       "co_await w.async(...) or w.async(..., token)",
                       display_name());
  }

};

// What this thread is running inline on its event loop, published for the blocked-loop
// watchdog, which reads it from its own thread (hence the mutex: the site must stay valid
// while the watchdog copies its name).
struct inline_call_slot {
  std::mutex mutex;
  const call_site* site = nullptr;
};

inline const std::shared_ptr<inline_call_slot>& this_thread_inline_slot() {
  thread_local const std::shared_ptr<inline_call_slot> slot =
      std::make_shared<inline_call_slot>();
  return slot;
}

// Marks an inline call on a loop thread and reports it (rate-limited per site) when it ends.
class inline_call_scope {
public:
  explicit inline_call_scope(const call_site& site)
      : site_(site), slot_(*this_thread_inline_slot()), start_(std::chrono::steady_clock::now()) {
    std::lock_guard lock(slot_.mutex);
    previous_ = std::exchange(slot_.site, &site_);
  }
  inline_call_scope(const inline_call_scope&) = delete;
  inline_call_scope& operator=(const inline_call_scope&) = delete;

  ~inline_call_scope() {
    const auto blocked = std::chrono::steady_clock::now() - start_;
    {
      std::lock_guard lock(slot_.mutex);
      slot_.site = previous_;
    }
    try {
      if (site_.on_loop != loop_call_policy::report)
        return;
      const auto unreported = report_due(diagnostic_kind::blocking_call_on_loop, site_.created_at);
      if (!unreported)
        return;
      const auto ms = std::chrono::duration<double, std::milli>(blocked).count();
      report(diagnostic{
          .kind = diagnostic_kind::blocking_call_on_loop,
          .message = fmt::format(
              "blocking call {} ran for {:.3f} ms inline on event-loop thread {}; every other "
              "handler on that loop waited. Await it instead: co_await w.async(...) or "
              "w.async(..., token). (Created at {}:{}; reported again at most once per "
              "repeat interval{}.)",
              site_.display_name(), ms, std::this_thread::get_id(), site_.created_at.file_name(),
              site_.created_at.line(), more_since(*unreported)),
          .name = site_.name,
          .where = site_.created_at,
          .duration = std::chrono::duration_cast<std::chrono::nanoseconds>(blocked),
          .thread = std::this_thread::get_id()});
    } catch (...) {
      // A report must never turn a successful call into a failure.
    }
  }

private:
  const call_site& site_;
  inline_call_slot& slot_;
  const call_site* previous_ = nullptr;
  std::chrono::steady_clock::time_point start_;
};

} // namespace detail
} // namespace smartasync

#endif // SMARTASYNC_DETAIL_CALL_SITE_HPP
