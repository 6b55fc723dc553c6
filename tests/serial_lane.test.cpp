// Test that the header is self-contained.
#include "smartasync/serial_lane.hpp"

#include "common/test_support.hpp"

#include "smartasync/blocking_context.hpp"
#include "smartasync/offload.hpp"

#include "common/catch.hpp"

#include "common/asio_flavour.hpp"

#include SMARTASYNC_ASIO_HEADER(bind_cancellation_slot.hpp)
#include SMARTASYNC_ASIO_HEADER(bind_executor.hpp)
#include SMARTASYNC_ASIO_HEADER(cancellation_signal.hpp)
#include SMARTASYNC_ASIO_HEADER(co_spawn.hpp)
#include SMARTASYNC_ASIO_HEADER(detached.hpp)
#include SMARTASYNC_ASIO_HEADER(executor_work_guard.hpp)
#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(post.hpp)
#include SMARTASYNC_ASIO_HEADER(use_awaitable.hpp)
#include SMARTASYNC_ASIO_HEADER(use_future.hpp)

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <future>
#include <mutex>
#include <numeric>
#include <set>
#include <string>
#include <thread>
#include <vector>

using test_support::code_of;
using test_support::gate;

namespace {

// Counts how many calls are inside at once, and remembers the most.
struct overlap_meter {
  std::atomic<int> inside{0};
  std::atomic<int> most{0};
  void enter() {
    const int now = ++inside;
    int seen = most.load();
    while (now > seen && !most.compare_exchange_weak(seen, now)) {
    }
  }
  void leave() { --inside; }
};

} // namespace

TEST_CASE("a lane runs its calls one at a time, in submission order, on a pool of several "
          "threads") {
  smartasync::blocking_pool pool{4, 1024};
  smartasync::serial_lane lane{pool};
  overlap_meter meter;
  std::mutex order_mutex;
  std::vector<int> order;
  constexpr int calls = 200;

  asio::io_context io;
  int completed = 0;
  for (int i = 0; i < calls; ++i) {
    smartasync::async_offload(
        lane,
        [&, i] {
          meter.enter();
          {
            std::lock_guard lock(order_mutex);
            order.push_back(i);
          }
          std::this_thread::yield(); // give an overlapping call every chance to show
          meter.leave();
          return i;
        },
        asio::bind_executor(io, [&](std::exception_ptr e, int) {
          REQUIRE_FALSE(e);
          ++completed;
        }));
  }
  io.run();

  std::vector<int> expected(calls);
  std::iota(expected.begin(), expected.end(), 0);
  CHECK(completed == calls);
  CHECK(order == expected);
  CHECK(meter.most == 1);
  const auto stats = lane.stats();
  CHECK(stats.submitted == calls);
  CHECK_FALSE(stats.busy);
  CHECK(stats.queued == 0);
  CHECK(lane.metrics().turn_wait.count == calls);
}

TEST_CASE("lanes are isolated: a blocked lane holds one worker, other lanes and the pool go on") {
  smartasync::blocking_pool pool{2, 1024};
  smartasync::serial_lane slow{pool}, fast{pool};
  gate release_slow;
  std::atomic<bool> slow_done{false};

  auto slow_first = smartasync::async_offload(slow, [&] { release_slow.wait(); slow_done = true; },
                                              asio::use_future);
  auto slow_second = smartasync::async_offload(slow, [&] { return slow_done.load(); },
                                               asio::use_future);
  // While `slow` is blocked, another lane and plain pool work both complete.
  CHECK(smartasync::async_offload(fast, [] { return 1; }, asio::use_future).get() == 1);
  CHECK(smartasync::async_offload(pool, [] { return 2; }, asio::use_future).get() == 2);
  CHECK(slow.stats().queued == 1);
  CHECK_FALSE(slow_done);
  release_slow.open();
  slow_first.get();
  CHECK(slow_second.get()); // ran after the first had returned
}

TEST_CASE("a lane's metrics() adds the turn-wait distribution to its stats()", "[serial_lane]") {
  smartasync::blocking_pool pool{2};
  smartasync::serial_lane lane{pool};
  gate release;
  auto first = smartasync::async_offload(lane, [&] { release.wait(); }, asio::use_future);
  auto second = smartasync::async_offload(lane, [] {}, asio::use_future);
  const auto m = lane.metrics();
  CHECK(m.counts.queued == 1); // the second waits for the turn
  CHECK(m.counts.busy);
  CHECK(m.turn_wait.count == 1); // only the first has had the turn
  release.open();
  first.get();
  second.get();
  CHECK(lane.metrics().turn_wait.count == 2);
}

// The former names stay one release and still work (their deprecation warnings silenced here,
// where using them is the point).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
TEST_CASE("the former lane_stats::waiting and turn_wait are still filled",
          "[serial_lane][deprecated]") {
  smartasync::blocking_pool pool{2};
  smartasync::serial_lane lane{pool};
  gate release;
  auto first = smartasync::async_offload(lane, [&] { release.wait(); }, asio::use_future);
  auto second = smartasync::async_offload(lane, [] {}, asio::use_future);
  const auto s = lane.stats();
  CHECK(s.waiting == 1);
  CHECK(s.waiting == s.queued);
  CHECK(s.turn_wait.count == lane.metrics().turn_wait.count);
  release.open();
  first.get();
  second.get();
}
#pragma GCC diagnostic pop

