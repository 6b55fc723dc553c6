// Prints the metrics exposition of a pool and a lane after a known amount of work, for
// check_exposition.py, which parses it with the Prometheus project's own Python parser.
// Usage: exposition POOL_CALLS LANE_CALLS (the checker is given the same two numbers).
#include <smartasync/metrics_registry.hpp>

#include <smartasync/offload.hpp>
#include <smartasync/serial_lane.hpp>

#include SMARTASYNC_ASIO_HEADER(use_future.hpp)

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s POOL_CALLS LANE_CALLS\n", argv[0]);
    return 2;
  }
  const int pool_calls = std::atoi(argv[1]);
  const int lane_calls = std::atoi(argv[2]);

  smartasync::blocking_pool pool{2};
  smartasync::serial_lane lane{pool};
  smartasync::metrics_registry registry;
  registry.add("search \"main\"\\1", pool); // a name the format must escape
  registry.add("ledger", lane);

  // POOL_CALLS calls on the pool, the last of which throws; LANE_CALLS through the lane.
  for (int i = 0; i < pool_calls; ++i) {
    auto done = smartasync::async_offload(pool, [last = i == pool_calls - 1] {
      if (last)
        throw std::runtime_error("the one failure");
    }, smartasync::asio::use_future);
    try {
      done.get();
    } catch (const std::runtime_error&) {
    }
  }
  for (int i = 0; i < lane_calls; ++i)
    smartasync::async_offload(lane, [] {}, smartasync::asio::use_future).get();

  // A pool destroyed after its registration is no longer exposed.
  {
    smartasync::blocking_pool gone{1};
    registry.add("gone", gone);
  }

  const std::string text = registry.prometheus_text();
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}
