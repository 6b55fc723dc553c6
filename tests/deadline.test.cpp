// Test that the header is self-contained.
#include "smartasync/deadline.hpp"

#include "common/test_support.hpp"

#include "smartasync/offload.hpp"
#include "smartasync/serial_lane.hpp"
#include "smartasync/timeout.hpp"

#include "common/catch.hpp"

#include "common/asio_flavour.hpp"

#include SMARTASYNC_ASIO_HEADER(bind_cancellation_slot.hpp)
#include SMARTASYNC_ASIO_HEADER(bind_executor.hpp)
#include SMARTASYNC_ASIO_HEADER(cancellation_signal.hpp)
#include SMARTASYNC_ASIO_HEADER(co_spawn.hpp)
#include SMARTASYNC_ASIO_HEADER(detached.hpp)
#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(steady_timer.hpp)
#include SMARTASYNC_ASIO_HEADER(this_coro.hpp)
#include SMARTASYNC_ASIO_HEADER(use_awaitable.hpp)
#include SMARTASYNC_ASIO_HEADER(use_future.hpp)

#include <atomic>
#include <chrono>
#include <exception>
#include <future>
#include <stop_token>
#include <string>
#include <thread>

#include <fmt/format.h>

using namespace std::chrono_literals;
using test_support::code_of;
using test_support::deferred;
using test_support::gate;
using test_support::run;
using clock_type = std::chrono::steady_clock;

namespace {

template <typename Future>
smartasync::error_code code_of_future(Future& f) {
  try {
    f.get();
  } catch (...) {
    return code_of(std::current_exception());
  }
  return {};
}

// A pool of one worker, held busy by a call until release(): what is submitted meanwhile stays
// queued. (The gates are declared first so that they outlive the pool's worker.)
struct held_pool {
  gate hold, started;
  smartasync::blocking_pool pool{1, 16};
  std::future<void> holder =
      smartasync::async_offload(pool, [this] { started.open(); hold.wait(); }, asio::use_future);

  held_pool() { started.wait(); }
  held_pool(const held_pool&) = delete;
  held_pool& operator=(const held_pool&) = delete;
  ~held_pool() { hold.open(); } // a failed test still lets the pool join its worker
  void release() {
    hold.open();
    holder.get();
  }
};

} // namespace

TEST_CASE("a call whose deadline passed while it was queued never starts: deadline_expired") {
  smartasync::blocking_pool pool{1, 16};
  gate hold;
  std::atomic<bool> ran{false};
  auto blocker = smartasync::async_offload(pool, [&] { hold.wait(); }, asio::use_future);
  auto late = smartasync::async_offload(
      pool, [&] { ran = true; return 1; },
      smartasync::with_deadline(clock_type::now() - 1ms, asio::use_future));
  hold.open();
  blocker.get();
  CHECK(code_of_future(late) == smartasync::error::deadline_expired);
  CHECK_FALSE(ran);
  const auto stats = pool.stats();
  CHECK(stats.expired == 1);
  CHECK(stats.completed == 1);
  CHECK(stats.cancelled == 0);
  CHECK(stats.running == 0);
  CHECK(fmt::format("{}", stats).find("expired=1") != std::string::npos);
}

TEST_CASE("a call with a deadline still ahead runs and can read the time it has left") {
  smartasync::blocking_pool pool{1, 16};
  const auto deadline = clock_type::now() + 1h;
  const auto [seen, left] = smartasync::async_offload(
      pool, [] { return std::pair{smartasync::this_call::deadline(), smartasync::this_call::time_left()}; },
      smartasync::with_deadline(deadline, asio::use_future)).get();
  CHECK(seen == deadline);
  CHECK(left > 0s);
  CHECK(left <= 1h);
  // The next call on the same worker has none: the deadline was the call's, not the thread's.
  const auto after = smartasync::async_offload(pool, [] { return smartasync::this_call::deadline(); },
                                               asio::use_future).get();
  CHECK(after == clock_type::time_point::max());
  CHECK(smartasync::this_call::time_left() == clock_type::duration::max());
}

TEST_CASE("with_timeout: a call still queued at the deadline completes with deadline_expired, "
          "not timeout, and never runs") {
  smartasync::blocking_pool pool{1, 16};
  gate hold;
  std::atomic<bool> ran{false};
  auto blocker = smartasync::async_offload(pool, [&] { hold.wait(); }, asio::use_future);
  smartasync::error_code outcome;
  try {
    run([&]() -> asio::awaitable<void> {
      co_await smartasync::with_timeout(
          smartasync::async_offload(pool, [&] { ran = true; }, deferred), 5ms);
    }());
  } catch (...) {
    outcome = code_of(std::current_exception());
  }
  hold.open();
  blocker.get();
  CHECK(outcome == smartasync::error::deadline_expired);
  CHECK_FALSE(ran);
  CHECK(pool.stats().expired == 1);
  CHECK(pool.stats().timed_out == 0);
}

