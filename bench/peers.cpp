// bench/peers.cpp - smartasync's side of the comparison with its peers in other languages.
// Distributed under the Boost Software License, Version 1.0.
//
// The round trip of bench/offload.cpp's first table, alone in its process: an io_context's
// thread awaits `co_await w.async_call(x)` of a trivial function on a blocking_pool of N
// threads, 1 or 64 coroutines in flight. bench/peers/ has the same round trip written with
// tokio's spawn_blocking, libuv's uv_queue_work and Python's asyncio.to_thread; each program
// measures itself the same way (calibrate, rounds, medians, process CPU per call) and appends
// rows to the same groups, and scripts/bench-peers.sh runs them alternating, one process each.
// Usage: smartasync.bench.peers [--pool N] [--no-spin] [--quick] [--rounds N] [--out results.tsv]
// (without --pool: pools of 1 and 2, one after the other; --no-spin: the pool's workers park at
// once, pool_options::spin_before_park = 0, to tell what the spin does beside the peers, whose
// pools never spin).
#include "drivers.hpp"
#include "harness.hpp"

#include <smartasync/smart_async.hpp>

#include <asio/use_awaitable.hpp>

#include <chrono>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct call_trivial {
  int operator()(int x) const noexcept { return bench::trivial(x); }
};

void pool_group(std::size_t threads, bool spin, const bench::options& opts, bench::results& out) {
  const std::string_view variant = spin ? "smartasync co_await w.async_call(x)"
                                        : "smartasync, no spin (spin_before_park=0)";
  smartasync::pool_options options{.threads = threads};
  if (!spin)
    options.spin_before_park = std::chrono::microseconds{0};
  smartasync::blocking_pool pool{options};
  auto w = smartasync::smart_async(pool, call_trivial{});
  auto drive = [&](std::size_t inflight, std::size_t n) {
    bench::drive_awaitable(inflight, n,
                           [&](std::size_t, int x) { return w.async_call(x, asio::use_awaitable); });
  };
  for (std::size_t inflight : {1, 64}) {
    std::vector<bench::contender> cs{
        {std::string(variant), [&](std::size_t n) { drive(inflight, n); }, 0, {}}};
    bench::alternate(cs, opts); // one contender: calibration, then the rounds
    bench::report(fmt::format("peers, {} in flight, pool of {}", inflight, threads), cs, out);
  }
  const double idle_seconds = opts.quick ? 0.3 : 1.0;
  const double pct = bench::idle_cpu_percent(pool, [&](auto&) { drive(1, 1000); }, idle_seconds);
  fmt::print("\nidle CPU over {} s after a burst, pool of {}: {:.2f} % of one core\n", idle_seconds,
             threads, pct);
  out.add(fmt::format("peers, idle after a burst, pool of {}", threads), variant, "cpu_percent",
          pct, "%");
}

} // namespace

int main(int argc, char** argv) {
  // --pool N and --no-spin are this program's own; the rest are bench::options'.
  std::vector<std::size_t> pools{1, 2};
  bool spin = true;
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--no-spin") {
      spin = false;
    } else if (std::string_view(argv[i]) == "--pool" && i + 1 < argc) {
      const long n = std::atol(argv[++i]);
      if (n <= 0) {
        fmt::print(stderr, "--pool needs a positive number of threads\n");
        return 2;
      }
      pools = {std::size_t(n)};
    } else if (const std::string_view a = argv[i];
               a == "--quick" || ((a == "--rounds" || a == "--out" || a == "--data" || a == "--only") &&
                                  i + 1 < argc)) {
      rest.push_back(argv[i]);
      if (a != "--quick")
        rest.push_back(argv[++i]);
    } else {
      fmt::print(stderr, "usage: {} [--pool N] [--no-spin] [--quick] [--rounds N] [--out results.tsv]\n",
                 argv[0]);
      return 2;
    }
  }
  const auto opts = bench::options::parse(int(rest.size()), rest.data());
  bench::results out(opts);
  fmt::print("# smartasync co_await round trip of a trivial function ({} rounds, medians)\n",
             opts.rounds);
  for (std::size_t threads : pools)
    pool_group(threads, spin, opts, out);
}