TEST_CASE("an idle lane holds no thread: a thousand lanes share a pool of two") {
  smartasync::blocking_pool pool{2, 4096};
  smartasync::keyed_lanes<int> lanes{pool};
  std::vector<std::future<int>> results;
  for (int key = 0; key < 1000; ++key)
    results.push_back(smartasync::async_offload(lanes[key], [key] { return key; }, asio::use_future));
  long sum = 0;
  for (auto& r : results)
    sum += r.get();
  CHECK(sum == 999L * 1000 / 2);
  CHECK(lanes.size() == 1000);
  CHECK(&lanes[7] == &lanes[7]);
  CHECK(&lanes[7] != &lanes[8]);
  CHECK(pool.thread_count() == 2);
}

TEST_CASE("a synchronous call on a lane waits for the calls before it and runs on its own "
          "thread") {
  smartasync::blocking_pool pool{2, 1024};
  smartasync::serial_lane lane{pool};
  gate release;
  std::mutex order_mutex;
  std::vector<std::string> order;
  auto note = [&](std::string what) {
    std::lock_guard lock(order_mutex);
    order.push_back(std::move(what));
  };

  auto first = smartasync::async_offload(lane, [&] { release.wait(); note("async"); },
                                         asio::use_future);
  std::thread::id ran_on;
  std::thread caller([&] {
    lane.run([&] {
      ran_on = std::this_thread::get_id();
      note("sync");
    });
  });
  const auto caller_id = caller.get_id();
  // The synchronous caller is queued behind the async call (it cannot have run yet).
  while (lane.stats().queued == 0)
    std::this_thread::yield();
  CHECK(order.empty());
  release.open();
  first.get();
  caller.join();
  CHECK(order == std::vector<std::string>{"async", "sync"});
  CHECK(ran_on == caller_id);
}

TEST_CASE("a call made from inside the lane's own call runs inline instead of deadlocking") {
  smartasync::blocking_pool pool{1, 1024};
  smartasync::serial_lane lane{pool};
  const auto outer = smartasync::async_offload(lane, [&] {
    const auto here = std::this_thread::get_id();
    // Synchronous form: inline.
    const auto sync_thread = lane.run([] { return std::this_thread::get_id(); });
    // Asynchronous form with a callback: also inline, completed through the system executor.
    std::promise<std::thread::id> nested;
    smartasync::async_offload(lane, [] { return std::this_thread::get_id(); },
                              [&](std::exception_ptr, std::thread::id id) { nested.set_value(id); });
    return std::vector<std::thread::id>{here, sync_thread, nested.get_future().get()};
  }, asio::use_future).get();
  CHECK(outer[1] == outer[0]);
  CHECK(outer[2] == outer[0]);
}

TEST_CASE("a pool worker waiting for a lane's turn runs the pool's queue, so a one-thread pool "
          "does not deadlock") {
  smartasync::blocking_pool pool{1, 1024};
  smartasync::serial_lane lane{pool};
  gate hold;
  // The only worker is busy; behind it: a plain call that uses the lane synchronously, then a
  // lane call that takes the lane's turn while queued in the pool.
  auto blocker = smartasync::async_offload(pool, [&] { hold.wait(); }, asio::use_future);
  auto user = smartasync::async_offload(pool, [&] { return lane.run([] { return 7; }); },
                                        asio::use_future);
  auto holder = smartasync::async_offload(lane, [] { return 5; }, asio::use_future);
  hold.open();
  blocker.get();
  CHECK(holder.get() == 5);
  CHECK(user.get() == 7);
}

TEST_CASE("on a one-thread pool, two plain calls waiting for a lane's turn and a lane call "
          "queued behind them all complete") {
  smartasync::blocking_pool pool{1, 1024};
  smartasync::serial_lane lane{pool};
  gate hold;
  std::mutex mutex;
  std::vector<std::string> order;
  auto note = [&](const char* what) {
    std::lock_guard lock(mutex);
    order.push_back(what);
  };
  auto blocker = smartasync::async_offload(pool, [&] { hold.wait(); }, asio::use_future);
  // X waits for the turn and runs the pool's queue meanwhile, which runs Y; Y waits too, and
  // runs L, which holds the turn. Y is stacked on X on the one worker, so Y must be served
  // first.
  auto x = smartasync::async_offload(pool, [&] { lane.run([&] { note("x"); }); }, asio::use_future);
  auto y = smartasync::async_offload(pool, [&] { lane.run([&] { note("y"); }); }, asio::use_future);
  auto l = smartasync::async_offload(lane, [&] { note("l"); }, asio::use_future);
  hold.open();
  blocker.get();
  l.get();
  y.get();
  x.get();
  CHECK(order == std::vector<std::string>{"l", "y", "x"});
  CHECK(lane.stats().submitted == 3);
  CHECK_FALSE(lane.stats().busy);
}

