// The program demonstrates one wrapped blocking call serving both worlds: offloaded from a
// coroutine while a heartbeat timer keeps ticking on the same io_context, called inline from a
// plain thread, and the classic mistake (calling it synchronously on the loop) being reported.
#include <smartasync/smartasync.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using clock_type = std::chrono::steady_clock;

namespace {

// Stands in for SQLite, libcurl or a legacy SDK: it blocks the calling thread.
int slow_square(int x) {
  std::this_thread::sleep_for(200ms);
  return x * x;
}

// Ticks every 20 ms and remembers the longest gap between two ticks: if the loop is blocked,
// the gap shows it.
struct heartbeat {
  asio::steady_timer timer;
  clock_type::time_point last = clock_type::now();
  clock_type::duration worst{};
  int ticks = 0;
  bool running = true;

  explicit heartbeat(asio::io_context& ioc) : timer(ioc) {}

  asio::awaitable<void> run() {
    while (running) {
      timer.expires_after(20ms);
      co_await timer.async_wait(asio::use_awaitable);
      const auto now = clock_type::now();
      worst = std::max(worst, now - last);
      last = now;
      ++ticks;
    }
  }
  double worst_ms() const { return std::chrono::duration<double, std::milli>(worst).count(); }
  void reset() {
    worst = {};
    ticks = 0;
    last = clock_type::now();
  }
};

} // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0); // interleave with smartasync's stderr report
  try {
    // 1. One pool, created once and shared; one wrapper around the blocking function.
    smartasync::blocking_pool pool{2, 64};
    auto square = smartasync::smart_async(pool, slow_square, {.name = "slow_square"});

    // 2. A plain thread (this one, before any loop runs): inline, no thread hop.
    const auto t0 = clock_type::now();
    const int direct = square(3);
    fmt::print("plain thread : square(3) = {} inline in {:.0f} ms\n", direct,
               std::chrono::duration<double, std::milli>(clock_type::now() - t0).count());

    // 3. Coroutines on a live io_context: four calls offloaded while the heartbeat ticks.
    asio::io_context ioc;
    // The watchdog reports (stderr by default) when the loop stops serving handlers.
    smartasync::loop_watchdog watchdog{ioc, {.threshold = 100ms, .name = "example loop"}};
    heartbeat beat(ioc);
    asio::co_spawn(ioc, beat.run(), asio::detached);
    std::vector<int> results;
    asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
      // use_awaitable operations start when awaited; && awaits them together.
      auto [a, b, c, d] = co_await (square.async_call(4) && square.async_call(5) && square.async_call(6) &&
                                    square.async_call(7));
      results = {a, b, c, d};
      fmt::print("offloaded    : results {} {} {} {}; heartbeat ticked {} times, worst gap "
                 "{:.1f} ms\n",
                 results[0], results[1], results[2], results[3], beat.ticks, beat.worst_ms());

      // 4. The mistake: a synchronous call on the loop thread. smartasync reports it once.
      beat.reset();
      asio::steady_timer pause(ioc, 60ms);
      co_await pause.async_wait(asio::use_awaitable);
      asio::post(ioc, [&] { (void)square(8); });
      pause.expires_after(300ms);
      co_await pause.async_wait(asio::use_awaitable);
      fmt::print("inline mistake: heartbeat worst gap {:.1f} ms (the loop was blocked)\n",
                 beat.worst_ms());
      beat.running = false;
    }, asio::detached);
    ioc.run();

    fmt::print("watchdog     : {} stall(s) detected\n", watchdog.stalls());
    fmt::print("pool metrics : {}\n", pool.metrics());
    return results.size() == 4 && watchdog.stalls() >= 1 ? EXIT_SUCCESS : EXIT_FAILURE;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return EXIT_FAILURE;
  }
}
