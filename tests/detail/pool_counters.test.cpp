// Test that the header is self-contained.
#include <smartasync/detail/pool_counters.hpp>

#include "common/fake_pool_op.hpp"

#include "common/catch.hpp"

#include <chrono>
#include <thread>

using namespace std::chrono_literals;
using smartasync::detail::pool_counters;
using test_support::fake_pool_op;
using time_point = std::chrono::steady_clock::time_point;

TEST_CASE("fresh pool counters count nothing", "[pool_counters]") {
  pool_counters counters;
  const auto o = counters.outcomes();
  CHECK(o.completed + o.failed + o.cancelled + o.expired + o.timed_out + o.rejected + o.returned ==
        0);
  CHECK(counters.queue_wait().count == 0);
  CHECK(counters.run_time().count == 0);
}

TEST_CASE("pool counters count each outcome under its own name", "[pool_counters]") {
  pool_counters counters;
  counters.note_finished(false);
  counters.note_finished(false);
  counters.note_finished(true);
  counters.note_cancelled();
  counters.note_timed_out();
  counters.note_rejected();
  counters.note_expired(/*taken=*/false); // removed from the queue: never started
  counters.note_expired(/*taken=*/true);  // reached by a worker: started, so returned at once
  const auto o = counters.outcomes();
  CHECK(o.completed == 2);
  CHECK(o.failed == 1);
  CHECK(o.cancelled == 1);
  CHECK(o.timed_out == 1);
  CHECK(o.rejected == 1);
  CHECK(o.expired == 2);
  CHECK(o.returned == 1);
}

TEST_CASE("starting an operation records its queue wait and restamps it with its start",
          "[pool_counters]") {
  pool_counters counters;
  auto* op = new fake_pool_op;
  const time_point submitted = std::chrono::steady_clock::now();
  op->enqueued_at_ = submitted;
  counters.start_running(op, submitted + 5ms);
  CHECK(op->enqueued_at_ == submitted + 5ms);
  const auto wait = counters.queue_wait();
  CHECK(wait.count == 1);
  CHECK(wait.max == 5ms);
  op->release();
}

TEST_CASE("an operation submitted after the worker's last return waited for nothing",
          "[pool_counters]") {
  pool_counters counters;
  auto* op = new fake_pool_op;
  const time_point submitted = std::chrono::steady_clock::now();
  op->enqueued_at_ = submitted;
  counters.start_running(op, submitted - 1ms); // the previous operation returned before it came
  CHECK(op->enqueued_at_ == submitted);
  CHECK(counters.queue_wait().max == 0ns);
  op->release();
}

TEST_CASE("an operation that never queued records no queue wait", "[pool_counters]") {
  pool_counters counters;
  auto* op = new fake_pool_op;
  const time_point now = std::chrono::steady_clock::now();
  counters.start_running(op, now);
  CHECK(counters.queue_wait().count == 0);
  CHECK(op->enqueued_at_ == now);
  op->release();
}

TEST_CASE("a return is timed from the start, counted, and remembered by its worker thread",
          "[pool_counters]") {
  pool_counters counters;
  auto* op = new fake_pool_op;
  const time_point started = std::chrono::steady_clock::now() - 1h; // an hour-long call
  op->enqueued_at_ = started;
  counters.note_returned(op);
  CHECK(counters.outcomes().returned == 1);
  CHECK(counters.run_time().count == 1);
  CHECK(counters.run_time().max >= 1h);
  CHECK(smartasync::detail::last_return_ > started);
  std::thread([] { CHECK(smartasync::detail::last_return_ == time_point{}); }).join();
  op->release();
}

TEST_CASE("concurrent workers lose no count", "[pool_counters]") {
  pool_counters counters;
  constexpr int per_thread = 10000;
  auto work = [&] {
    for (int i = 0; i < per_thread; ++i)
      counters.note_finished(i % 2 == 0);
  };
  std::thread a(work), b(work);
  a.join();
  b.join();
  const auto o = counters.outcomes();
  CHECK(o.completed == per_thread);
  CHECK(o.failed == per_thread);
}
