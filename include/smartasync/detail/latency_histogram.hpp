// smartasync/detail/latency_histogram.hpp - a lock-free log-linear histogram of durations.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_LATENCY_HISTOGRAM_HPP
#define SMARTASYNC_DETAIL_LATENCY_HISTOGRAM_HPP

#include "smartasync/config.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>

namespace SMARTASYNC_NAMESPACE::detail {

// Durations in nanoseconds go into one of 8 linear sub-buckets of their power-of-two range, so
// every bucket is within 12.5% of its values; recording is two relaxed atomic adds. Workers
// record concurrently; readers take a snapshot without stopping them.
class latency_histogram {
public:
  static constexpr unsigned sub_bits = 3;
  static constexpr unsigned sub_count = 1u << sub_bits;
  static constexpr unsigned bucket_count = (64 - sub_bits + 1) * sub_count;

  void record(std::chrono::nanoseconds d) noexcept {
    const auto ns = static_cast<std::uint64_t>(d.count() > 0 ? d.count() : 0);
    buckets_[index_of(ns)].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(ns, std::memory_order_relaxed);
    std::uint64_t seen = max_.load(std::memory_order_relaxed);
    while (ns > seen && !max_.compare_exchange_weak(seen, ns, std::memory_order_relaxed)) {
    }
  }

  struct summary {
    std::uint64_t count = 0;
    std::chrono::nanoseconds p50{}, p99{}, max{};
  };

  summary summarize() const noexcept {
    std::array<std::uint64_t, bucket_count> counts;
    summary s;
    for (unsigned i = 0; i < bucket_count; ++i) {
      counts[i] = buckets_[i].load(std::memory_order_relaxed);
      s.count += counts[i];
    }
    s.max = std::chrono::nanoseconds(max_.load(std::memory_order_relaxed));
    if (s.count == 0)
      return s;
    s.p50 = percentile(counts, s.count, 50);
    s.p99 = percentile(counts, s.count, 99);
    // A bucket's upper bound can overshoot the largest value seen.
    s.p50 = std::min(s.p50, s.max);
    s.p99 = std::min(s.p99, s.max);
    return s;
  }

  // The coarse, cumulative view a Prometheus histogram exposes: how many values are at most
  // 2^(8 + 2j) - 1 ns for j = 0 .. export_bounds - 1 (255 ns, 1.02 us, 4.10 us, ... 68.7 s:
  // a factor of 4 apart), which are bucket boundaries here, so each count is exact. Also the
  // total count and the sum. Read while workers record: each figure is exact at some instant
  // of the read, not necessarily the same one.
  static constexpr unsigned export_bounds = 15;
  static constexpr std::uint64_t export_bound_ns(unsigned j) noexcept {
    return (std::uint64_t{1} << (8 + 2 * j)) - 1;
  }
  struct cumulative {
    std::array<std::uint64_t, export_bounds> at_most{};
    std::uint64_t count = 0;
    std::uint64_t sum_ns = 0;
  };
  cumulative export_cumulative() const noexcept {
    cumulative c;
    unsigned j = 0;
    unsigned last_of_bound = index_of(export_bound_ns(0));
    for (unsigned i = 0; i < bucket_count; ++i) {
      c.count += buckets_[i].load(std::memory_order_relaxed);
      if (j < export_bounds && i == last_of_bound) {
        c.at_most[j] = c.count;
        if (++j < export_bounds)
          last_of_bound = index_of(export_bound_ns(j));
      }
    }
    c.sum_ns = sum_.load(std::memory_order_relaxed);
    return c;
  }

private:
  static unsigned index_of(std::uint64_t ns) noexcept {
    if (ns < sub_count)
      return static_cast<unsigned>(ns);
    const unsigned top = static_cast<unsigned>(std::bit_width(ns)) - 1; // >= sub_bits
    const unsigned sub = static_cast<unsigned>(ns >> (top - sub_bits)) & (sub_count - 1);
    return (top - sub_bits + 1) * sub_count + sub;
  }

  // The largest value that lands in bucket i.
  static std::uint64_t upper_bound_of(unsigned i) noexcept {
    if (i < sub_count)
      return i;
    const unsigned top = i / sub_count + sub_bits - 1;
    const std::uint64_t sub = i % sub_count;
    const std::uint64_t low = (std::uint64_t{1} << top) | (sub << (top - sub_bits));
    return low + (std::uint64_t{1} << (top - sub_bits)) - 1;
  }

  static std::chrono::nanoseconds percentile(const std::array<std::uint64_t, bucket_count>& counts,
                                             std::uint64_t total, unsigned p) noexcept {
    const std::uint64_t rank = (total * p + 99) / 100; // the smallest value with p% at or below
    std::uint64_t seen = 0;
    for (unsigned i = 0; i < bucket_count; ++i) {
      seen += counts[i];
      if (seen >= rank)
        return std::chrono::nanoseconds(static_cast<std::int64_t>(upper_bound_of(i)));
    }
    return std::chrono::nanoseconds(static_cast<std::int64_t>(upper_bound_of(bucket_count - 1)));
  }

  std::array<std::atomic<std::uint64_t>, bucket_count> buckets_{};
  std::atomic<std::uint64_t> max_{0};
  std::atomic<std::uint64_t> sum_{0}; // nanoseconds; wraps after 584 years of recorded time
};

} // namespace smartasync::detail

#endif // SMARTASYNC_DETAIL_LATENCY_HISTOGRAM_HPP