TEST_CASE("on a one-thread pool, waits for a lane's turn stacked three deep are served "
          "innermost first, after the calls queued before them") {
  smartasync::blocking_pool pool{1, 1024};
  smartasync::serial_lane lane{pool};
  gate hold, holder_in, holder_release, other_queued;
  std::mutex mutex;
  std::vector<std::string> order;
  auto note = [&](const char* what) {
    std::lock_guard lock(mutex);
    order.push_back(what);
  };
  // A plain thread holds the turn, and another waits for it: the stacked waits of the worker
  // come after that one and after the lane call, which were queued first.
  std::thread holder([&] {
    lane.run([&] {
      holder_in.open();
      holder_release.wait();
      note("holder");
    });
  });
  holder_in.wait();
  std::thread other([&] { lane.run([&] { note("other"); }); });
  while (lane.stats().queued != 1)
    std::this_thread::yield();
  auto blocker = smartasync::async_offload(pool, [&] { hold.wait(); }, asio::use_future);
  std::vector<std::future<void>> stacked;
  for (const char* name : {"a", "b", "c"})
    stacked.push_back(smartasync::async_offload(
        pool, [&, name] { lane.run([&, name] { note(name); }); }, asio::use_future));
  auto last = smartasync::async_offload(lane, [&] { note("lane call"); }, asio::use_future);
  hold.open();
  blocker.get();
  while (lane.stats().queued != 5) // other, the lane call, c, b, a
    std::this_thread::yield();
  holder_release.open();
  holder.join();
  other.join();
  for (auto& f : stacked)
    f.get();
  last.get();
  CHECK(order == std::vector<std::string>{"holder", "other", "lane call", "c", "b", "a"});
}

TEST_CASE("on a one-thread pool, a plain call that waits for a lane's turn while an earlier wait "
          "of its worker already holds it runs on that turn") {
  smartasync::blocking_pool pool{1, 1024};
  smartasync::serial_lane lane{pool};
  gate hold, holder_in, holder_release, z_in, z_release;
  std::mutex mutex;
  std::vector<std::string> order;
  auto note = [&](const char* what) {
    std::lock_guard lock(mutex);
    order.push_back(what);
  };
  std::thread holder([&] {
    lane.run([&] {
      holder_in.open();
      holder_release.wait();
      note("holder");
    });
  });
  holder_in.wait();
  auto blocker = smartasync::async_offload(pool, [&] { hold.wait(); }, asio::use_future);
  auto x = smartasync::async_offload(pool, [&] { lane.run([&] { note("x"); }); }, asio::use_future);
  auto z = smartasync::async_offload(pool, [&] {
    z_in.open();
    z_release.wait();
    return lane.run([&] {
      note("z");
      return lane.is_current();
    });
  }, asio::use_future);
  hold.open();
  blocker.get();
  z_in.wait(); // the worker waits for x's turn and runs z meanwhile
  holder_release.open();
  holder.join(); // the turn has passed to x, whose worker is inside z
  z_release.open();
  CHECK(z.get());
  x.get();
  CHECK(order == std::vector<std::string>{"holder", "z", "x"});
  CHECK_FALSE(lane.stats().busy);
}

TEST_CASE("a pool worker waiting for the turn of a full lane on its own pool runs the calls "
          "ahead of it instead of blocking for space") {
  smartasync::blocking_pool pool{1, 1024};
  smartasync::serial_lane lane{pool, {.queue_capacity = 1, .when_full = smartasync::full_policy::wait}};
  gate hold;
  std::mutex mutex;
  std::vector<std::string> order;
  auto note = [&](const char* what) {
    std::lock_guard lock(mutex);
    order.push_back(what);
  };
  auto blocker = smartasync::async_offload(pool, [&] { hold.wait(); }, asio::use_future);
  auto user = smartasync::async_offload(pool, [&] { lane.run([&] { note("run"); }); },
                                        asio::use_future);
  auto first = smartasync::async_offload(lane, [&] { note("first"); }, asio::use_future);
  auto second = smartasync::async_offload(lane, [&] { note("second"); }, asio::use_future);
  CHECK(lane.stats().queued == 1); // full: the worker must not wait for space
  hold.open();
  blocker.get();
  first.get();
  second.get();
  user.get();
  CHECK(order == std::vector<std::string>{"first", "second", "run"});
}

TEST_CASE("a lane call cancelled while waiting for its turn never runs, and the next one does") {
  smartasync::blocking_pool pool{2, 1024};
  smartasync::serial_lane lane{pool};
  gate release;
  std::atomic<bool> cancelled_ran{false};
  asio::io_context io;
  asio::cancellation_signal signal;
  std::exception_ptr cancelled_outcome;
  bool cancelled_done = false;

  auto first = smartasync::async_offload(lane, [&] { release.wait(); return 1; }, asio::use_future);
  smartasync::async_offload(lane, [&] { cancelled_ran = true; },
                            asio::bind_cancellation_slot(
                                signal.slot(), asio::bind_executor(io, [&](std::exception_ptr e) {
                                  cancelled_outcome = e;
                                  cancelled_done = true;
                                })));
  auto third = smartasync::async_offload(lane, [] { return 3; }, asio::use_future);
  asio::post(io, [&] { signal.emit(asio::cancellation_type::total); });
  io.run();
  CHECK(cancelled_done);
  CHECK(code_of(cancelled_outcome) == asio::error::operation_aborted);
  CHECK(lane.stats().cancelled == 1);
  release.open();
  CHECK(first.get() == 1);
  CHECK(third.get() == 3);
  CHECK_FALSE(cancelled_ran);
}

