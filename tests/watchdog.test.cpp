// Test that the header is self-contained.
#include <smartasync/watchdog.hpp>

#include "common/test_support.hpp"

#include <smartasync/smart_async.hpp>

#include "common/asio_flavour.hpp"

#include SMARTASYNC_ASIO_HEADER(co_spawn.hpp)
#include SMARTASYNC_ASIO_HEADER(detached.hpp)
#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(executor_work_guard.hpp)
#include SMARTASYNC_ASIO_HEADER(post.hpp)
#include SMARTASYNC_ASIO_HEADER(steady_timer.hpp)
#include SMARTASYNC_ASIO_HEADER(thread_pool.hpp)
#include SMARTASYNC_ASIO_HEADER(use_awaitable.hpp)
#include "common/catch.hpp"
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using test_support::gate;

namespace {

// Captures loop_blocked reports and opens `first` when the first one arrives.
struct blocked_reports {
  std::mutex mutex;
  std::vector<smartasync::diagnostic> seen;
  gate first;
  smartasync::diagnostics_handler previous = smartasync::set_diagnostics_handler(
      [this](const smartasync::diagnostic& d) {
        if (d.kind != smartasync::diagnostic_kind::loop_blocked)
          return;
        {
          std::lock_guard lock(mutex);
          seen.push_back(d);
        }
        first.open();
      });
  ~blocked_reports() { smartasync::set_diagnostics_handler(previous); }
  std::vector<smartasync::diagnostic> all() {
    std::lock_guard lock(mutex);
    return seen;
  }
};

// Waits on the loop until the watchdog has seen it run.
asio::awaitable<void> until_heartbeat(const smartasync::loop_watchdog& dog, std::uint64_t n = 1) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (dog.heartbeats() < n) {
    timer.expires_after(2ms);
    co_await timer.async_wait(asio::use_awaitable);
  }
}

} // namespace

TEST_CASE("a deliberately blocked loop is reported, naming the inline wrapped call",
          "[watchdog]") {
  blocked_reports reports;
  smartasync::blocking_pool pool{1};
  // The blocking call ends only once the watchdog has reported it: no timing guesswork.
  auto stuck = smartasync::smart_async(pool, [&] { reports.first.wait(); return 1; },
                                       {.name = "stuck call",
                                        .on_loop = smartasync::loop_call_policy::silent});
  asio::io_context ioc;
  smartasync::loop_watchdog dog(ioc, {.threshold = 20ms, .name = "test loop"});
  std::uint_least32_t called_on = 0;
  asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
    co_await until_heartbeat(dog);
    called_on = __LINE__; stuck(); // blocks the loop thread inline
    co_await until_heartbeat(dog, dog.heartbeats() + 1); // the recovery beat
  }, asio::detached);
  ioc.run();

  auto seen = reports.all();
  REQUIRE(seen.size() == 2);
  CHECK(dog.stalls() == 1);
  CHECK(seen[0].message.find("event loop 'test loop' has not run a handler") != std::string::npos);
  CHECK(seen[0].message.find("'stuck call'") != std::string::npos);
  CHECK(seen[0].message.find(fmt::format("called at {}:{}", __FILE__, called_on)) !=
        std::string::npos);
  CHECK(seen[0].thread == std::this_thread::get_id());
  CHECK(seen[1].message.find("recovered") != std::string::npos);
  CHECK(seen[1].duration >= seen[0].duration);
}

TEST_CASE("a blocked loop with no wrapped call says so", "[watchdog]") {
  blocked_reports reports;
  asio::io_context ioc;
  smartasync::loop_watchdog dog(ioc, {.threshold = 20ms});
  asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
    co_await until_heartbeat(dog);
    reports.first.wait(); // plain blocking code in a handler
  }, asio::detached);
  ioc.run();
  auto seen = reports.all();
  REQUIRE_FALSE(seen.empty());
  CHECK(seen[0].message.find("no smartasync-wrapped call was running") != std::string::npos);
}

