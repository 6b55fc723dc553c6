// smartasync/metrics_registry.hpp - pools and lanes by name, exposed for a metrics scraper.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_METRICS_REGISTRY_HPP
#define SMARTASYNC_METRICS_REGISTRY_HPP

#include "smartasync/config.hpp"
#include "smartasync/blocking_pool.hpp"
#include "smartasync/metrics.hpp"
#include "smartasync/serial_lane.hpp"
#include "smartasync/detail/latency_histogram.hpp"
#include "smartasync/detail/pool_core.hpp"

#include "smartasync/detail/format.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <iterator>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace SMARTASYNC_NAMESPACE {

/// The pools and lanes a program names for monitoring, and their metrics in the Prometheus
/// text exposition format (version 0.0.4), with no dependency beyond fmt.
/**
 * Registration is explicit: a program adds the pools and lanes it wants watched, each under
 * a name that becomes the `pool` or `lane` label. Not every pool is worth a time series (a
 * test's, a short-lived one), a lane is often one of thousands (keyed_lanes: one label value
 * each would swamp the monitoring system), and a label must be stable from one run of the
 * program to the next, which a creation site is not. An entry goes away by itself when its
 * pool or lane is destroyed (or with remove()); the registry never keeps either alive, and
 * may outlive both.
 *
 * Families (every sample labelled `pool="NAME"` or `lane="NAME"`):
 * - pools, gauges: `smartasync_pool_threads`, `_queue_capacity`, `_queued`, `_parked`,
 *   `_running`, `_blocked_submitters`; counters: `smartasync_pool_submitted_total`,
 *   `_completed_total`, `_failed_total`, `_cancelled_total`, `_expired_total`,
 *   `_timed_out_total`, `_rejected_total`, `_slow_calls_total`, `_threads_added_total`,
 *   `_threads_retired_total`; histograms: `smartasync_pool_queue_wait_seconds`,
 *   `smartasync_pool_run_time_seconds`.
 * - lanes, gauges: `smartasync_lane_queued`, `_busy`, `_blocked_submitters`; counters:
 *   `smartasync_lane_submitted_total`, `_rejected_total`, `_cancelled_total`; histogram:
 *   `smartasync_lane_turn_wait_seconds`.
 *
 * Each histogram has 15 buckets a factor of 4 apart, `le` from 255 ns to 68.7 s (exactly
 * 2^(8+2j) - 1 ns, boundaries of the pool's own histograms, so every bucket count is exact),
 * plus `+Inf`, `_sum` and `_count`. The meaning of every field is that of pool_stats,
 * pool_metrics and lane_stats.
 *
 * @par Thread safety
 * Every member function may be called concurrently. A scrape takes each pool's counters as
 * pool.metrics() does: no pool is stopped, and a registered pool may be destroyed meanwhile
 * (its destructor waits for the scrape of that pool to finish).
 *
 * @par Example
 * @code
 * smartasync::metrics_registry metrics;
 * metrics.add("search", pool);
 * metrics.add("ledger writes", ledger_lane);
 * // GET /metrics, answered with Content-Type metrics_registry::content_type:
 * std::string body = metrics.prometheus_text();
 * @endcode
 */
class metrics_registry {
public:
  /// The Content-Type of the exposition, for an HTTP answer.
  static constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

  metrics_registry() = default;
  metrics_registry(const metrics_registry&) = delete;
  metrics_registry& operator=(const metrics_registry&) = delete;

  /// Exposes `pool` under `name` (the `pool` label) until the pool is destroyed or the name
  /// removed.
  /// @throws std::invalid_argument if `name` is empty or already names a live entry.
  void add(std::string name, const blocking_pool& pool) {
    auto lifeline = detail::pool_access::lifeline(pool);
    std::lock_guard lock(mutex_);
    check_new_name_locked(name);
    std::string label = make_label("pool", name);
    pools_.push_back({std::move(name), std::move(label), std::move(lifeline)});
  }

