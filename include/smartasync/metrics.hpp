// smartasync/metrics.hpp - what a blocking_pool reports about itself.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_METRICS_HPP
#define SMARTASYNC_METRICS_HPP

#include "smartasync/config.hpp"

#include "smartasync/detail/format.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace SMARTASYNC_NAMESPACE {

// The deprecated fields below would warn in the implicit constructors of every user's copy.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

/// A snapshot of a pool's counters; every field is read without stopping the pool.
struct pool_stats {
  /// Worker threads now. A fixed pool always has min_threads == max_threads == threads.
  std::size_t threads = 0;
  /// An elastic pool's bounds (pool_options::threads and max_threads).
  std::size_t min_threads = 0;
  /// The most workers an elastic pool may have (pool_options::max_threads).
  std::size_t max_threads = 0;
  /// Workers an elastic pool started beyond its minimum, and idle ones it retired, ever.
  std::uint64_t threads_added = 0;
  /// Idle workers an elastic pool retired, ever.
  std::uint64_t threads_retired = 0;
  /// How many admitted operations may wait for a worker (pool_options::queue_capacity).
  std::size_t queue_capacity = 0;
  /// Admitted operations waiting for a worker (at most queue_capacity).
  std::size_t queued = 0;
  /// Event-loop operations parked beyond the capacity (full_policy::wait).
  std::size_t parked = 0;
  /// Operations running on a worker now.
  std::size_t running = 0;
  /// Threads blocked in a submission, waiting for space (full_policy::wait).
  std::size_t blocked_submitters = 0;
  /// Submissions ever made: accepted ones, refused ones (also counted in rejected), and nested
  /// calls run inline on a worker.
  std::uint64_t submitted = 0;
  /// Operations whose callable returned (completed) or threw (failed), not cancelled while it
  /// ran (those count as cancelled or timed_out).
  std::uint64_t completed = 0;
  /// Operations whose callable threw (see completed).
  std::uint64_t failed = 0;
  /// Operations cancelled queued or running, or shut down, other than the two kinds below (one
  /// shut down before its deadline whose handler ran after it says deadline_expired).
  std::uint64_t cancelled = 0;
  /// Operations whose deadline (with_deadline, with_timeout) passed while they were still
  /// queued: they never started, and completed with error::deadline_expired.
  std::uint64_t expired = 0;
  /// Operations cancelled while running, after their deadline had passed (with_timeout).
  std::uint64_t timed_out = 0;
  /// Submissions refused with error::queue_full or error::pool_stopped.
  std::uint64_t rejected = 0;
  /// The former name of `parked`, kept until 2.0 (a lane's "waiting" meant queued).
  [[deprecated("use parked")]] std::size_t waiting = 0;
  /// Calls that ran on a worker for longer than pool_options::report_slow_call_after, ever
  /// (each counted once, when it reaches the threshold, whether its report was rate-limited
  /// or not).
  std::uint64_t slow_calls = 0;
};

#pragma GCC diagnostic pop

/// A latency distribution: count, median, 99th percentile (within 12.5%) and exact maximum.
struct latency_summary {
  /// How many durations were recorded.
  std::uint64_t count = 0;
  /// The median, the 99th percentile (both within 12.5%) and the exact maximum.
  ///@{
  std::chrono::nanoseconds p50{}, p99{}, max{};
  ///@}
};

/// Counters plus the distributions of time spent queued and time spent running.
struct pool_metrics {
  /// The pool's counters (pool_stats).
  pool_stats counts;
  /// From submission to a worker picking the operation up; every accepted operation that ran
  /// (one clock read on the submitting thread; the worker's side reuses its run-time clock
  /// read).
  latency_summary queue_wait;
  /// The callable's run time on the worker; every operation. A worker that goes straight from
  /// one operation to the next reads the clock once between them, so on a busy worker this
  /// includes its own bookkeeping (about 0.1 us), which only trivial callables would notice.
  latency_summary run_time;
};

namespace detail {
// 1234 ns -> "1.23us": short, fixed units for one-line summaries.
inline std::string short_duration(std::chrono::nanoseconds d) {
  const double ns = static_cast<double>(d.count());
  if (ns < 1e3)
    return fmt::format("{:.0f}ns", ns);
  if (ns < 1e6)
    return fmt::format("{:.3g}us", ns / 1e3);
  if (ns < 1e9)
    return fmt::format("{:.3g}ms", ns / 1e6);
  return fmt::format("{:.3g}s", ns / 1e9);
}
} // namespace detail

} // namespace smartasync

template <>
struct fmt::formatter<smartasync::pool_stats> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(const smartasync::pool_stats& s, FormatContext& ctx) const {
    auto out = fmt::format_to(ctx.out(), "threads={}", s.threads);
    if (s.max_threads > s.min_threads) // elastic
      out = fmt::format_to(out, " ({}..{}, added={} retired={})", s.min_threads, s.max_threads,
                           s.threads_added, s.threads_retired);
    return fmt::format_to(out,
                          " capacity={} queued={} parked={} running={} submitted={} "
                          "completed={} failed={} cancelled={} expired={} timed_out={} rejected={} "
                          "slow_calls={}",
                          s.queue_capacity, s.queued, s.parked, s.running, s.submitted,
                          s.completed, s.failed, s.cancelled, s.expired, s.timed_out, s.rejected,
                          s.slow_calls);
  }
};

template <>
struct fmt::formatter<smartasync::latency_summary> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(const smartasync::latency_summary& l, FormatContext& ctx) const {
    using smartasync::detail::short_duration;
    return fmt::format_to(ctx.out(), "p50={} p99={} max={}", short_duration(l.p50),
                          short_duration(l.p99), short_duration(l.max));
  }
};

template <>
struct fmt::formatter<smartasync::pool_metrics> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(const smartasync::pool_metrics& m, FormatContext& ctx) const {
    return fmt::format_to(ctx.out(), "{} | wait {} | run {}", m.counts, m.queue_wait, m.run_time);
  }
};

#endif // SMARTASYNC_METRICS_HPP
