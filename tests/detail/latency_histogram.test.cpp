// Test that the header is self-contained.
#include <smartasync/detail/latency_histogram.hpp>

#include "common/catch.hpp"

#include <chrono>

using namespace std::chrono_literals;
using smartasync::detail::latency_histogram;

TEST_CASE("the exported bounds are a factor of 4 apart, from 255 ns to about 68.7 s",
          "[latency_histogram]") {
  CHECK(latency_histogram::export_bound_ns(0) == 255);
  CHECK(latency_histogram::export_bound_ns(1) == 1023);
  CHECK(latency_histogram::export_bound_ns(latency_histogram::export_bounds - 1) ==
        (std::uint64_t{1} << 36) - 1);
}

TEST_CASE("the cumulative export counts exactly, at and just past each bound, and sums",
          "[latency_histogram]") {
  latency_histogram h;
  h.record(0ns);
  h.record(255ns);  // at the first bound
  h.record(256ns);  // just past it
  h.record(1023ns); // at the second
  h.record(1024ns);
  h.record(100s); // past the last
  const auto c = h.export_cumulative();
  CHECK(c.at_most[0] == 2);
  CHECK(c.at_most[1] == 4);
  CHECK(c.at_most[2] == 5);
  CHECK(c.at_most[latency_histogram::export_bounds - 1] == 5);
  CHECK(c.count == 6);
  CHECK(c.sum_ns == 0 + 255 + 256 + 1023 + 1024 + 100'000'000'000ull);
}
