// bench/heartbeat.cpp - how responsive the event loop stays while blocking calls happen.
// Distributed under the Boost Software License, Version 1.0.
//
// A 1 ms periodic timer on the io_context records how late each tick fires ("lag") while:
//   idle     the loop has nothing else to do (the floor: timer slack and scheduling)
//   inline   a coroutine calls a blocking 10 ms function directly on the loop, 120 times
//   offload  4 coroutines each co_await w.async_call() on the same function 120 times (pool of 4)
// Each scenario lasts about 1.2 s; the three alternate for several rounds. Raw lags (us) go
// to <data>/heartbeat_<scenario>.dat for docs/img/heartbeat_lag.png (bench/heartbeat_lag.gp).
#include "harness.hpp"

#include <smartasync/smart_async.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <cmath>
#include <functional>
#include <thread>

namespace {

using namespace std::chrono_literals;

void blocking_10ms() { std::this_thread::sleep_for(10ms); }

// Re-arms itself 1 ms after each tick and records how late the tick was.
class heartbeat {
public:
  explicit heartbeat(asio::io_context& ctx, std::vector<double>& lags_us)
      : timer_(ctx), lags_(lags_us) {}

  void start() { arm(); }
  void stop() {
    stopped_ = true;
    timer_.cancel();
  }

private:
  void arm() {
    deadline_ = bench::clock::now() + 1ms;
    timer_.expires_at(deadline_);
    timer_.async_wait([this](std::error_code ec) {
      if (ec || stopped_)
        return;
      lags_.push_back(std::chrono::duration<double, std::micro>(bench::clock::now() - deadline_)
                          .count());
      arm();
    });
  }

  asio::steady_timer timer_;
  std::vector<double>& lags_;
  bench::clock::time_point deadline_{};
  bool stopped_ = false;
};

// Runs the heartbeat while `workload` (a coroutine factory) runs on the same io_context.
void scenario(std::vector<double>& lags, std::size_t coroutines,
              std::function<asio::awaitable<void>(asio::io_context&)> workload) {
  asio::io_context ctx;
  heartbeat beat(ctx, lags);
  beat.start();
  std::size_t running = coroutines;
  for (std::size_t i = 0; i < coroutines; ++i)
    asio::co_spawn(ctx, workload(ctx), [&](std::exception_ptr e) {
      if (e)
        std::rethrow_exception(e);
      if (--running == 0)
        beat.stop();
    });
  ctx.run();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  const auto rank = std::size_t(std::ceil(p / 100.0 * double(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

} // namespace

int main(int argc, char** argv) {
  auto opts = bench::options::parse(argc, argv);
  bench::results out(opts);
  const int rounds = opts.quick ? 1 : std::min(opts.rounds, 3);
  const std::size_t calls = opts.quick ? 20 : 120; // per coroutine, 10 ms each

  smartasync::blocking_pool pool{4};
  auto w = smartasync::smart_async(pool, blocking_10ms);

  struct mode {
    const char* name;
    std::size_t coroutines;
    std::function<asio::awaitable<void>(asio::io_context&)> workload;
    std::vector<double> lags;            // every sample of every round
    std::vector<double> p50, p99, max_;  // per round
  };
  std::vector<mode> modes;
  modes.push_back({"idle", 1, [calls](asio::io_context& ctx) -> asio::awaitable<void> {
                     asio::steady_timer t(ctx, calls * 10ms);
                     co_await t.async_wait(asio::use_awaitable);
                   }, {}, {}, {}, {}});
  modes.push_back({"inline", 1, [calls](asio::io_context& ctx) -> asio::awaitable<void> {
                     for (std::size_t i = 0; i < calls; ++i) {
                       blocking_10ms(); // the classic mistake: the loop stalls for 10 ms
                       co_await asio::post(ctx, asio::use_awaitable);
                     }
                   }, {}, {}, {}, {}});
  modes.push_back({"offload", 4, [calls, &w](asio::io_context&) -> asio::awaitable<void> {
                     for (std::size_t i = 0; i < calls; ++i)
                       co_await w.async_call(asio::use_awaitable);
                   }, {}, {}, {}, {}});

  for (int r = 0; r < rounds; ++r)
    for (auto& m : modes) {
      std::vector<double> lags;
      scenario(lags, m.coroutines, m.workload);
      m.p50.push_back(percentile(lags, 50));
      m.p99.push_back(percentile(lags, 99));
      m.max_.push_back(percentile(lags, 100));
      m.lags.insert(m.lags.end(), lags.begin(), lags.end());
    }

  fmt::print("# heartbeat lag of a 1 ms timer ({} rounds of ~{:.1f} s per scenario; us; "
             "median over rounds [min-max])\n",
             rounds, double(calls) * 0.01);
  fmt::print("{:<10} {:>8} {:>24} {:>24} {:>24} {:>12}\n", "scenario", "ticks", "p50", "p99",
             "max", "pooled p99");
  for (auto& m : modes) {
    const auto p50 = bench::summarize(m.p50), p99 = bench::summarize(m.p99),
               mx = bench::summarize(m.max_);
    auto cell = [](bench::spread s) {
      return fmt::format("{:.0f} [{:.0f}-{:.0f}]", s.median, s.min, s.max);
    };
    fmt::print("{:<10} {:>8} {:>24} {:>24} {:>24} {:>12.0f}\n", m.name, m.lags.size(), cell(p50),
               cell(p99), cell(mx), percentile(m.lags, 99));
    out.add("heartbeat", m.name, "lag_p50_us", p50, "us");
    out.add("heartbeat", m.name, "lag_p99_us", p99, "us");
    out.add("heartbeat", m.name, "lag_max_us", mx, "us");
    out.add("heartbeat", m.name, "lag_pooled_p99_us", percentile(m.lags, 99), "us");
    const std::string path = fmt::format("{}/heartbeat_{}.dat", opts.data_dir, m.name);
    if (std::FILE* f = std::fopen(path.c_str(), "w")) {
      for (double lag : m.lags)
        fmt::print(f, "{:.1f}\n", lag);
      std::fclose(f);
    }
  }
}