TEST_CASE("with_timeout: a running call that overruns is stopped and counted as timed out") {
  smartasync::blocking_pool pool{1, 16};
  std::atomic<bool> saw_deadline{false};
  smartasync::error_code outcome;
  try {
    run([&]() -> asio::awaitable<void> {
      co_await smartasync::with_timeout(
          smartasync::async_offload(pool, [&](std::stop_token stop) {
            saw_deadline = smartasync::this_call::deadline() != clock_type::time_point::max();
            test_support::wait_for_stop(stop);
          }, deferred),
          // Long enough for an idle worker to pick the call up, even in a sanitizer build on a
          // loaded machine: the call must be running when the deadline passes.
          500ms);
    }());
  } catch (...) {
    outcome = code_of(std::current_exception());
  }
  CHECK(outcome == smartasync::error::timeout);
  CHECK(saw_deadline);
  const auto stats = pool.stats();
  CHECK(stats.timed_out == 1);
  CHECK(stats.cancelled == 0);
  CHECK(stats.expired == 0);
}

TEST_CASE("with_deadline works with every kind of token: callback, coroutine, deferred") {
  smartasync::blocking_pool pool{1, 16};
  asio::io_context io;
  int by_callback = 0;
  smartasync::async_offload(pool, [] { return 1; },
                            smartasync::with_deadline(1h, asio::bind_executor(io, [&](std::exception_ptr e, int v) {
                              if (!e)
                                by_callback = v;
                            })));
  io.run();
  io.restart();
  CHECK(by_callback == 1);
  const int by_coroutine = run(io, [&]() -> asio::awaitable<int> {
    co_return co_await smartasync::async_offload(
        pool, [] { return 2; }, smartasync::with_deadline(1h, asio::use_awaitable));
  }());
  CHECK(by_coroutine == 2);
  const int by_deferred = run(io, [&]() -> asio::awaitable<int> {
    auto op = smartasync::async_offload(pool, [] { return smartasync::this_call::time_left() > 0s ? 3 : 0; },
                                        smartasync::with_deadline(1h, deferred));
    co_return co_await std::move(op)(asio::use_awaitable);
  }());
  CHECK(by_deferred == 3);
  // The deadline stayed with the operation: nothing initiated afterwards on this thread has one.
  CHECK(smartasync::async_offload(pool, [] { return smartasync::this_call::deadline(); },
                                  asio::use_future).get() == clock_type::time_point::max());
}

TEST_CASE("a with_deadline budget starts at the initiation, not when the token is made") {
  smartasync::blocking_pool pool{1, 16};
  const int value = run([&]() -> asio::awaitable<int> {
    auto op = smartasync::async_offload(pool, [] { return 5; }, smartasync::with_deadline(1s, deferred));
    // Longer than the budget passes before the operation is launched.
    asio::steady_timer later(co_await asio::this_coro::executor, 1200ms);
    co_await later.async_wait(asio::use_awaitable);
    co_return co_await std::move(op)(asio::use_awaitable);
  }());
  CHECK(value == 5);
  CHECK(pool.stats().expired == 0);
}

TEST_CASE("a lane call whose deadline passed while it waited for the lane's turn never starts") {
  smartasync::blocking_pool pool{2, 16};
  smartasync::serial_lane lane{pool};
  gate hold;
  std::atomic<bool> ran{false};
  auto first = smartasync::async_offload(lane, [&] { hold.wait(); }, asio::use_future);
  auto late = smartasync::async_offload(
      lane, [&] { ran = true; }, smartasync::with_deadline(clock_type::now() - 1ms, asio::use_future));
  auto after = smartasync::async_offload(lane, [] { return 3; }, asio::use_future);
  hold.open();
  first.get();
  CHECK(code_of_future(late) == smartasync::error::deadline_expired);
  CHECK(after.get() == 3);
  CHECK_FALSE(ran);
  CHECK(pool.stats().expired == 1);
}