TEST_CASE("a lane call cancelled just as the turn reaches it never runs to a success: it is "
          "removed, or waited for and completed with operation_aborted") {
  // The cancellation races the hand-over of the turn: the call leaves the lane's FIFO for the
  // pool while it is emitted. A call that sees the cancellation requested when it starts waits
  // until the emission is over, so its outcome must say it was cancelled.
  const int iterations = [] {
    const char* env = std::getenv("SMARTASYNC_STRESS_OPS");
    return env ? std::max(200, std::atoi(env) / 20) : 5000;
  }();
  smartasync::blocking_pool pool{2, 1024};
  smartasync::serial_lane lane{pool};
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread loop([&] { io.run(); });
  // Keeps the pool's mutex busy, which widens the moment between the lane's hand-over and the
  // pool's queue where a lost cancellation would fall.
  std::atomic<bool> done{false};
  std::thread contender([&] {
    while (!done)
      (void)pool.stats();
  });
  int removed = 0, aborted_after_start = 0, aborted_while_running = 0, finished_first = 0;
  int lost = 0, unexpected = 0;
  for (int i = 0; i < iterations; ++i) {
    gate holder_started, holder_release, emitted;
    std::atomic<bool> cancel_requested{false}, started_after_cancel{false}, ran{false};
    asio::cancellation_signal signal;
    std::promise<std::exception_ptr> outcome;
    auto holder = smartasync::async_offload(lane, [&] {
      holder_started.open();
      holder_release.wait();
    }, asio::use_future);
    holder_started.wait();
    // Initiated on the loop, which also emits: the slot is only touched from there.
    asio::post(io, [&] {
      smartasync::async_offload(
          lane,
          [&] {
            ran = true;
            if (cancel_requested) {
              started_after_cancel = true;
              emitted.wait();
            }
          },
          asio::bind_cancellation_slot(signal.slot(), asio::bind_executor(io, [&](std::exception_ptr e) {
            outcome.set_value(e);
          })));
    });
    while (lane.stats().queued != 1)
      std::this_thread::yield();
    const int spins = i % 64;
    std::thread releaser([&] { holder_release.open(); });
    asio::post(io, [&] {
      for (int n = 0; n < spins; ++n)
        smartasync::detail::cpu_relax();
      cancel_requested = true;
      signal.emit(asio::cancellation_type::terminal);
      emitted.open();
    });
    releaser.join();
    holder.get();
    const std::exception_ptr e = outcome.get_future().get();
    emitted.wait(); // the emitter is done with this iteration's objects
    const bool aborted = test_support::code_of(e) == asio::error::operation_aborted;
    if (!ran && aborted)
      ++removed; // still waiting (in the lane or the pool's queue)
    else if (started_after_cancel && aborted)
      ++aborted_after_start;
    else if (started_after_cancel)
      ++lost; // it ran to a success although the cancellation came first
    else if (ran && aborted)
      ++aborted_while_running; // it started before the request
    else if (ran && !e)
      ++finished_first;
    else
      ++unexpected;
  }
  done = true;
  contender.join();
  work.reset();
  loop.join();
  INFO("removed " << removed << ", aborted after start " << aborted_after_start
                  << ", aborted while running " << aborted_while_running << ", finished first "
                  << finished_first);
  CHECK(lost == 0);
  CHECK(unexpected == 0);
}

TEST_CASE("a full lane with full_policy::reject refuses with queue_full, whatever the pool has "
          "room for") {
  smartasync::blocking_pool pool{2, 1024, smartasync::full_policy::reject};
  smartasync::serial_lane lane{pool, {.queue_capacity = 1, .when_full = smartasync::full_policy::reject}};
  gate release;
  auto holder = smartasync::async_offload(lane, [&] { release.wait(); }, asio::use_future);
  auto waiting = smartasync::async_offload(lane, [] {}, asio::use_future);
  auto refused = smartasync::async_offload(lane, [] {}, asio::use_future);
  try {
    refused.get();
    FAIL("expected queue_full");
  } catch (const smartasync::system_error& e) {
    CHECK(e.code() == smartasync::error::queue_full);
  }
  CHECK(test_support::code_thrown_by([&] { lane.run([] {}); }) == smartasync::error::queue_full);
  CHECK(lane.stats().rejected == 2);
  release.open();
  holder.get();
  waiting.get();
}

