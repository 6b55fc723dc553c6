// Test that the header is self-contained.
#include <smartasync/detail/call_watcher.hpp>

#include "common/fake_pool_op.hpp"

#include "common/catch.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <typeinfo>
#include <vector>

using namespace std::chrono_literals;
using smartasync::detail::call_identity;
using smartasync::detail::call_watcher;
using smartasync::detail::slow_call;
using test_support::fake_pool_op;

namespace {

// The reports a watcher made, waited for without a time bound on the behaviour (the wait's
// limit only turns a missing report into a failure instead of a hang).
struct report_log {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<std::pair<const std::type_info*, std::chrono::steady_clock::duration>> reports;

  call_watcher::report_function function() {
    return [this](const call_identity& who, std::chrono::steady_clock::duration overrun) {
      std::lock_guard lock(mutex);
      reports.emplace_back(who.type, overrun);
      cv.notify_all();
    };
  }
  bool wait_for(std::size_t count) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, 30s, [&] { return reports.size() >= count; });
  }
  std::size_t size() {
    std::lock_guard lock(mutex);
    return reports.size();
  }
};

} // namespace

TEST_CASE("a watcher with no report delay watches nothing", "[call_watcher][ignored_stop]") {
  report_log log;
  call_watcher watcher(0ms, log.function());
  auto* op = new fake_pool_op;
  watcher.watch(op, {nullptr, &typeid(int), nullptr});
  CHECK(watcher.watched() == 0);
  watcher.stop();
  CHECK(log.size() == 0);
  op->release();
}

TEST_CASE("a call that returns before its report is forgotten, unreported",
          "[call_watcher][ignored_stop]") {
  report_log log;
  call_watcher watcher(1h, log.function());
  auto* op = new fake_pool_op;
  watcher.watch(op, {nullptr, &typeid(int), nullptr});
  CHECK(watcher.watched() == 1);
  watcher.returned(op);
  CHECK(watcher.watched() == 0);
  watcher.stop();
  CHECK(log.size() == 0);
  op->release();
}

TEST_CASE("a call that keeps running is reported again each time its overrun doubles",
          "[call_watcher][ignored_stop]") {
  report_log log;
  call_watcher watcher(1ms, log.function());
  auto* op = new fake_pool_op;
  watcher.watch(op, {nullptr, &typeid(double), nullptr});
  REQUIRE(log.wait_for(3));
  watcher.returned(op);
  watcher.stop();
  std::lock_guard lock(log.mutex);
  for (const auto& [type, overrun] : log.reports)
    CHECK(*type == typeid(double));
  CHECK(log.reports[0].second >= 1ms);
  CHECK(log.reports[1].second >= 2 * log.reports[0].second);
  CHECK(log.reports[2].second >= 2 * log.reports[1].second);
  op->release();
}

TEST_CASE("a stopped watcher ignores later calls", "[call_watcher][ignored_stop]") {
  report_log log;
  call_watcher watcher(1ms, log.function());
  watcher.stop();
  auto* op = new fake_pool_op;
  watcher.watch(op, {nullptr, &typeid(int), nullptr});
  CHECK(watcher.watched() == 0);
  op->release();
}

namespace {

// A pool's side of the slow-call watch, played by the test: `running` calls are reported on
// the first look (each once), and the answer says whether one is still running.
struct fake_scan {
  std::mutex mutex;
  std::condition_variable cv;
  int running = 0;           // calls the next look reports
  std::size_t looks = 0;
  std::vector<slow_call> reported;

  call_watcher::scan_function function() {
    return [this](std::chrono::steady_clock::time_point now, std::vector<slow_call>& due) {
      std::lock_guard lock(mutex);
      ++looks;
      for (; running > 0; --running)
        due.push_back({{nullptr, &typeid(long), nullptr}, std::this_thread::get_id(), 1s});
      cv.notify_all();
      // Nothing left unreported: the watcher waits for calls_started().
      (void)now;
      return std::chrono::steady_clock::time_point::max();
    };
  }
  call_watcher::slow_report_function report() {
    return [this](const slow_call& call) {
      std::lock_guard lock(mutex);
      reported.push_back(call);
      cv.notify_all();
    };
  }
  bool wait_for_looks(std::size_t count) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, 30s, [&] { return looks >= count; });
  }
};

} // namespace

TEST_CASE("a slow-call watcher looks at nothing before a call starts",
          "[call_watcher][slow_call]") {
  fake_scan scan;
  report_log log;
  call_watcher watcher(0ms, log.function(), scan.function(), scan.report());
  CHECK(watcher.scans() == 0);
  watcher.stop();
  CHECK(scan.looks == 0);
}

TEST_CASE("a slow-call watcher looks when a call starts, reports what the look found, and then "
          "sleeps until the next call starts",
          "[call_watcher][slow_call]") {
  fake_scan scan;
  report_log log;
  call_watcher watcher(0ms, log.function(), scan.function(), scan.report());
  {
    std::lock_guard lock(scan.mutex);
    scan.running = 2;
  }
  watcher.calls_started();
  REQUIRE(scan.wait_for_looks(1));
  // Give a watcher that would poll a chance to look again: this one must not, the look said no
  // call is left to time.
  std::this_thread::sleep_for(50ms);
  CHECK(watcher.scans() == 1);
  watcher.calls_started();
  REQUIRE(scan.wait_for_looks(2));
  watcher.stop();
  std::lock_guard lock(scan.mutex);
  CHECK(scan.looks == 2);
  REQUIRE(scan.reported.size() == 2);
  CHECK(*scan.reported[0].who.type == typeid(long));
}

TEST_CASE("one watcher thread serves both concerns: an ignored stop is reported while slow "
          "calls are watched",
          "[call_watcher][slow_call][ignored_stop]") {
  fake_scan scan;
  report_log log;
  call_watcher watcher(1ms, log.function(), scan.function(), scan.report());
  watcher.calls_started();
  REQUIRE(scan.wait_for_looks(1));
  auto* op = new fake_pool_op;
  watcher.watch(op, {nullptr, &typeid(int), nullptr});
  REQUIRE(log.wait_for(1));
  watcher.returned(op);
  watcher.stop();
  op->release();
}