  /// Exposes `lane` under `name` (the `lane` label) until the lane is destroyed or the name
  /// removed. (Its calls run on its pool, whose run times they are part of.)
  /// @throws std::invalid_argument if `name` is empty or already names a live entry.
  void add(std::string name, const serial_lane& lane) {
    auto core = detail::lane_access::core(lane);
    std::lock_guard lock(mutex_);
    check_new_name_locked(name);
    std::string label = make_label("lane", name);
    lanes_.push_back({std::move(name), std::move(label), std::move(core)});
  }

  /// Exposes a thread_affine_lane: its one-thread pool, under the `pool` label.
  /// @throws std::invalid_argument if `name` is empty or already names a live entry.
  void add(std::string name, thread_affine_lane& lane) { add(std::move(name), lane.pool()); }

  /// Stops exposing `name`; false when no live entry has it.
  bool remove(std::string_view name) {
    std::lock_guard lock(mutex_);
    prune_locked();
    const auto pools = std::erase_if(pools_, [&](const pool_entry& e) { return e.name == name; });
    const auto lanes = std::erase_if(lanes_, [&](const lane_entry& e) { return e.name == name; });
    return pools + lanes > 0;
  }

  /// How many pools and lanes are exposed (destroyed ones are no longer counted).
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    prune_locked();
    return pools_.size() + lanes_.size();
  }

  /// Appends the exposition of every live entry to `out` (reusing its capacity scrape after
  /// scrape).
  void write_prometheus(std::string& out) const {
    std::lock_guard lock(mutex_);
    snapshot_locked();
    write_pools(out);
    write_lanes(out);
    last_size_ = out.size();
    prune_locked(); // after the samples, which point into the entries, are written
  }

  /// The exposition of every live entry.
  std::string prometheus_text() const {
    std::string out;
    {
      // The last scrape's size: one allocation instead of a doubling series of copies.
      std::lock_guard lock(mutex_);
      out.reserve(last_size_ + last_size_ / 8);
    }
    write_prometheus(out);
    return out;
  }