TEST_CASE("the lane call holding the turn enters the pool even when the pool's queue is full") {
  smartasync::blocking_pool pool{1, 1, smartasync::full_policy::reject};
  smartasync::serial_lane lane{pool};
  gate started, release;
  auto blocker = smartasync::async_offload(pool, [&] { started.open(); release.wait(); },
                                           asio::use_future);
  started.wait();
  auto filler = smartasync::async_offload(pool, [] { return 1; }, asio::use_future); // queue full
  auto refused = smartasync::async_offload(pool, [] { return 2; }, asio::use_future);
  CHECK(test_support::code_thrown_by([&] { refused.get(); }) == smartasync::error::queue_full);
  // The lane accepted its call, so the pool takes it past its bound instead of refusing it.
  auto through_lane = smartasync::async_offload(lane, [] { return 3; }, asio::use_future);
  CHECK(pool.stats().parked == 1);
  release.open();
  blocker.get();
  CHECK(filler.get() == 1);
  CHECK(through_lane.get() == 3);
}

TEST_CASE("shutting the pool down settles every lane call: none is lost, none left waiting") {
  auto pool = std::make_unique<smartasync::blocking_pool>(1, 1024);
  smartasync::serial_lane lane{*pool};
  gate release;
  std::atomic<int> outcomes{0}, ran{0}, unexpected{0};
  gate started;
  auto blocker = smartasync::async_offload(*pool, [&] { started.open(); release.wait(); },
                                           asio::use_future);
  started.wait(); // running, not queued: the shutdown below lets it finish
  constexpr int calls = 10;
  for (int i = 0; i < calls; ++i)
    smartasync::async_offload(lane, [&] { ++ran; }, [&](std::exception_ptr e) {
      // (On other threads: counted here, checked below.)
      if (code_of(e) != asio::error::operation_aborted && code_of(e) != smartasync::error::pool_stopped)
        ++unexpected;
      ++outcomes;
    });
  std::thread stopper([&] { pool->shutdown(smartasync::shutdown_mode::cancel); });
  while (!pool->stopped())
    std::this_thread::yield();
  release.open();
  stopper.join();
  blocker.get();
  // Handlers without an executor run on a worker or the system executor: wait for them.
  while (outcomes.load() < calls)
    std::this_thread::yield();
  CHECK(outcomes == calls);
  CHECK(unexpected == 0);
  CHECK(ran == 0); // the first was queued behind the blocker when the pool was cancelled
  CHECK_FALSE(lane.stats().busy);
}

TEST_CASE("a lane call that shuts its pool down returns while another worker waits for the "
          "lane's turn") {
  // The other worker's call waits for the turn the shutting-down call holds: a shutdown that
  // waited for that worker to leave would wait for itself.
  smartasync::blocking_pool pool{2, 1024};
  smartasync::serial_lane lane{pool};
  gate waiter_running;
  auto holder = smartasync::async_offload(lane, [&] {
    waiter_running.wait();
    pool.shutdown(); // a hang here is the failure (the test's timeout turns it into one)
    return std::this_thread::get_id();
  }, asio::use_future);
  auto waiter = smartasync::async_offload(pool, [&] {
    waiter_running.open();
    return lane.run([] { return std::this_thread::get_id(); }); // waits for the holder's turn
  }, asio::use_future);
  const auto holder_thread = holder.get();
  const auto waiter_ran_on = waiter.get(); // the lane call ran, after the holder returned
  CHECK(holder_thread != waiter_ran_on);
  CHECK(pool.stopped());
  CHECK_FALSE(lane.stats().busy);
}

TEST_CASE("a lane destroyed on the only worker of its pool runs the call holding its turn "
          "first") {
  // The lane's call is queued in the pool behind the very worker that destroys the lane.
  smartasync::blocking_pool pool{1, 1024};
  auto lane = std::make_unique<smartasync::serial_lane>(pool);
  gate lane_call_queued;
  auto destroyer = smartasync::async_offload(pool, [&] {
    lane_call_queued.wait();
    lane.reset(); // a hang here is the failure (the test's timeout turns it into one)
    return true;
  }, asio::use_future);
  auto lane_call = smartasync::async_offload(*lane, [] { return 7; }, asio::use_future);
  while (pool.stats().queued == 0)
    std::this_thread::yield();
  lane_call_queued.open();
  CHECK(destroyer.get());
  CHECK(lane_call.get() == 7);
}

TEST_CASE("a lane destroyed on a worker while its call shuts the pool down returns") {
  // The call holding the turn waits for the destroying worker to be out of the way; the
  // destroying worker waits for that call.
  smartasync::blocking_pool pool{2, 1024};
  auto lane = std::make_unique<smartasync::serial_lane>(pool);
  gate destroyer_running;
  auto holder = smartasync::async_offload(*lane, [&] {
    destroyer_running.wait();
    pool.shutdown();
    return 1;
  }, asio::use_future);
  auto destroyer = smartasync::async_offload(pool, [&] {
    destroyer_running.open();
    lane.reset(); // waits for the holder's call
    return 2;
  }, asio::use_future);
  CHECK(holder.get() == 1); // a hang here is the failure
  CHECK(destroyer.get() == 2);
  CHECK(pool.stopped());
}

