// Test that the header is self-contained.
#include <smartasync/detail/worker_threads.hpp>

#include "common/fake_pool_op.hpp"
#include "common/test_support.hpp"

#include "common/catch.hpp"

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using smartasync::detail::admission_queue;
using smartasync::detail::running_calls;
using smartasync::detail::worker_park;
using smartasync::detail::worker_threads;
using test_support::eventually;
using test_support::fake_pool_op;

namespace {

// The parts a pool wires together, with a minimal worker loop (the pool's own adds
// spinning, timing and the exit report), to test the threads' part through its interface.
struct rig {
  admission_queue queue{64, false};
  worker_park park{0us};
  worker_threads threads;
  running_calls calls;
  std::atomic<std::size_t> most_running{0};
  std::atomic<std::size_t> running{0};
  std::atomic<std::size_t> finished{0};

  rig(std::size_t min, std::size_t max, std::chrono::milliseconds keep_alive = 1h)
      : threads(min, max, 0us, keep_alive), calls(threads.max()) {
    threads.start(queue, park, [this](std::size_t slot) { loop(slot); });
  }
  ~rig() {
    queue.close(false);
    park.wake_all();
    threads.stop_grower();
    threads.join();
  }

  void loop(std::size_t slot) {
    std::unique_lock lock(queue.mutex());
    threads.arrived_locked();
    for (;;) {
      const auto idle_since = std::chrono::steady_clock::now();
      while (queue.empty_locked() && !queue.closed_locked()) {
        const bool timed_out = threads.may_retire_locked()
                                   ? park.park_locked(lock, threads.retire_at(idle_since))
                                   : park.park_locked(lock);
        if (timed_out && queue.empty_locked() && threads.may_retire_locked()) {
          threads.retire_locked(slot);
          return;
        }
      }
      smartasync::detail::pool_op* op = queue.take_next_locked();
      if (!op) {
        threads.exited_locked();
        return;
      }
      calls.running_locked(slot, *op);
      // As the pool does: pass the wake-up on, and arm the grower for work left behind.
      const bool wake_next = !queue.empty_locked() && park.claim_wake_to_pass_on_locked();
      const bool arm = !queue.empty_locked() && threads.arm_grower_if_needed_locked();
      lock.unlock();
      if (wake_next)
        park.wake_one();
      if (arm)
        threads.wake_grower();
      op->execute();
      lock.lock();
      calls.idle_locked(slot);
    }
  }

  // Submits an operation that waits for `gate`, as the pool does: wake a worker or arm the
  // grower.
  void submit_blocked_on(test_support::gate& gate) {
    auto* op = new fake_pool_op(nullptr, [this, &gate] {
      const std::size_t now = ++running;
      std::size_t seen = most_running;
      while (now > seen && !most_running.compare_exchange_weak(seen, now)) {
      }
      gate.wait();
      --running;
      ++finished;
    });
    op->enqueued_at_ = std::chrono::steady_clock::now();
    queue.submit(op, false, false, [this](std::unique_lock<std::mutex>& lock) {
      const bool wake = park.claim_wake_for_submission_locked();
      const bool arm = threads.arm_grower_if_needed_locked();
      lock.unlock();
      if (wake)
        park.wake_one();
      if (arm)
        threads.wake_grower();
    });
  }
};

// Opens a gate when a test ends, also when a REQUIRE ends it early, so that the rig (declared
// after the gate, destroyed before it) can join its workers.
struct open_at_end {
  test_support::gate& gate;
  ~open_at_end() { gate.open(); }
};

} // namespace

TEST_CASE("a fixed set of workers starts its minimum and never grows", "[worker_threads]") {
  test_support::gate gate;
  rig r(2, 2);
  open_at_end opener{gate};
  CHECK_FALSE(r.threads.elastic());
  CHECK(r.threads.count() == 2);
  for (int i = 0; i < 4; ++i)
    r.submit_blocked_on(gate);
  REQUIRE(eventually([&] { return r.running == 2; }));
  {
    std::lock_guard lock(r.queue.mutex());
    CHECK_FALSE(r.threads.arm_grower_if_needed_locked());
    CHECK(r.threads.added_locked() == 0);
  }
  gate.open();
  REQUIRE(eventually([&] { return r.finished == 4; }));
  CHECK(r.most_running == 2);
}

TEST_CASE("an elastic set grows while every worker is busy, up to its maximum",
          "[worker_threads]") {
  test_support::gate gate;
  rig r(1, 3);
  open_at_end opener{gate};
  CHECK(r.threads.elastic());
  CHECK(r.threads.count() == 1);
  for (int i = 0; i < 5; ++i)
    r.submit_blocked_on(gate);
  REQUIRE(eventually([&] { return r.running == 3; }));
  CHECK(r.threads.count() == 3);
  {
    std::lock_guard lock(r.queue.mutex());
    CHECK(r.threads.added_locked() == 2);
    CHECK(r.queue.size_locked() == 2); // the rest wait: the maximum is reached
  }
  gate.open();
  REQUIRE(eventually([&] { return r.finished == 5; }));
  CHECK(r.most_running == 3);
}

TEST_CASE("workers beyond the minimum retire when idle past their keep-alive",
          "[worker_threads]") {
  test_support::gate gate;
  rig r(1, 3, 1ms);
  open_at_end opener{gate};
  for (int i = 0; i < 3; ++i)
    r.submit_blocked_on(gate);
  REQUIRE(eventually([&] { return r.running == 3; }));
  gate.open();
  REQUIRE(eventually([&] { return r.threads.count() == 1; }));
  std::lock_guard lock(r.queue.mutex());
  CHECK(r.threads.retired_locked() == 2);
  CHECK_FALSE(r.threads.may_retire_locked()); // the minimum stays
}

TEST_CASE("retired slots are reused when the set grows again", "[worker_threads]") {
  rig r(1, 2, 1ms);
  for (int round = 0; round < 2; ++round) {
    test_support::gate gate;
    r.submit_blocked_on(gate);
    r.submit_blocked_on(gate);
    REQUIRE(eventually([&] { return r.running == 2; }));
    gate.open();
    REQUIRE(eventually([&] { return r.finished == 2u * (round + 1u) && r.threads.count() == 1; }));
  }
  std::lock_guard lock(r.queue.mutex());
  CHECK(r.threads.added_locked() == 2);
  CHECK(r.threads.retired_locked() == 2);
}

TEST_CASE("at exit the workers that left are joined and the one still in a call is named",
          "[worker_threads]") {
  test_support::gate gate;
  rig r(2, 2);
  open_at_end opener{gate};
  r.submit_blocked_on(gate);
  REQUIRE(eventually([&] { return r.running == 1; }));
  r.queue.close(false);
  r.park.wake_all();
  r.threads.stop_grower();
  const auto stuck = r.threads.join_at_exit(1ms, /*on_worker=*/false, r.calls);
  CHECK(stuck.size() == 1);
  gate.open(); // the rig's destructor joins the worker left running
}