TEST_CASE("a loop that is not running is not reported as blocked", "[watchdog]") {
  blocked_reports reports;
  asio::io_context ioc;
  {
    smartasync::loop_watchdog dog(ioc, {.threshold = 5ms});
    std::this_thread::sleep_for(50ms); // never started: its heartbeat waits, nobody is blocked
    CHECK(dog.stalls() == 0);
  }
  CHECK(reports.all().empty());
}

TEST_CASE("a healthy loop serving offloaded calls is never reported", "[watchdog]") {
  blocked_reports reports;
  smartasync::blocking_pool pool{2};
  auto slow = smartasync::smart_async(pool, [] { std::this_thread::sleep_for(5ms); return 1; });
  asio::io_context ioc;
  // A generous threshold: this checks for false alarms, not for speed.
  smartasync::loop_watchdog dog(ioc, {.threshold = 2000ms});
  int sum = 0;
  asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 200; ++i)
      sum += co_await slow.async_call();
    co_await until_heartbeat(dog, 2);
  }, asio::detached);
  ioc.run();
  CHECK(sum == 200);
  CHECK(dog.stalls() == 0);
  CHECK(reports.all().empty());
}

namespace {
// Whether one of `seen` is the per-thread report of `call` stuck on `thread`.
bool names_stuck_thread(const std::vector<smartasync::diagnostic>& seen, std::thread::id thread,
                        const std::string& call) {
  return std::any_of(seen.begin(), seen.end(), [&](const smartasync::diagnostic& d) {
    return d.thread == thread && d.message.find("has been stuck") != std::string::npos &&
           d.message.find(call) != std::string::npos;
  });
}
} // namespace

TEST_CASE("one stuck thread of an io_context run by four threads is reported, with its call",
          "[watchdog]") {
  blocked_reports reports;
  smartasync::blocking_pool pool{1};
  // Ends only once the watchdog has reported: no timing guesswork.
  auto stuck = smartasync::smart_async(pool, [&] { reports.first.wait(); return 1; },
                                       {.name = "stuck call",
                                        .on_loop = smartasync::loop_call_policy::silent});
  asio::io_context ioc;
  auto work = asio::make_work_guard(ioc);
  smartasync::loop_watchdog dog(ioc, {.threshold = 40ms, .name = "four threads"});
  std::atomic<std::thread::id> stuck_thread;
  std::atomic<std::uint_least32_t> called_on{0};
  asio::post(ioc, [&] {
    stuck_thread = std::this_thread::get_id();
    called_on = __LINE__; stuck(); // blocks this thread inline; the three others keep running heartbeats
  });
  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < 4; ++i)
      threads.emplace_back([&] { ioc.run(); });
    reports.first.wait();
    work.reset();
  } // joined: every handler ran
  const auto seen = reports.all();
  CHECK(names_stuck_thread(seen, stuck_thread.load(), "'stuck call'"));
  CHECK(names_stuck_thread(seen, stuck_thread.load(),
                           fmt::format("called at {}:{}", __FILE__, called_on.load())));
  CHECK(dog.stalls() >= 1);
}

TEST_CASE("one stuck thread of an asio::thread_pool is reported, with its call", "[watchdog]") {
  blocked_reports reports;
  smartasync::blocking_pool pool{1};
  auto stuck = smartasync::smart_async(pool, [&] { reports.first.wait(); return 1; },
                                       {.name = "stuck on a thread_pool",
                                        .on_loop = smartasync::loop_call_policy::silent});
  asio::thread_pool loop(2);
  smartasync::loop_watchdog dog(loop, {.threshold = 40ms});
  std::atomic<std::thread::id> stuck_thread;
  asio::post(loop, [&] {
    stuck_thread = std::this_thread::get_id();
    stuck();
  });
  reports.first.wait();
  loop.join();
  CHECK(names_stuck_thread(reports.all(), stuck_thread.load(), "'stuck on a thread_pool'"));
  CHECK(dog.stalls() >= 1);
}
