// Test that the header is self-contained.
#include <smartasync/detail/admission_queue.hpp>

#include "common/fake_pool_op.hpp"

#include "common/catch.hpp"

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

using smartasync::detail::admission;
using smartasync::detail::admission_queue;
using smartasync::detail::op_state;
using smartasync::detail::pool_op;
using test_support::fake_pool_op;

namespace {

// Submits from an event loop's point of view (never blocks), recording whether it was
// admitted at once.
admission submit(admission_queue& queue, pool_op* op, bool* admitted_now = nullptr,
                 bool bypass_reject = false) {
  return queue.submit(op, /*may_block=*/false, bypass_reject,
                      [&](std::unique_lock<std::mutex>& lock) {
                        CHECK(lock.owns_lock());
                        if (admitted_now)
                          *admitted_now = true;
                        lock.unlock();
                      });
}

pool_op* take(admission_queue& queue) {
  std::lock_guard lock(queue.mutex());
  return queue.take_next_locked();
}

admission_queue::counts counts(admission_queue& queue) {
  std::lock_guard lock(queue.mutex());
  return queue.counts_locked();
}

} // namespace

TEST_CASE("admitted operations are taken in submission order, each counted started",
          "[admission_queue]") {
  admission_queue queue(4, /*reject_when_full=*/false);
  fake_pool_op::record record;
  auto* a = new fake_pool_op(&record);
  auto* b = new fake_pool_op(&record);
  bool admitted_now = false;
  CHECK(submit(queue, a, &admitted_now) == admission::accepted);
  CHECK(admitted_now);
  CHECK(a->state_ == op_state::queued);
  CHECK(queue.work_hinted());
  CHECK(submit(queue, b) == admission::accepted);
  CHECK(take(queue) == a);
  CHECK(a->state_ == op_state::running);
  CHECK(take(queue) == b);
  CHECK_FALSE(queue.work_hinted());
  CHECK(take(queue) == nullptr);
  const auto c = counts(queue);
  CHECK(c.submitted == 2);
  CHECK(c.started == 2);
  a->execute();
  b->execute();
  CHECK(record.destroyed == 2);
}

TEST_CASE("beyond the capacity the reject policy refuses, unless the submitter bypasses it",
          "[admission_queue]") {
  admission_queue queue(1, /*reject_when_full=*/true);
  fake_pool_op::record record;
  auto* first = new fake_pool_op(&record);
  auto* refused = new fake_pool_op(&record);
  auto* bypassing = new fake_pool_op(&record);
  CHECK(submit(queue, first) == admission::accepted);
  CHECK(submit(queue, refused) == admission::queue_full);
  CHECK(refused->state_ == op_state::idle); // never linked: still the caller's
  refused->release();
  bool admitted_now = false;
  CHECK(submit(queue, bypassing, &admitted_now, /*bypass_reject=*/true) == admission::accepted);
  CHECK_FALSE(admitted_now); // it parks for admission
  auto c = counts(queue);
  CHECK(c.submitted == 3);
  CHECK(c.admitted == 1);
  CHECK(c.parked == 1);
  take(queue)->execute();
  c = counts(queue);
  CHECK(c.admitted == 1); // the parked one took the freed place
  CHECK(c.parked == 0);
  CHECK(take(queue) == bypassing);
  bypassing->execute();
  CHECK(record.destroyed == 3);
}

TEST_CASE("parked operations are admitted in FIFO order as admitted ones leave",
          "[admission_queue]") {
  admission_queue queue(1, /*reject_when_full=*/false);
  std::vector<fake_pool_op*> ops;
  for (int i = 0; i < 4; ++i) {
    ops.push_back(new fake_pool_op);
    CHECK(submit(queue, ops.back()) == admission::accepted);
  }
  CHECK(counts(queue).parked == 3);
  for (int i = 0; i < 4; ++i) {
    CHECK(ops[static_cast<std::size_t>(i)]->admitted_);
    pool_op* op = take(queue);
    CHECK(op == ops[static_cast<std::size_t>(i)]);
    op->execute();
    if (i < 3)
      CHECK(ops[static_cast<std::size_t>(i + 1)]->admitted_);
  }
}