TEST_CASE("a lane destroyed inside its own asynchronous call cancels the calls waiting for the "
          "turn, and the call completes") {
  smartasync::blocking_pool pool{2, 1024};
  auto lane = std::make_unique<smartasync::serial_lane>(pool);
  std::atomic<bool> later_ran{false};
  gate release;
  auto own = smartasync::async_offload(*lane, [&] {
    release.wait();
    lane.reset(); // from inside the call that holds the turn
    return 1;
  }, asio::use_future);
  auto later = smartasync::async_offload(*lane, [&] { later_ran = true; }, asio::use_future);
  release.open();
  CHECK(own.get() == 1);
  CHECK(test_support::code_thrown_by([&] { later.get(); }) == asio::error::operation_aborted);
  CHECK_FALSE(later_ran);
  // The worker that ran the call is back in service.
  CHECK(smartasync::async_offload(pool, [] { return 2; }, asio::use_future).get() == 2);
}

TEST_CASE("a run() waiting for the turn of a lane that is destroyed throws operation_aborted") {
  smartasync::blocking_pool pool{2, 1024};
  auto lane = std::make_unique<smartasync::serial_lane>(pool);
  std::atomic<bool> ran{false};
  gate release;
  auto own = smartasync::async_offload(*lane, [&] {
    release.wait();
    lane.reset();
  }, asio::use_future);
  smartasync::error_code outcome;
  std::thread waiter([&, l = lane.get()] {
    outcome = test_support::code_thrown_by([&] { l->run([&] { ran = true; }); });
  });
  while (lane->stats().queued != 1)
    std::this_thread::yield();
  release.open();
  own.get();
  waiter.join();
  CHECK(outcome == asio::error::operation_aborted);
  CHECK_FALSE(ran);
}

TEST_CASE("a lane destroyed inside its own synchronous call passes nothing on to a freed lane") {
  smartasync::blocking_pool pool{1, 1024};
  auto lane = std::make_unique<smartasync::serial_lane>(pool);
  const int result = lane->run([&] {
    lane.reset();
    return 3;
  });
  CHECK(result == 3);
  // Inside a pool call too.
  lane = std::make_unique<smartasync::serial_lane>(pool);
  auto in_pool = smartasync::async_offload(pool, [&] {
    return lane->run([&] {
      lane.reset();
      return 4;
    });
  }, asio::use_future);
  CHECK(in_pool.get() == 4);
  CHECK(lane == nullptr);
}

TEST_CASE("a thread-affine lane runs every call, asynchronous or synchronous, on its one thread") {
  smartasync::thread_affine_lane lane;
  std::set<std::thread::id> seen;
  std::mutex seen_mutex;
  auto record = [&] {
    std::lock_guard lock(seen_mutex);
    seen.insert(std::this_thread::get_id());
  };
  std::vector<std::thread> callers;
  for (int i = 0; i < 3; ++i)
    callers.emplace_back([&] {
      for (int j = 0; j < 20; ++j)
        lane.run(record);
    });
  asio::io_context io;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    for (int j = 0; j < 20; ++j)
      co_await smartasync::async_offload(lane, record);
    // Nested inside the lane: inline, still the lane's thread.
    co_await smartasync::async_offload(lane, [&] { lane.run(record); });
  }, asio::detached);
  io.run();
  for (auto& c : callers)
    c.join();
  CHECK(seen == std::set<std::thread::id>{lane.thread_id()});
  CHECK(lane.thread_id() != std::this_thread::get_id());
  CHECK(lane.thread_id() != std::thread::id());
  CHECK(lane.run([] { return std::string("value"); }) == "value");
  CHECK_THROWS_AS(lane.run([]() -> int { throw std::runtime_error("boom"); }), std::runtime_error);
}

TEST_CASE("a lane created with a zero capacity is refused") {
  smartasync::blocking_pool pool{1, 16};
  CHECK_THROWS_AS(smartasync::serial_lane(pool, {.queue_capacity = 0}), std::invalid_argument);
}

// What a call captures is its own: moved into the operation once, destroyed once, also when
// the lane hands the call from one worker to the next and the completion is batched onto the
// caller's loop. (The lambdas are named before co_await: see docs/integration.md, "Compilers".)
namespace {
struct counted_capture {
  static inline std::atomic<int> live{0};
  std::string text = std::string(64, 'x'); // owns memory: a second destruction is a double free
  counted_capture() { ++live; }
  counted_capture(const counted_capture& other) : text(other.text) { ++live; }
  counted_capture(counted_capture&& other) noexcept : text(std::move(other.text)) { ++live; }
  ~counted_capture() { --live; }
};
} // namespace

TEST_CASE("a lane call's captures are destroyed exactly once, whichever form awaits it") {
  {
    smartasync::blocking_pool pool{2};
    smartasync::serial_lane lane{pool};
    asio::io_context io;
    std::size_t total = 0;
    for (int k = 0; k < 4; ++k)
      asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 50; ++i) {
          counted_capture capture;
          auto call = [capture] { return capture.text.size(); };
          total += co_await smartasync::async_offload(lane, std::move(call), asio::use_awaitable);
        }
      }, asio::detached);
    io.run();
    CHECK(total == 4 * 50 * 64);
    counted_capture capture;
    auto call = [capture] { return capture.text.size(); };
    CHECK(smartasync::async_offload(lane, std::move(call), asio::use_future).get() == 64);
  }
  CHECK(counted_capture::live == 0); // one destruction too many would show as a negative count
}

