// Test that the header is self-contained.
#include <smartasync/detail/pool_core.hpp>

#include "common/fake_pool_op.hpp"

#include "common/catch.hpp"

#include <chrono>
#include <thread>

using namespace std::chrono_literals;
using smartasync::detail::admission;
using smartasync::detail::pool_core;
using test_support::fake_pool_op;

namespace {

// A core with no owner pool and no threads started: what an operation sees, alone.
pool_core make_core(std::size_t capacity, bool reject) {
  return pool_core(nullptr, capacity, reject, 0us, 1, 1, 0us, 1h, 0ms, {});
}

} // namespace

TEST_CASE("a core stamps each submission and counts a refusal among its outcomes",
          "[pool_core]") {
  auto core = make_core(1, /*reject=*/true);
  auto* first = new fake_pool_op;
  auto* refused = new fake_pool_op;
  const auto before = std::chrono::steady_clock::now();
  CHECK(core.submit(first, false) == admission::accepted);
  CHECK(first->enqueued_at_ >= before);
  CHECK(core.submit(refused, false) == admission::queue_full);
  CHECK(core.counters.outcomes().rejected == 1);
  refused->release();
  CHECK(core.try_remove(first, /*expired=*/false)); // drops the queue's reference: it is gone
  CHECK(core.counters.outcomes().cancelled == 1);     // counted by the removal itself
  std::lock_guard lock(core.queue.mutex());
  CHECK(core.queue.counts_locked().submitted == 2);
}

TEST_CASE("a lane's submission bypasses the reject policy and parks", "[pool_core]") {
  auto core = make_core(1, /*reject=*/true);
  CHECK(core.submit(new fake_pool_op, false) == admission::accepted);
  CHECK(core.submit(new fake_pool_op, false, /*from_lane=*/true) == admission::accepted);
  auto removed = core.queue.close(/*cancel=*/true);
  int count = 0;
  while (auto* op = removed.pop_front()) {
    op->release();
    ++count;
  }
  CHECK(count == 2);
}

TEST_CASE("a nested call counts as submitted and started, with its start stamped",
          "[pool_core]") {
  auto core = make_core(4, false);
  auto* op = new fake_pool_op;
  core.note_nested_start(op);
  CHECK(op->enqueued_at_ != std::chrono::steady_clock::time_point{});
  {
    std::lock_guard lock(core.queue.mutex());
    const auto counts = core.queue.counts_locked();
    CHECK(counts.submitted == 1);
    CHECK(counts.started == 1);
  }
  op->release();
}

TEST_CASE("a core's stop token stops with its source", "[pool_core]") {
  auto core = make_core(4, false);
  const auto token = core.stop_token();
  CHECK_FALSE(token.stop_requested());
  core.stop_source.request_stop();
  CHECK(token.stop_requested());
}
