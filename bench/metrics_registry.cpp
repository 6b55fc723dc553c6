// bench/metrics_registry.cpp - what a Prometheus scrape of 100 pools or lanes costs.
// Distributed under the Boost Software License, Version 1.0.
//
// A registry of 100 pools (one worker each), of 100 serial lanes, and of 50 of each, every
// one with some calls recorded, is scraped over and over: the time per scrape is the time a
// GET /metrics handler spends on the exposition, with its string reused (write_prometheus) or
// made anew (prometheus_text). The goal: under 1 ms per scrape of 100.
#include "harness.hpp"

#include <smartasync/metrics_registry.hpp>
#include <smartasync/offload.hpp>
#include <smartasync/serial_lane.hpp>

#include <asio/use_future.hpp>

#include <memory>
#include <string>
#include <tuple>
#include <vector>

namespace {

struct fleet {
  std::vector<std::unique_ptr<smartasync::blocking_pool>> pools;
  std::vector<std::unique_ptr<smartasync::serial_lane>> lanes;
  smartasync::metrics_registry registry;

  fleet(int pool_count, int lane_count) {
    for (int i = 0; i < pool_count; ++i) {
      pools.push_back(std::make_unique<smartasync::blocking_pool>(1));
      registry.add("pool " + std::to_string(i), *pools.back());
      for (int call = 0; call < 10; ++call)
        smartasync::async_offload(*pools.back(), [call] { return call; }, asio::use_future).get();
    }
    smartasync::blocking_pool& lane_pool = pools.empty() ? own_lane_pool() : *pools.front();
    for (int i = 0; i < lane_count; ++i) {
      lanes.push_back(std::make_unique<smartasync::serial_lane>(lane_pool));
      registry.add("lane " + std::to_string(i), *lanes.back());
      for (int call = 0; call < 10; ++call)
        smartasync::async_offload(*lanes.back(), [call] { return call; }, asio::use_future).get();
    }
  }
  ~fleet() { lanes.clear(); } // before their pool

  smartasync::blocking_pool& own_lane_pool() {
    lane_pool_ = std::make_unique<smartasync::blocking_pool>(1);
    return *lane_pool_;
  }
  std::unique_ptr<smartasync::blocking_pool> lane_pool_;
};

} // namespace

int main(int argc, char** argv) {
  auto opts = bench::options::parse(argc, argv);
  bench::results out(opts);
  fmt::print("# metrics_registry: one Prometheus scrape ({} rounds, medians; ns/op is ns per "
             "scrape)\n", opts.rounds);
  for (const auto& [title, pool_count, lane_count] :
       {std::tuple{"scrape of 100 pools", 100, 0}, std::tuple{"scrape of 100 lanes", 0, 100},
        std::tuple{"scrape of 50 pools and 50 lanes", 50, 50}}) {
    if (!opts.wanted(title))
      continue;
    fleet f(pool_count, lane_count);
    std::string reused;
    std::size_t bytes = 0;
    std::vector<bench::contender> cs{
        {"write_prometheus, string reused",
         [&](std::size_t n) {
           for (std::size_t i = 0; i < n; ++i) {
             reused.clear();
             f.registry.write_prometheus(reused);
             bench::keep(reused.size());
           }
           bytes = reused.size();
         },
         0, {}},
        {"prometheus_text, new string",
         [&](std::size_t n) {
           for (std::size_t i = 0; i < n; ++i)
             bench::keep(f.registry.prometheus_text().size());
         },
         0, {}},
    };
    bench::alternate(cs, opts);
    bench::report(fmt::format("{} ({} bytes each)", title, bytes), cs, out, false);
  }
  return 0;
}
