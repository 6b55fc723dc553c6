// Test that the header is self-contained.
#include <smartasync/metrics_registry.hpp>

#include "common/test_support.hpp"

#include <smartasync/offload.hpp>
#include <smartasync/serial_lane.hpp>

#include "common/asio_flavour.hpp"

#include SMARTASYNC_ASIO_HEADER(use_future.hpp)
#include "common/catch.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

using test_support::mentions;

TEST_CASE("a registered pool and lane are exposed under their names, with their counts",
          "[metrics_registry]") {
  smartasync::blocking_pool pool{1};
  smartasync::serial_lane lane{pool};
  smartasync::metrics_registry registry;
  registry.add("db", pool);
  registry.add("writes", lane);
  for (int i = 0; i < 3; ++i)
    smartasync::async_offload(pool, [] {}, asio::use_future).get();
  smartasync::async_offload(lane, [] {}, asio::use_future).get();

  const std::string text = registry.prometheus_text();
  CHECK(mentions(text, "# TYPE smartasync_pool_submitted_total counter\n"));
  CHECK(mentions(text, "\nsmartasync_pool_submitted_total{pool=\"db\"} 4\n"));
  CHECK(mentions(text, "\nsmartasync_pool_threads{pool=\"db\"} 1\n"));
  CHECK(mentions(text, "# TYPE smartasync_pool_run_time_seconds histogram\n"));
  CHECK(mentions(text, "\nsmartasync_pool_run_time_seconds_bucket{pool=\"db\",le=\"+Inf\"} 4\n"));
  CHECK(mentions(text, "\nsmartasync_pool_run_time_seconds_count{pool=\"db\"} 4\n"));
  CHECK(mentions(text, "\nsmartasync_lane_submitted_total{lane=\"writes\"} 1\n"));
  CHECK(mentions(text, "\nsmartasync_lane_turn_wait_seconds_count{lane=\"writes\"} 1\n"));
  CHECK(registry.size() == 2);
}

TEST_CASE("a label value is escaped as the text format requires", "[metrics_registry]") {
  smartasync::blocking_pool pool{1};
  smartasync::metrics_registry registry;
  registry.add("a \"quoted\" back\\slash\nnew line", pool);
  CHECK(mentions(registry.prometheus_text(),
                 "smartasync_pool_threads{pool=\"a \\\"quoted\\\" back\\\\slash\\nnew line\"} 1\n"));
}

TEST_CASE("an empty name or one already taken is refused, and a destroyed pool's name is free again",
          "[metrics_registry]") {
  smartasync::metrics_registry registry;
  smartasync::blocking_pool pool{1};
  CHECK_THROWS_AS(registry.add("", pool), std::invalid_argument);
  registry.add("db", pool);
  smartasync::serial_lane lane{pool};
  CHECK_THROWS_AS(registry.add("db", lane), std::invalid_argument);
  CHECK(registry.size() == 1);
  {
    smartasync::blocking_pool other{1};
    CHECK_THROWS_AS(registry.add("db", other), std::invalid_argument);
    registry.add("other", other);
    CHECK(registry.size() == 2);
  }
  CHECK(registry.size() == 1); // gone with its pool
  smartasync::blocking_pool again{1};
  registry.add("other", again);
  CHECK(registry.remove("other"));
  CHECK_FALSE(registry.remove("other"));
  CHECK(registry.size() == 1);
}

TEST_CASE("the registry keeps no pool or lane alive and drops each with its object",
          "[metrics_registry]") {
  smartasync::metrics_registry registry;
  auto pool = std::make_unique<smartasync::blocking_pool>(1);
  auto lane = std::make_unique<smartasync::serial_lane>(*pool);
  registry.add("db", *pool);
  registry.add("writes", *lane);
  lane.reset();
  CHECK_FALSE(mentions(registry.prometheus_text(), "writes"));
  pool.reset();
  CHECK(registry.prometheus_text().empty());
  CHECK(registry.size() == 0);
}

TEST_CASE("a thread_affine_lane is exposed as its one-thread pool", "[metrics_registry]") {
  smartasync::thread_affine_lane lane;
  smartasync::metrics_registry registry;
  registry.add("gui", lane);
  lane.run([] {});
  const std::string text = registry.prometheus_text();
  CHECK(mentions(text, "smartasync_pool_threads{pool=\"gui\"} 1\n"));
  CHECK(mentions(text, "smartasync_pool_submitted_total{pool=\"gui\"} 1\n"));
}

TEST_CASE("a slow call shows in the exposition's slow-call counter", "[metrics_registry][slow_call]") {
  using namespace std::chrono_literals;
  test_support::diagnostics_capture capture; // keeps the report off stderr
  smartasync::pool_options options;
  options.threads = 1;
  options.report_slow_call_after = 1ms;
  smartasync::blocking_pool pool{options};
  smartasync::metrics_registry registry;
  registry.add("db", pool);
  test_support::gate release;
  auto done = smartasync::async_offload(pool, [&] { release.wait(); }, asio::use_future);
  const bool seen = test_support::eventually([&] { return pool.stats().slow_calls > 0; });
  release.open();
  REQUIRE(seen);
  done.get();
  CHECK(mentions(registry.prometheus_text(), "smartasync_pool_slow_calls_total{pool=\"db\"} 1\n"));
}
