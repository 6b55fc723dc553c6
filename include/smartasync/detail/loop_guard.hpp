// smartasync/detail/loop_guard.hpp - the one loop check of every blocking entry point.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_LOOP_GUARD_HPP
#define SMARTASYNC_DETAIL_LOOP_GUARD_HPP

#include "smartasync/config.hpp"
#include "smartasync/detail/scheduler_set.hpp"
#include "smartasync/detail/call_site.hpp"
#include "smartasync/error.hpp"
#include "smartasync/this_thread.hpp"

#include <optional>

namespace SMARTASYNC_NAMESPACE {
namespace detail {

// Held for the extent of a call that blocks its thread (a wrapper's sync form, a lane's run(),
// a stream's blocking read), so that all of them treat an event-loop thread alike: under
// loop_call_policy::strict the constructor throws error::blocking_call_on_loop before anything
// runs; otherwise the call is published for the blocked-loop watchdog and, under `report`,
// reported when it ends (rate-limited per call expression and object), with how long the loop
// was blocked. A context declared with allow_blocking(), or a thread running no loop, passes
// for the price of one thread-local load.
class loop_guard {
public:
  loop_guard(const call_site& site, const call_origin& origin) {
    if (this_thread::is_running_event_loop()) [[unlikely]]
      enter(site, origin);
  }
  loop_guard(const loop_guard&) = delete;
  loop_guard& operator=(const loop_guard&) = delete;

private:
  void enter(const call_site& site, const call_origin& origin) {
    if (blocking_contexts::instance().contains_this_thread())
      return; // a context declared with allow_blocking()
    if (site.on_loop == loop_call_policy::strict)
      throw system_error(error::blocking_call_on_loop, site.strict_message(origin));
    scope_.emplace(site, origin);
  }

  std::optional<inline_call_scope> scope_;
};

} // namespace detail
} // namespace smartasync

#endif // SMARTASYNC_DETAIL_LOOP_GUARD_HPP
