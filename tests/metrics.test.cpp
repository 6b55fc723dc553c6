// Test that the header is self-contained.
#include <smartasync/metrics.hpp>

#include "common/test_support.hpp"

#include <smartasync/blocking_pool.hpp>
#include <smartasync/detail/latency_histogram.hpp>
#include <smartasync/offload.hpp>

#include "common/asio_flavour.hpp"

#include SMARTASYNC_ASIO_HEADER(use_future.hpp)
#include "common/catch.hpp"

#include <future>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

TEST_CASE("the histogram's percentiles are within one bucket of the truth", "[metrics]") {
  smartasync::detail::latency_histogram h;
  for (int i = 1; i <= 1000; ++i)
    h.record(std::chrono::microseconds(i)); // 1us .. 1000us
  auto s = h.summarize();
  CHECK(s.count == 1000);
  CHECK(s.max == 1000us);
  // The true p50 is 500us and p99 990us; a bucket is at most 12.5% wide.
  CHECK(s.p50 >= 500us);
  CHECK(s.p50 <= 563us);
  CHECK(s.p99 >= 990us);
  CHECK(s.p99 <= 1000us); // clamped to the maximum
}

TEST_CASE("an empty histogram summarises to zeros", "[metrics]") {
  smartasync::detail::latency_histogram h;
  auto s = h.summarize();
  CHECK(s.count == 0);
  CHECK(s.p50 == 0ns);
  CHECK(s.max == 0ns);
  h.record(-5ns); // clock oddities are clamped, not trusted
  CHECK(h.summarize().max == 0ns);
}

TEST_CASE("queue-wait metrics show an undersized pool in a short burst", "[metrics]") {
  // Six calls of at least 10 ms into two threads: the last two cannot start before two rounds
  // have finished, so they waited at least 20 ms (a lower bound by causality, not a timing
  // guess). Sampling would have timed one call of the burst, probably one that never waited.
  smartasync::blocking_pool pool{2, 16};
  std::vector<std::future<void>> burst;
  for (int i = 0; i < 6; ++i)
    burst.push_back(smartasync::async_offload(
        pool, [] { std::this_thread::sleep_for(std::chrono::milliseconds(10)); },
        asio::use_future));
  for (auto& f : burst)
    f.get();
  const auto m = pool.metrics();
  CHECK(m.queue_wait.count == 6);
  CHECK(m.queue_wait.max >= std::chrono::milliseconds(20));
  CHECK(m.run_time.count == 6);
}

TEST_CASE("pool metrics count every outcome and time every run", "[metrics]") {
  smartasync::blocking_pool pool{2, 16, smartasync::full_policy::reject};
  std::vector<std::future<int>> ok;
  for (int i = 0; i < 20; ++i)
    ok.push_back(smartasync::async_offload(pool, [i] { return i; }, asio::use_future));
  int rejected = 0;
  for (auto& f : ok) {
    try {
      f.get();
    } catch (const smartasync::system_error& e) {
      rejected += e.code() == smartasync::error::queue_full;
    }
  }
  auto failing = smartasync::async_offload(pool, []() -> int { throw std::runtime_error("x"); },
                                           asio::use_future);
  CHECK_THROWS(failing.get());
  pool.shutdown();
  auto m = pool.metrics();
  CHECK(m.counts.submitted == 21); // a rejected submission is a submission too
  CHECK(m.counts.rejected == static_cast<std::uint64_t>(rejected));
  CHECK(m.counts.completed + m.counts.failed + m.counts.rejected == m.counts.submitted);
  CHECK(m.counts.failed == 1);
  const auto ran = m.counts.completed + m.counts.failed;
  CHECK(m.run_time.count == ran);
  CHECK(m.queue_wait.count == ran); // every operation that went through the queue
  CHECK(m.run_time.p50 <= m.run_time.p99);
  CHECK(m.run_time.p99 <= m.run_time.max);
  CHECK(m.queue_wait.p99 <= m.queue_wait.max);

  const auto line = fmt::format("{}", m);
  CHECK(line.find("submitted=") != std::string::npos);
  CHECK(line.find("parked=0") != std::string::npos);
  CHECK(line.find("failed=1") != std::string::npos);
  CHECK(line.find("run p50=") != std::string::npos);
  CHECK(line.find('\n') == std::string::npos);
}

TEST_CASE("queue wait is timed for every submission of every thread", "[metrics]") {
  smartasync::blocking_pool pool{1};
  std::thread submitter([&] {
    std::vector<std::future<int>> results;
    for (int i = 0; i < 33; ++i)
      results.push_back(smartasync::async_offload(pool, [i] { return i; }, asio::use_future));
    for (auto& f : results)
      f.get();
  });
  submitter.join();
  pool.shutdown();
  const auto m = pool.metrics();
  CHECK(m.counts.submitted == 33);
  CHECK(m.queue_wait.count == 33);
  CHECK(m.run_time.count == 33);
}