private:
  using cumulative = detail::latency_histogram::cumulative;

  struct pool_entry {
    std::string name;
    std::string label; // pool="NAME", escaped
    std::shared_ptr<detail::pool_lifeline> lifeline;
  };
  struct lane_entry {
    std::string name;
    std::string label; // lane="NAME", escaped
    std::shared_ptr<detail::lane_core> core;
  };
  struct pool_sample {
    const std::string* label;
    pool_stats stats;
    cumulative queue_wait, run_time;
  };
  struct lane_sample {
    const std::string* label;
    lane_stats stats;
    cumulative turn_wait;
  };

  static bool alive(const pool_entry& e) noexcept {
    return e.lifeline->pool.load(std::memory_order_acquire) != nullptr;
  }
  static bool alive(const lane_entry& e) { return !e.core->closed(); }

  void prune_locked() const {
    std::erase_if(pools_, [](const pool_entry& e) { return !alive(e); });
    std::erase_if(lanes_, [](const lane_entry& e) { return !alive(e); });
  }

  void check_new_name_locked(const std::string& name) const {
    if (name.empty())
      throw std::invalid_argument("smartasync::metrics_registry: a pool or lane needs a name");
    prune_locked();
    const bool taken =
        std::any_of(pools_.begin(), pools_.end(), [&](const auto& e) { return e.name == name; }) ||
        std::any_of(lanes_.begin(), lanes_.end(), [&](const auto& e) { return e.name == name; });
    if (taken)
      throw std::invalid_argument(fmt::format(
          "smartasync::metrics_registry: the name {:?} is taken; each pool and lane needs its own",
          name));
  }

  // `key="value"`, the value escaped as the text format requires (\\, \", \n).
  static std::string make_label(std::string_view key, std::string_view value) {
    std::string label(key);
    label += "=\"";
    for (const char c : value) {
      if (c == '\\')
        label += "\\\\";
      else if (c == '"')
        label += "\\\"";
      else if (c == '\n')
        label += "\\n";
      else
        label += c;
    }
    label += '"';
    return label;
  }

  // Reads every live entry once (the scrape's one look at each).
  void snapshot_locked() const {
    pool_samples_.clear();
    lane_samples_.clear();
    for (const pool_entry& e : pools_) {
      // Under the lifeline's mutex, the pool cannot finish its destructor meanwhile.
      std::lock_guard alive_lock(e.lifeline->mutex);
      const blocking_pool* pool = e.lifeline->pool.load(std::memory_order_acquire);
      if (!pool)
        continue;
      const auto& counters = detail::pool_access::core(*pool).counters;
      pool_samples_.push_back({&e.label, pool->stats(),
                               counters.queue_wait_histogram().export_cumulative(),
                               counters.run_time_histogram().export_cumulative()});
    }
    for (const lane_entry& e : lanes_)
      if (alive(e))
        lane_samples_.push_back({&e.label, e.core->stats(),
                                 e.core->turn_wait_histogram().export_cumulative()});
  }

  static void append_number(std::string& out, std::uint64_t value) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
    out.append(digits, end);
  }

  static void append_family(std::string& out, std::string_view name, std::string_view type,
                            std::string_view help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
  }

  static void append_sample(std::string& out, std::string_view name, const std::string& label,
                            std::uint64_t value) {
    out += name;
    out += '{';
    out += label;
    out += "} ";
    append_number(out, value);
    out += '\n';
  }

  // `le="..."` of each exported bound, in seconds, formatted once.
  static const std::array<std::string, detail::latency_histogram::export_bounds>& le_labels() {
    static const auto labels = [] {
      std::array<std::string, detail::latency_histogram::export_bounds> l;
      for (unsigned j = 0; j < l.size(); ++j)
        l[j] = fmt::format(
            "le=\"{}\"",
            static_cast<double>(detail::latency_histogram::export_bound_ns(j)) / 1e9);
      return l;
    }();
    return labels;
  }

  template <typename Sample>
  static void append_histogram(std::string& out, std::string_view name, std::string_view help,
                               const std::vector<Sample>& samples, cumulative Sample::*field) {
    if (samples.empty())
      return;
    const std::string bucket = std::string(name) + "_bucket{";
    append_family(out, name, "histogram", help);
    for (const Sample& s : samples) {
      const cumulative& c = s.*field;
      for (unsigned j = 0; j < c.at_most.size(); ++j) {
        out += bucket;
        out += *s.label;
        out += ',';
        out += le_labels()[j];
        out += "} ";
        append_number(out, c.at_most[j]);
        out += '\n';
      }
      out += bucket;
      out += *s.label;
      out += ",le=\"+Inf\"} ";
      append_number(out, c.count);
      out += '\n';
      out += name;
      out += "_sum{";
      out += *s.label;
      out += "} ";
      fmt::format_to(std::back_inserter(out), "{}", static_cast<double>(c.sum_ns) / 1e9);
      out += '\n';
      append_sample(out, std::string(name) + "_count", *s.label, c.count);
    }
  }

  template <typename Sample, typename Stats, typename Field>
  static void append_scalar(std::string& out, std::string_view name, std::string_view type,
                            std::string_view help, const std::vector<Sample>& samples,
                            Field Stats::*field) {
    if (samples.empty())
      return;
    append_family(out, name, type, help);
    for (const Sample& s : samples)
      append_sample(out, name, *s.label, static_cast<std::uint64_t>(s.stats.*field));
  }

  void write_pools(std::string& out) const {
    const auto& p = pool_samples_;
    append_scalar(out, "smartasync_pool_threads", "gauge", "Worker threads now.", p,
                  &pool_stats::threads);
    append_scalar(out, "smartasync_pool_queue_capacity", "gauge",
                  "Operations admitted to the queue before the full policy applies.", p,
                  &pool_stats::queue_capacity);
    append_scalar(out, "smartasync_pool_queued", "gauge",
                  "Admitted operations waiting for a worker.", p, &pool_stats::queued);
    append_scalar(out, "smartasync_pool_parked", "gauge",
                  "Event-loop operations parked beyond the queue capacity.", p,
                  &pool_stats::parked);
    append_scalar(out, "smartasync_pool_running", "gauge", "Operations running on a worker now.",
                  p, &pool_stats::running);
    append_scalar(out, "smartasync_pool_blocked_submitters", "gauge",
                  "Threads blocked in a submission, waiting for space.", p,
                  &pool_stats::blocked_submitters);
    append_scalar(out, "smartasync_pool_submitted_total", "counter",
                  "Submissions: accepted, refused and nested calls run inline.", p,
                  &pool_stats::submitted);
    append_scalar(out, "smartasync_pool_completed_total", "counter",
                  "Operations whose callable returned or threw.", p, &pool_stats::completed);
    append_scalar(out, "smartasync_pool_failed_total", "counter",
                  "Operations whose callable threw.", p, &pool_stats::failed);
    append_scalar(out, "smartasync_pool_cancelled_total", "counter",
                  "Operations completed with operation_aborted.", p, &pool_stats::cancelled);
    append_scalar(out, "smartasync_pool_expired_total", "counter",
                  "Operations whose deadline passed before they started.", p,
                  &pool_stats::expired);
    append_scalar(out, "smartasync_pool_timed_out_total", "counter",
                  "Operations cancelled while running, after their deadline.", p,
                  &pool_stats::timed_out);
    append_scalar(out, "smartasync_pool_rejected_total", "counter",
                  "Submissions refused: queue full or pool stopped.", p, &pool_stats::rejected);
    append_scalar(out, "smartasync_pool_slow_calls_total", "counter",
                  "Calls that ran longer than the pool's report_slow_call_after.", p,
                  &pool_stats::slow_calls);
    append_scalar(out, "smartasync_pool_threads_added_total", "counter",
                  "Workers an elastic pool started beyond its minimum.", p,
                  &pool_stats::threads_added);
    append_scalar(out, "smartasync_pool_threads_retired_total", "counter",
                  "Idle workers an elastic pool retired.", p, &pool_stats::threads_retired);
    append_histogram(out, "smartasync_pool_queue_wait_seconds",
                     "Time from submission to a worker picking the operation up.", p,
                     &pool_sample::queue_wait);
    append_histogram(out, "smartasync_pool_run_time_seconds",
                     "Time the callable ran on the worker.", p, &pool_sample::run_time);
  }

  void write_lanes(std::string& out) const {
    const auto& l = lane_samples_;
    append_scalar(out, "smartasync_lane_queued", "gauge", "Calls waiting for the lane's turn.", l,
                  &lane_stats::queued);
    append_scalar(out, "smartasync_lane_busy", "gauge", "1 while a call holds the lane's turn.",
                  l, &lane_stats::busy);
    append_scalar(out, "smartasync_lane_blocked_submitters", "gauge",
                  "Threads blocked in a submission, waiting for space.", l,
                  &lane_stats::blocked_submitters);
    append_scalar(out, "smartasync_lane_submitted_total", "counter",
                  "Calls accepted, asynchronous and synchronous.", l, &lane_stats::submitted);
    append_scalar(out, "smartasync_lane_rejected_total", "counter",
                  "Calls refused: queue full, or the lane closed.", l, &lane_stats::rejected);
    append_scalar(out, "smartasync_lane_cancelled_total", "counter",
                  "Calls cancelled while waiting for the turn.", l, &lane_stats::cancelled);
    append_histogram(out, "smartasync_lane_turn_wait_seconds",
                     "Time from submission to getting the lane's turn.", l,
                     &lane_sample::turn_wait);
  }

  mutable std::mutex mutex_;
  mutable std::vector<pool_entry> pools_;
  mutable std::vector<lane_entry> lanes_;
  // The scrape's snapshots, kept to reuse their memory (under mutex_).
  mutable std::vector<pool_sample> pool_samples_;
  mutable std::vector<lane_sample> lane_samples_;
  mutable std::size_t last_size_ = 0; // of the last exposition (under mutex_)
};

} // namespace smartasync

#endif // SMARTASYNC_METRICS_REGISTRY_HPP
