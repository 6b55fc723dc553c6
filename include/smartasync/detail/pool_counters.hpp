// smartasync/detail/pool_counters.hpp - a pool's outcome counters and latency distributions.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_POOL_COUNTERS_HPP
#define SMARTASYNC_DETAIL_POOL_COUNTERS_HPP

#include "smartasync/config.hpp"
#include "smartasync/detail/latency_histogram.hpp"
#include "smartasync/detail/pool_op.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace SMARTASYNC_NAMESPACE::detail {

// When the callable of this worker's latest operation returned (pool_counters::note_returned):
// a worker going straight on to the next operation takes its start from it.
inline thread_local std::chrono::steady_clock::time_point last_return_{};

// What became of a pool's operations, read by blocking_pool::stats().
struct pool_outcomes {
  std::uint64_t completed = 0, failed = 0, cancelled = 0, expired = 0, timed_out = 0;
  std::uint64_t rejected = 0;
  std::uint64_t returned = 0; // callables that returned (or threw): started minus running
};

// Written by workers as operations start and end (by submitters and cancellers for the
// rarer outcomes), read by stats() and metrics() at any time. Every counter is an atomic of its
// own, kept off the lines the submitters and the pool lock use: each operation writes a few of
// them, and sharing a line with the queue would make every operation move it between cores.
//
// Counts are released as they change and acquired by outcomes(), which reads the outcomes
// first: whoever sees an operation's outcome (its handler ran) then sees it counted, and a
// snapshot never shows more outcomes than the pool's submissions read after it.
class alignas(cache_line_size) pool_counters {
public:
  // Just before `op` runs, outside the pool lock: records its queue wait (`now` may be the
  // previous operation's return, when that was after this one's submission), and from here on
  // op->enqueued_at_ holds when it started, which note_returned() times the run from.
  void start_running(pool_op* op, std::chrono::steady_clock::time_point now) noexcept {
    if (op->enqueued_at_ != std::chrono::steady_clock::time_point{}) {
      now = std::max(now, op->enqueued_at_);
      queue_wait_.record(now - op->enqueued_at_);
    }
    op->enqueued_at_ = now;
  }

  // The callable returned (or threw), before its outcome is handed on: whoever sees the
  // outcome then sees the counters and run times with this operation in them. The clock read
  // is the worker's one per operation: the worker takes the next operation's start from it.
  void note_returned(const pool_op* op) noexcept {
    const auto now = std::chrono::steady_clock::now();
    run_time_.record(now - op->enqueued_at_);
    last_return_ = now;
    returned_.fetch_add(1, std::memory_order_release);
  }
  void note_finished(bool failed) noexcept {
    (failed ? failed_ : completed_).fetch_add(1, std::memory_order_release);
  }
  void note_cancelled() noexcept { cancelled_.fetch_add(1, std::memory_order_release); }
  // Cancelled while running, after its deadline (with_timeout).
  void note_timed_out() noexcept { timed_out_.fetch_add(1, std::memory_order_release); }
  // Its deadline passed before it started: removed from the queue by a canceller, or reached
  // by a worker (`taken`: the queue counted it started, so it counts as returned at once).
  void note_expired(bool taken) noexcept {
    if (taken)
      note_returned_unrun();
    expired_.fetch_add(1, std::memory_order_release);
  }
  // A worker reached an operation whose deadline had passed and did not run it: it counts as
  // returned (the queue counted it started). Its outcome is counted by whoever completes it:
  // note_expired(false) by the worker, or by an abandoning canceller that claimed it first
  // (expired or cancelled).
  void note_returned_unrun() noexcept { returned_.fetch_add(1, std::memory_order_release); }
  // Refused at submission (queue full, or the pool stopped).
  void note_rejected() noexcept { rejected_.fetch_add(1, std::memory_order_release); }

  // Read before the queue's own counts (submitted, started): see the class comment.
  pool_outcomes outcomes() const noexcept {
    pool_outcomes o;
    o.completed = completed_.load(std::memory_order_acquire);
    o.failed = failed_.load(std::memory_order_acquire);
    o.cancelled = cancelled_.load(std::memory_order_acquire);
    o.expired = expired_.load(std::memory_order_acquire);
    o.timed_out = timed_out_.load(std::memory_order_acquire);
    o.rejected = rejected_.load(std::memory_order_acquire);
    o.returned = returned_.load(std::memory_order_acquire);
    return o;
  }

  latency_histogram::summary queue_wait() const noexcept { return queue_wait_.summarize(); }
  latency_histogram::summary run_time() const noexcept { return run_time_.summarize(); }
  // For an exposition of the whole distributions (metrics_registry).
  const latency_histogram& queue_wait_histogram() const noexcept { return queue_wait_; }
  const latency_histogram& run_time_histogram() const noexcept { return run_time_; }

private:
  std::atomic<std::uint64_t> completed_{0}, failed_{0}, cancelled_{0}, rejected_{0}, returned_{0};
  std::atomic<std::uint64_t> expired_{0}, timed_out_{0};
  latency_histogram queue_wait_, run_time_;
};

} // namespace SMARTASYNC_NAMESPACE::detail

#endif // SMARTASYNC_DETAIL_POOL_COUNTERS_HPP