namespace {

using test_support::mentions;
using test_support::on_loop;

std::string at_line(std::uint_least32_t line) {
  return fmt::format("serial_lane.test.cpp:{}", line);
}

} // namespace

TEST_CASE("a lane's run() on an event loop is reported by default, naming where the lane was "
          "made and the call, and still runs",
          "[serial_lane][diagnostics]") {
  test_support::diagnostics_capture capture;
  smartasync::blocking_pool pool{1};
  const auto made_on = __LINE__ + 1;
  smartasync::serial_lane lane{pool};
  asio::io_context ioc;
  int runs = 0;
  std::uint_least32_t called_on = 0;
  on_loop(ioc, [&] { called_on = __LINE__; lane.run([&] { ++runs; }); });
  CHECK(runs == 1);
  const auto reports = capture.reports();
  REQUIRE(reports.size() == 1);
  CHECK(reports[0].kind == smartasync::diagnostic_kind::blocking_call_on_loop);
  CHECK(reports[0].where.line() == called_on);
  CHECK(reports[0].created_at.line() == made_on);
  CHECK(reports[0].thread == std::this_thread::get_id());
  CHECK(mentions(reports[0].message, "serial_lane::run()"));
  CHECK(mentions(reports[0].message, at_line(called_on)));
  CHECK(mentions(reports[0].message, at_line(made_on)));
  CHECK(mentions(reports[0].message, "async_offload(lane, f)"));
}

TEST_CASE("a lane's run() on an event loop follows the lane's loop_call_policy",
          "[serial_lane][diagnostics]") {
  test_support::diagnostics_capture capture;
  smartasync::blocking_pool pool{1};
  asio::io_context ioc;
  int runs = 0;
  std::uint_least32_t called_on = 0;

  SECTION("report: one report naming the lane and the call; the call runs") {
    smartasync::serial_lane lane{pool, {.name = "ledger"}};
    on_loop(ioc, [&] { called_on = __LINE__; lane.run([&] { ++runs; }); });
    CHECK(runs == 1);
    const auto reports = capture.reports();
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].name == "ledger");
    CHECK(reports[0].where.line() == called_on);
    CHECK(mentions(reports[0].message, "serial_lane::run() on lane 'ledger'"));
    CHECK(mentions(reports[0].message, at_line(called_on)));
  }
  SECTION("strict: throws blocking_call_on_loop; neither the call nor the lane is touched") {
    smartasync::serial_lane lane{pool, {.name = "ledger",
                                        .on_loop = smartasync::loop_call_policy::strict}};
    std::string message;
    smartasync::error_code code;
    on_loop(ioc, [&] {
      try {
        called_on = __LINE__; lane.run([&] { ++runs; });
      } catch (const smartasync::system_error& e) {
        code = e.code();
        message = e.what();
      }
    });
    CHECK(code == smartasync::error::blocking_call_on_loop);
    CHECK(runs == 0);
    CHECK(lane.stats().submitted == 0);
    CHECK(mentions(message, "'ledger'"));
    CHECK(mentions(message, at_line(called_on)));
    CHECK(capture.reports().empty());
    lane.run([&] { ++runs; }); // off the loop, strict changes nothing
    CHECK(runs == 1);
  }
  SECTION("silent: runs, no report") {
    smartasync::serial_lane lane{pool, {.on_loop = smartasync::loop_call_policy::silent}};
    on_loop(ioc, [&] { lane.run([&] { ++runs; }); });
    CHECK(runs == 1);
    CHECK(capture.reports().empty());
  }
  SECTION("a context declared with allow_blocking(): runs, no report, even under strict") {
    smartasync::serial_lane lane{pool, {.on_loop = smartasync::loop_call_policy::strict}};
    smartasync::allow_blocking(ioc);
    on_loop(ioc, [&] { lane.run([&] { ++runs; }); });
    CHECK(runs == 1);
    CHECK(capture.reports().empty());
  }
}

TEST_CASE("a call made inside a lane's own run() on a loop is not reported a second time",
          "[serial_lane][diagnostics]") {
  test_support::diagnostics_capture capture;
  smartasync::blocking_pool pool{1};
  smartasync::serial_lane lane{pool, {.name = "nested"}};
  asio::io_context ioc;
  int runs = 0;
  on_loop(ioc, [&] { lane.run([&] { ++runs; lane.run([&] { ++runs; }); }); });
  CHECK(runs == 2);
  CHECK(capture.reports().size() == 1);
}

TEST_CASE("keyed_lanes' lanes carry its name and loop policy and reports name where it was made",
          "[serial_lane][diagnostics]") {
  test_support::diagnostics_capture capture;
  smartasync::blocking_pool pool{1};
  const auto made_on = __LINE__ + 1;
  smartasync::keyed_lanes<int> accounts{pool, {.name = "accounts"}};
  smartasync::keyed_lanes<int> strict{pool, {.on_loop = smartasync::loop_call_policy::strict}};
  asio::io_context ioc;
  int runs = 0;
  std::uint_least32_t called_on = 0;
  smartasync::error_code refused;
  on_loop(ioc, [&] {
    called_on = __LINE__; accounts[7].run([&] { ++runs; });
    refused = test_support::code_thrown_by([&] { strict[7].run([&] { ++runs; }); });
  });
  CHECK(runs == 1);
  CHECK(refused == smartasync::error::blocking_call_on_loop);
  const auto reports = capture.reports();
  REQUIRE(reports.size() == 1);
  CHECK(reports[0].name == "accounts");
  CHECK(reports[0].where.line() == called_on);
  CHECK(reports[0].created_at.line() == made_on);
}

