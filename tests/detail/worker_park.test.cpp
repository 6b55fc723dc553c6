// Test that the header is self-contained.
#include <smartasync/detail/worker_park.hpp>

#include "common/fake_pool_op.hpp"

#include "common/catch.hpp"

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using smartasync::detail::admission_queue;
using smartasync::detail::pool_counters;
using smartasync::detail::worker_park;
using test_support::fake_pool_op;

namespace {

// Waits, under the pool lock, until `ready` holds (the limit only turns a hang into a failure).
template <typename Ready>
bool wait_locked(admission_queue& queue, Ready ready) {
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  for (;;) {
    {
      std::lock_guard lock(queue.mutex());
      if (ready())
        return true;
    }
    if (std::chrono::steady_clock::now() > give_up)
      return false;
    std::this_thread::yield();
  }
}

void submit(admission_queue& queue, fake_pool_op* op) {
  op->enqueued_at_ = std::chrono::steady_clock::now(); // as the pool stamps it
  queue.submit(op, false, false, [](std::unique_lock<std::mutex>& lock) { lock.unlock(); });
}

} // namespace

TEST_CASE("with no idle worker a submission wakes nobody", "[worker_park]") {
  admission_queue queue(8, false);
  worker_park park(0us);
  std::lock_guard lock(queue.mutex());
  CHECK_FALSE(park.claim_wake_for_submission_locked());
  CHECK_FALSE(park.claim_wake_to_pass_on_locked());
  CHECK_FALSE(park.has_free_worker_locked());
}

TEST_CASE("a burst of submissions pays for one wake-up while the woken worker is on its way",
          "[worker_park]") {
  admission_queue queue(8, false);
  worker_park park(0us);
  std::atomic<bool> woke{false};
  std::thread worker([&] {
    std::unique_lock lock(queue.mutex());
    while (!woke) {
      park.park_locked(lock);
      woke = true; // any wake-up ends the test's worker
    }
  });
  REQUIRE(wait_locked(queue, [&] { return park.idle_locked() == 1; }));
  {
    std::lock_guard lock(queue.mutex());
    CHECK(park.has_free_worker_locked());
    CHECK(park.claim_wake_for_submission_locked());
    CHECK_FALSE(park.claim_wake_for_submission_locked()); // one is on its way
    CHECK_FALSE(park.claim_wake_to_pass_on_locked());
    CHECK(park.waking_locked() == 1);
    CHECK_FALSE(park.has_free_worker_locked()); // the idle one is taken by the wake-up
  }
  park.wake_one();
  worker.join();
  std::lock_guard lock(queue.mutex());
  CHECK(park.waking_locked() == 0);
  CHECK(park.idle_locked() == 0);
}

TEST_CASE("a park with a deadline says that it timed out", "[worker_park]") {
  admission_queue queue(8, false);
  worker_park park(0us);
  std::unique_lock lock(queue.mutex());
  bool timed_out = false;
  while (!timed_out) // a spurious wake-up returns false: park again
    timed_out = park.park_locked(lock, std::chrono::steady_clock::now() + 1ms);
  CHECK(park.idle_locked() == 0);
}

TEST_CASE("one worker at a time spins, and only with a spin time", "[worker_park]") {
  admission_queue queue(8, false);
  {
    worker_park no_spin(0us);
    std::lock_guard lock(queue.mutex());
    CHECK_FALSE(no_spin.may_spin_locked(std::chrono::steady_clock::now()));
  }
  worker_park park(1h); // until work shows up (or its core is taken: then it gives up early)
  {
    std::lock_guard lock(queue.mutex());
    CHECK(park.may_spin_locked(std::chrono::steady_clock::now()));
  }
  std::atomic<bool> done{false};
  std::thread spinner([&] {
    std::unique_lock lock(queue.mutex());
    park.spin_locked(lock, queue);
    CHECK(lock.owns_lock());
    done = true;
  });
  REQUIRE(wait_locked(queue, [&] { return park.has_free_worker_locked() || done; }));
  {
    std::lock_guard lock(queue.mutex());
    if (!done) { // still spinning: a submission needs no wake-up, a second spinner waits
      CHECK_FALSE(park.may_spin_locked(std::chrono::steady_clock::now()));
      CHECK_FALSE(park.claim_wake_for_submission_locked());
    }
  }
  auto* op = new fake_pool_op;
  submit(queue, op);
  spinner.join();
  std::lock_guard lock(queue.mutex());
  CHECK_FALSE(park.has_free_worker_locked());
  queue.take_next_locked()->execute();
}

TEST_CASE("a helping worker runs queued operations on its own thread, in order, until done",
          "[worker_park]") {
  admission_queue queue(8, false);
  worker_park park(0us);
  pool_counters counters;
  std::vector<int> ran;
  std::vector<std::thread::id> threads;
  for (int i = 0; i < 3; ++i)
    submit(queue, new fake_pool_op(nullptr, [&, i] {
             ran.push_back(i);
             threads.push_back(std::this_thread::get_id());
           }));
  int parks = 0;
  park.help_until(queue, counters, [&] { return ran.size() == 3; }, [&](bool) { ++parks; });
  CHECK(ran == std::vector<int>{0, 1, 2});
  CHECK(parks == 0); // there was always something to run
  for (auto id : threads)
    CHECK(id == std::this_thread::get_id());
  CHECK(counters.queue_wait().count == 3);
}

TEST_CASE("a helping worker with nothing to run parks until it is told it is done",
          "[worker_park]") {
  admission_queue queue(8, false);
  worker_park park(0us);
  pool_counters counters;
  bool done = false;      // guarded by the pool lock
  int parked_now = 0;     // likewise: what the parked(...) brackets say
  int parked_ever = 0;
  std::thread helper([&] {
    park.help_until(queue, counters, [&] { return done; }, [&](bool parked) {
      parked_now += parked ? 1 : -1;
      parked_ever += parked ? 1 : 0;
    });
  });
  REQUIRE(wait_locked(queue, [&] { return park.idle_locked() == 1; }));
  {
    std::lock_guard lock(queue.mutex());
    CHECK(parked_now == 1); // a shutdown from another worker sees it waiting inside its call
    done = true;
  }
  park.wake_all();
  helper.join();
  CHECK(parked_now == 0);
  CHECK(parked_ever >= 1);
  CHECK(counters.queue_wait().count == 0);
}
