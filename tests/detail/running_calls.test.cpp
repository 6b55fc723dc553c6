// Test that the header is self-contained.
#include <smartasync/detail/running_calls.hpp>

#include "common/fake_pool_op.hpp"

#include "common/catch.hpp"

#include <chrono>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using smartasync::detail::running_calls;
using test_support::fake_pool_op;

TEST_CASE("the slow-call scan finds each call past the threshold once and says when to look next",
          "[running_calls][slow_call]") {
  using clock = std::chrono::steady_clock;
  running_calls calls(3); // the test plays the workers
  auto* op = new fake_pool_op;
  std::vector<smartasync::detail::slow_call> due;
  const auto t0 = clock::now();

  calls.watch_slow_calls_locked();
  CHECK(calls.running_locked(0, *op));       // the watcher waits for a call: wake it
  CHECK_FALSE(calls.running_locked(1, *op)); // it is awake already
  calls.started(0, t0);
  calls.started(1, t0 + 5s);
  CHECK(calls.scan_locked(t0 + 1s, 10s, due) == t0 + 10s);
  CHECK(due.empty());

  CHECK(calls.scan_locked(t0 + 10s, 10s, due) == t0 + 15s);
  REQUIRE(due.size() == 1);
  CHECK(due[0].running == 10s);
  CHECK(due[0].thread == std::this_thread::get_id());
  CHECK(calls.scan_locked(t0 + 12s, 10s, due) == t0 + 15s); // reported once only
  CHECK(due.size() == 1);

  // A call whose start is not stored yet counts as starting at the scan.
  CHECK_FALSE(calls.running_locked(2, *op));
  CHECK(calls.scan_locked(t0 + 13s, 10s, due) == t0 + 15s);
  calls.idle_locked(2);

  // Slot 1 returned before its threshold; slot 0 was reported: nothing left to time, so the
  // watcher waits, and the next call to start wakes it.
  calls.returned(1);
  CHECK(calls.scan_locked(t0 + 20s, 10s, due) == clock::time_point::max());
  CHECK(due.size() == 1);
  CHECK(calls.slow_calls() == 0); // counted once reported (the pool's watcher does)
  calls.count_slow_call();
  CHECK(calls.slow_calls() == 1);
  calls.idle_locked(1);
  CHECK(calls.running_locked(1, *op));
  op->release();
}

TEST_CASE("a slot is busy from the start of its call until its worker is idle again, alone",
          "[running_calls]") {
  running_calls calls(2);
  auto* op = new fake_pool_op;
  CHECK_FALSE(calls.busy_locked(0));
  CHECK_FALSE(calls.busy_locked(1));

  calls.running_locked(1, *op);
  CHECK_FALSE(calls.busy_locked(0));
  CHECK(calls.busy_locked(1)); // from the start: exit reports name a call not started yet too
  calls.started(1, std::chrono::steady_clock::now());
  calls.returned(1);
  CHECK(calls.busy_locked(1)); // returned, on its way back: still its worker's until idle
  calls.idle_locked(1);
  CHECK_FALSE(calls.busy_locked(1));
  op->release();
}