TEST_CASE("a thread-affine lane's run() on an event loop is reported by default and still runs "
          "on the lane's thread",
          "[serial_lane][thread_affine][diagnostics]") {
  test_support::diagnostics_capture capture;
  const auto made_on = __LINE__ + 1;
  smartasync::thread_affine_lane lane;
  CHECK(capture.reports().empty()); // starting the lane's thread is not a reported call
  asio::io_context ioc;
  std::thread::id ran_on;
  std::uint_least32_t called_on = 0;
  on_loop(ioc, [&] { called_on = __LINE__; ran_on = lane.run([] { return std::this_thread::get_id(); }); });
  CHECK(ran_on == lane.thread_id());
  const auto reports = capture.reports();
  REQUIRE(reports.size() == 1);
  CHECK(reports[0].kind == smartasync::diagnostic_kind::blocking_call_on_loop);
  CHECK(reports[0].where.line() == called_on);
  CHECK(reports[0].created_at.line() == made_on);
  CHECK(mentions(reports[0].message, "thread_affine_lane::run()"));
  CHECK(mentions(reports[0].message, at_line(called_on)));
}

TEST_CASE("a thread-affine lane's run() on an event loop follows the lane's loop_call_policy",
          "[serial_lane][thread_affine][diagnostics]") {
  test_support::diagnostics_capture capture;
  asio::io_context ioc;
  std::atomic<int> runs{0};
  std::uint_least32_t called_on = 0;

  SECTION("report: names the lane and the call") {
    smartasync::thread_affine_lane lane{{.name = "gui"}};
    on_loop(ioc, [&] { called_on = __LINE__; lane.run([&] { ++runs; }); });
    CHECK(runs == 1);
    const auto reports = capture.reports();
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].name == "gui");
    CHECK(mentions(reports[0].message, "thread_affine_lane::run() on lane 'gui'"));
    CHECK(mentions(reports[0].message, at_line(called_on)));
  }
  SECTION("strict: throws blocking_call_on_loop and queues nothing") {
    smartasync::thread_affine_lane lane{{.name = "gui", .on_loop = smartasync::loop_call_policy::strict}};
    const auto submitted = lane.pool().stats().submitted;
    std::string message;
    smartasync::error_code code;
    on_loop(ioc, [&] {
      try {
        called_on = __LINE__; lane.run([&] { ++runs; });
      } catch (const smartasync::system_error& e) {
        code = e.code();
        message = e.what();
      }
    });
    CHECK(code == smartasync::error::blocking_call_on_loop);
    CHECK(runs == 0);
    CHECK(lane.pool().stats().submitted == submitted);
    CHECK(mentions(message, "'gui'"));
    CHECK(mentions(message, at_line(called_on)));
    CHECK(capture.reports().empty());
  }
  SECTION("silent: runs, no report") {
    smartasync::thread_affine_lane lane{{.on_loop = smartasync::loop_call_policy::silent}};
    on_loop(ioc, [&] { lane.run([&] { ++runs; }); });
    CHECK(runs == 1);
    CHECK(capture.reports().empty());
  }
  SECTION("a context declared with allow_blocking(): runs, no report") {
    smartasync::thread_affine_lane lane{{.on_loop = smartasync::loop_call_policy::strict}};
    smartasync::allow_blocking(ioc);
    on_loop(ioc, [&] { lane.run([&] { ++runs; }); });
    CHECK(runs == 1);
    CHECK(capture.reports().empty());
  }
}

TEST_CASE("a lane call running past its pool's slow-call threshold is reported, naming the "
          "lane, and counted by the pool",
          "[serial_lane][slow_call]") {
  using namespace std::chrono_literals;
  test_support::diagnostics_capture capture;
  smartasync::pool_options options;
  options.threads = 1;
  options.report_slow_call_after = 5ms;
  smartasync::blocking_pool pool{options};
  smartasync::serial_lane lane{pool, {.name = "ledger writes"}};
  gate release;
  auto done = smartasync::async_offload(lane, [&] { release.wait(); }, asio::use_future);
  const bool seen = test_support::eventually([&] { return pool.stats().slow_calls > 0; });
  release.open();
  REQUIRE(seen);
  done.get();
  CHECK(pool.stats().slow_calls == 1);
  auto reports = capture.reports();
  std::erase_if(reports, [](const smartasync::diagnostic& d) {
    return d.kind != smartasync::diagnostic_kind::slow_call;
  });
  REQUIRE(reports.size() == 1);
  CHECK(mentions(reports[0].message, "on serial_lane 'ledger writes' (made at "));
  CHECK(mentions(reports[0].message, "serial_lane.test.cpp"));
}
