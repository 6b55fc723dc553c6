// bench/watchdog.cpp - what a loop_watchdog costs a healthy loop.
// Distributed under the Boost Software License, Version 1.0.
//
// The same workload (64 coroutines doing offload round trips through a 2-thread pool on one
// io_context thread) runs with no watchdog, with the default watchdog (100 ms threshold: one
// heartbeat every 25 ms) and with an aggressive one (4 ms threshold: a heartbeat every
// millisecond), alternating in one process. The goal: a watchdog costs nothing measurable on
// a healthy loop. Then the pools' own watchdog (the slow-call report), on and off.
#include "harness.hpp"

#include <smartasync/smartasync.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace {

constexpr int in_flight = 64;

// Runs `n` round trips from 64 coroutines, optionally under a watchdog with `threshold`.
void round_trips(smartasync::blocking_pool& pool, std::size_t n,
                 std::optional<std::chrono::milliseconds> threshold) {
  asio::io_context ioc(1);
  std::optional<smartasync::loop_watchdog> watchdog;
  if (threshold)
    watchdog.emplace(ioc, smartasync::watchdog_options{*threshold, "bench"});
  const std::size_t per = (n + in_flight - 1) / in_flight;
  for (int c = 0; c < in_flight; ++c)
    asio::co_spawn(ioc, [&pool, per]() -> asio::awaitable<void> {
      for (std::size_t i = 0; i < per; ++i) {
        const int r = co_await smartasync::async_offload(pool, [i] { return int(i); });
        bench::keep(r);
      }
    }, asio::detached);
  ioc.run();
}

} // namespace

int main(int argc, char** argv) {
  auto opts = bench::options::parse(argc, argv);
  bench::results out(opts);
  fmt::print("# loop_watchdog overhead on a healthy loop ({} rounds, medians)\n", opts.rounds);
  smartasync::blocking_pool pool{2, 1024};
  using namespace std::chrono_literals;
  std::vector<bench::contender> cs{
      {"64 in flight, watchdog 100 ms", [&](std::size_t n) { round_trips(pool, n, 100ms); }, 0, {}},
      {"64 in flight, watchdog 4 ms", [&](std::size_t n) { round_trips(pool, n, 4ms); }, 0, {}},
      {"64 in flight, no watchdog", [&](std::size_t n) { round_trips(pool, n, std::nullopt); }, 0, {}},
  };
  if (opts.wanted("watchdog overhead")) {
    bench::alternate(cs, opts);
    bench::report("watchdog overhead (ratio < 1.0 means the watchdog run was faster)", cs, out);
  }

  // The pool's own watchdog (pool_options::report_slow_call_after) on the hottest path: one
  // coroutine's sequential round trips through a pool of 1, and 64 in flight through 2 workers,
  // with the default threshold against a pool that watches nothing.
  auto watched = [](std::size_t threads, std::chrono::milliseconds threshold) {
    smartasync::pool_options o;
    o.threads = threads;
    o.report_slow_call_after = threshold;
    return std::make_unique<smartasync::blocking_pool>(o);
  };
  for (std::size_t threads : {std::size_t{1}, std::size_t{2}}) {
    const std::string title = fmt::format(
        "worker watchdog overhead, pool of {}, {} (ratio < 1.0 means the watched pool was faster)",
        threads, threads == 1 ? "sequential round trips" : "64 in flight");
    if (!opts.wanted(title))
      continue;
    auto on = watched(threads, 60s);
    auto off = watched(threads, 0ms);
    auto run = [threads](smartasync::blocking_pool& p, std::size_t n) {
      if (threads > 1)
        return round_trips(p, n, std::nullopt);
      asio::io_context ioc(1);
      asio::co_spawn(ioc, [&p, n]() -> asio::awaitable<void> {
        for (std::size_t i = 0; i < n; ++i)
          bench::keep(co_await smartasync::async_offload(p, [i] { return int(i); }));
      }, asio::detached);
      ioc.run();
    };
    std::vector<bench::contender> ws{
        {"slow-call watch 60 s (default)", [&](std::size_t n) { run(*on, n); }, 0, {}},
        {"slow-call watch off", [&](std::size_t n) { run(*off, n); }, 0, {}},
    };
    bench::alternate(ws, opts);
    bench::report(title, ws, out);
  }
  return 0;
}
