// Test that the header is self-contained.
#include <smartasync/detail/ignored_stop_watcher.hpp>

#include "common/fake_pool_op.hpp"

#include "common/catch.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <typeinfo>
#include <vector>

using namespace std::chrono_literals;
using smartasync::detail::call_identity;
using smartasync::detail::ignored_stop_watcher;
using test_support::fake_pool_op;

namespace {

// The reports a watcher made, waited for without a time bound on the behaviour (the wait's
// limit only turns a missing report into a failure instead of a hang).
struct report_log {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<std::pair<const std::type_info*, std::chrono::steady_clock::duration>> reports;

  ignored_stop_watcher::report_function function() {
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

TEST_CASE("a watcher with no report delay watches nothing", "[ignored_stop_watcher]") {
  report_log log;
  ignored_stop_watcher watcher(0ms, log.function());
  auto* op = new fake_pool_op;
  watcher.watch(op, {nullptr, &typeid(int)});
  CHECK(watcher.watched() == 0);
  watcher.stop();
  CHECK(log.size() == 0);
  op->release();
}

TEST_CASE("a call that returns before its report is forgotten, unreported",
          "[ignored_stop_watcher]") {
  report_log log;
  ignored_stop_watcher watcher(1h, log.function());
  auto* op = new fake_pool_op;
  watcher.watch(op, {nullptr, &typeid(int)});
  CHECK(watcher.watched() == 1);
  watcher.returned(op);
  CHECK(watcher.watched() == 0);
  watcher.stop();
  CHECK(log.size() == 0);
  op->release();
}

TEST_CASE("a call that keeps running is reported again each time its overrun doubles",
          "[ignored_stop_watcher]") {
  report_log log;
  ignored_stop_watcher watcher(1ms, log.function());
  auto* op = new fake_pool_op;
  watcher.watch(op, {nullptr, &typeid(double)});
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

TEST_CASE("a stopped watcher ignores later calls", "[ignored_stop_watcher]") {
  report_log log;
  ignored_stop_watcher watcher(1ms, log.function());
  watcher.stop();
  auto* op = new fake_pool_op;
  watcher.watch(op, {nullptr, &typeid(int)});
  CHECK(watcher.watched() == 0);
  op->release();
}
