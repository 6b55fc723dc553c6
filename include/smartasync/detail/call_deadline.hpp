// smartasync/detail/call_deadline.hpp - the deadline an operation is initiated with and runs under.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_CALL_DEADLINE_HPP
#define SMARTASYNC_DETAIL_CALL_DEADLINE_HPP

#include "smartasync/config.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

namespace SMARTASYNC_NAMESPACE {

namespace detail {

using deadline_clock = std::chrono::steady_clock;
inline constexpr deadline_clock::time_point no_deadline = deadline_clock::time_point::max();

// The deadline of the operations being initiated on this thread right now: set by a
// with_deadline token (and with_timeout) only for the synchronous extent of the initiation, so
// an operation started there picks it up (offload_op::start) and nothing else ever sees it.
inline thread_local deadline_clock::time_point initiating_deadline_ = no_deadline;
// The deadline of the blocking call running on this thread, for this_call::deadline().
inline thread_local deadline_clock::time_point call_deadline_ = no_deadline;

// Set while with_timeout cancels the operation it bounds because its deadline passed, for the
// synchronous extent of that cancellation: a pool operation cancelled then counts and reports it
// as its deadline passing (deadline_expired while queued, timed_out while running) even when it
// was initiated without the deadline (an awaitable is initiated out of with_timeout's reach).
// The extent ends early when the bounded operation had already completed: the group then
// completes inside it and resumes the awaiting coroutine inline (end_deadline_cancellation).
inline thread_local bool cancelling_at_deadline_ = false;

// with_timeout's coroutine, resumed: the deadline's cancellation is over, and what it cancels
// from here on is its own business even while the timer's handler is still on the stack.
inline void end_deadline_cancellation() noexcept { cancelling_at_deadline_ = false; }

// now + budget, saturating at no_deadline instead of overflowing.
inline deadline_clock::time_point deadline_after(deadline_clock::duration budget) noexcept {
  const auto now = deadline_clock::now();
  if (budget > deadline_clock::duration::zero() && budget >= no_deadline - now)
    return no_deadline;
  return now + budget;
}

class deadline_cancellation_scope {
public:
  explicit deadline_cancellation_scope(bool at_deadline) noexcept
      : previous_(std::exchange(cancelling_at_deadline_, at_deadline)) {}
  deadline_cancellation_scope(const deadline_cancellation_scope&) = delete;
  deadline_cancellation_scope& operator=(const deadline_cancellation_scope&) = delete;
  ~deadline_cancellation_scope() { cancelling_at_deadline_ = previous_; }

private:
  bool previous_;
};

// Sets a deadline for what is initiated inside the scope; an enclosing one that is earlier
// still applies (a deadline can only get closer).
class initiation_deadline_scope {
public:
  explicit initiation_deadline_scope(deadline_clock::time_point deadline) noexcept
      : previous_(initiating_deadline_) {
    initiating_deadline_ = std::min(previous_, deadline);
  }
  initiation_deadline_scope(const initiation_deadline_scope&) = delete;
  initiation_deadline_scope& operator=(const initiation_deadline_scope&) = delete;
  ~initiation_deadline_scope() { initiating_deadline_ = previous_; }

private:
  deadline_clock::time_point previous_;
};

// Installs a running call's deadline on the worker for this_call::deadline().
class call_deadline_scope {
public:
  explicit call_deadline_scope(deadline_clock::time_point deadline) noexcept
      : previous_(std::exchange(call_deadline_, deadline)) {}
  call_deadline_scope(const call_deadline_scope&) = delete;
  call_deadline_scope& operator=(const call_deadline_scope&) = delete;
  ~call_deadline_scope() { call_deadline_ = previous_; }

private:
  deadline_clock::time_point previous_;
};

} // namespace detail

} // namespace smartasync

#endif // SMARTASYNC_DETAIL_CALL_DEADLINE_HPP