TEST_CASE("shutdown(cancel) completes a queued call whose deadline passed with deadline_expired") {
  held_pool held;
  auto& pool = held.pool;
  std::atomic<bool> ran{false};
  auto late = smartasync::async_offload(
      pool, [&] { ran = true; return 1; },
      smartasync::with_deadline(clock_type::now() - 1ms, asio::use_future));
  auto in_time = smartasync::async_offload(
      pool, [&] { ran = true; return 2; },
      smartasync::with_deadline(clock_type::now() + 1h, asio::use_future));
  std::thread releaser([&] {
    in_time.wait(); // shutdown has completed the queued calls
    held.release();
  });
  pool.shutdown(smartasync::shutdown_mode::cancel);
  releaser.join();
  CHECK(code_of_future(late) == smartasync::error::deadline_expired);
  CHECK(code_of_future(in_time) == asio::error::operation_aborted);
  CHECK_FALSE(ran);
  const auto stats = pool.stats();
  CHECK(stats.expired == 1);
  CHECK(stats.cancelled == 1);
  CHECK(stats.completed == 1);
}

TEST_CASE("a destroyed lane completes a waiting call whose deadline passed with deadline_expired") {
  smartasync::blocking_pool pool{2, 16};
  gate hold, started;
  std::atomic<bool> ran{false};
  std::future<void> first;
  std::future<int> late, in_time;
  std::thread opener;
  {
    smartasync::serial_lane lane{pool};
    first = smartasync::async_offload(lane, [&] { started.open(); hold.wait(); }, asio::use_future);
    started.wait();
    late = smartasync::async_offload(
        lane, [&] { ran = true; return 1; },
        smartasync::with_deadline(clock_type::now() - 1ms, asio::use_future));
    in_time = smartasync::async_offload(
        lane, [&] { ran = true; return 2; },
        smartasync::with_deadline(clock_type::now() + 1h, asio::use_future));
    opener = std::thread([&] {
      in_time.wait(); // the destructor has completed the calls waiting for the turn
      hold.open();    // and now waits for the first to return
    });
  }
  opener.join();
  first.get();
  CHECK(code_of_future(late) == smartasync::error::deadline_expired);
  CHECK(code_of_future(in_time) == asio::error::operation_aborted);
  CHECK_FALSE(ran);
}

TEST_CASE("code after a with_timeout that finished at its deadline cancels as usual") {
  // The bounded operation completes first, but the timer has already fired and its handler
  // runs next: the group completes there and resumes the coroutine inline. What the coroutine
  // cancels then has nothing to do with that deadline.
  held_pool held;
  auto& pool = held.pool;
  asio::cancellation_signal cancel_queued;
  auto queued = smartasync::async_offload(
      pool, [] { return 2; }, asio::bind_cancellation_slot(cancel_queued.slot(), asio::use_future));
  asio::io_context io;
  int value = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        asio::steady_timer early(ex, 500us); // expires before with_timeout's deadline
        auto finishes_at_the_deadline = [&]() -> asio::awaitable<int> {
          // Both timers expire while the loop is held here; the reactor then queues their
          // handlers in expiry order: this wait's first, the deadline's next.
          std::this_thread::sleep_for(5ms);
          co_await early.async_wait(asio::use_awaitable);
          co_return 1;
        };
        value = co_await smartasync::with_timeout(finishes_at_the_deadline(), 1ms);
        cancel_queued.emit(asio::cancellation_type::terminal);
      },
      asio::detached);
  io.run();
  held.release();
  CHECK(value == 1);
  CHECK(code_of_future(queued) == asio::error::operation_aborted);
  const auto stats = pool.stats();
  CHECK(stats.cancelled == 1);
  CHECK(stats.expired == 0);
}

TEST_CASE("a call refused by a shutdown before its deadline but heard of after it is deadline_expired") {
  // shutdown(cancel) runs on its own thread and removes the call while its deadline is ahead;
  // the caller's loop only hears of it once the deadline has passed (with_timeout's timer on
  // that loop may have fired first). It never ran, and its deadline came first as the caller
  // saw it: deadline_expired, which with_timeout passes on, never a time-out.
  held_pool held;
  auto& pool = held.pool;
  asio::io_context io;
  smartasync::error_code code;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        try {
          co_await smartasync::with_timeout(
              smartasync::async_offload(pool, [] { return 1; }, deferred), 20ms);
        } catch (...) {
          code = code_of(std::current_exception());
        }
      },
      asio::detached);
  while (pool.stats().queued == 0) // the coroutine has submitted its call
    io.run_one();
  std::thread stopper([&] { pool.shutdown(smartasync::shutdown_mode::cancel); });
  while (pool.stats().queued != 0) // the shutdown removed it, before its deadline
    std::this_thread::yield();
  std::this_thread::sleep_for(40ms); // the deadline passes before the loop runs again
  held.release();
  stopper.join();
  io.run();
  CHECK(code == smartasync::error::deadline_expired);
  CHECK(pool.stats().cancelled == 1); // counted when it was removed, its deadline still ahead
}