TEST_CASE("a thread that may block waits in submit until its operation is admitted",
          "[admission_queue]") {
  admission_queue queue(1, /*reject_when_full=*/false);
  CHECK(submit(queue, new fake_pool_op) == admission::accepted);
  std::atomic<bool> returned{false};
  auto* waiting = new fake_pool_op;
  std::thread submitter([&] {
    CHECK(queue.submit(waiting, /*may_block=*/true, false, [](auto& lock) { lock.unlock(); }) ==
          admission::accepted);
    returned = true;
  });
  while (counts(queue).blocked_submitters == 0)
    std::this_thread::yield();
  CHECK_FALSE(returned); // blocked until the head leaves
  take(queue)->execute();
  submitter.join();
  CHECK(returned);
  CHECK(counts(queue).blocked_submitters == 0);
  CHECK(take(queue) == waiting);
  waiting->execute();
}

TEST_CASE("removing a queued operation hands it back once, and admits the next",
          "[admission_queue]") {
  admission_queue queue(1, /*reject_when_full=*/false);
  fake_pool_op::record record;
  auto* head = new fake_pool_op(&record);
  auto* parked = new fake_pool_op(&record);
  head->set_refs_before_sharing(2); // the queue's and ours
  CHECK(submit(queue, head) == admission::accepted);
  CHECK(submit(queue, parked) == admission::accepted);
  int counted = 0;
  CHECK(queue.try_remove(head, [&] { ++counted; }));
  CHECK(counted == 1);
  CHECK(head->state_ == op_state::cancelled);
  CHECK_FALSE(queue.try_remove(head, [&] { ++counted; })); // no longer queued
  CHECK(counted == 1);
  CHECK(parked->admitted_);
  CHECK(counts(queue).admitted == 1);
  head->release();
  CHECK(record.destroyed == 1);
  take(queue)->execute();
  CHECK(record.destroyed == 2);
}

TEST_CASE("closing with cancel empties the queue in order and refuses later submissions",
          "[admission_queue]") {
  admission_queue queue(1, /*reject_when_full=*/false);
  auto* a = new fake_pool_op;
  auto* b = new fake_pool_op;
  CHECK(submit(queue, a) == admission::accepted);
  CHECK(submit(queue, b) == admission::accepted);
  auto removed = queue.close(/*cancel=*/true);
  CHECK(removed.pop_front() == a);
  CHECK(removed.pop_front() == b);
  CHECK(removed.empty());
  CHECK(a->state_ == op_state::cancelled);
  CHECK(b->state_ == op_state::cancelled);
  a->release();
  b->release();
  auto* late = new fake_pool_op;
  CHECK(submit(queue, late) == admission::stopped);
  late->release();
  std::lock_guard lock(queue.mutex());
  CHECK(queue.closed_locked());
  CHECK(queue.empty_locked());
}

TEST_CASE("closing to drain keeps every operation, parked ones included, for the workers",
          "[admission_queue]") {
  admission_queue queue(1, /*reject_when_full=*/false);
  CHECK(submit(queue, new fake_pool_op) == admission::accepted);
  CHECK(submit(queue, new fake_pool_op) == admission::accepted);
  CHECK(queue.close(/*cancel=*/false).empty());
  int taken = 0;
  while (pool_op* op = take(queue)) {
    op->execute();
    ++taken;
  }
  CHECK(taken == 2);
}

TEST_CASE("closing with cancel wakes a blocked submitter and hands its operation back",
          "[admission_queue]") {
  admission_queue queue(1, /*reject_when_full=*/false);
  CHECK(submit(queue, new fake_pool_op) == admission::accepted);
  auto* waiting = new fake_pool_op;
  std::thread submitter([&] {
    CHECK(queue.submit(waiting, /*may_block=*/true, false, [](auto& lock) { lock.unlock(); }) ==
          admission::accepted);
  });
  while (counts(queue).blocked_submitters == 0)
    std::this_thread::yield();
  auto removed = queue.close(/*cancel=*/true);
  submitter.join(); // woken: its operation left the queue
  int count = 0;
  while (pool_op* op = removed.pop_front()) {
    CHECK(op->state_ == op_state::cancelled);
    op->release();
    ++count;
  }
  CHECK(count == 2);
}

TEST_CASE("an inline start counts as submitted and started", "[admission_queue]") {
  admission_queue queue(1, false);
  queue.count_inline_start();
  const auto c = counts(queue);
  CHECK(c.submitted == 1);
  CHECK(c.started == 1);
}
