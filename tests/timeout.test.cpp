// Test that the header is self-contained.
#include "smartasync/timeout.hpp"

#include "common/test_support.hpp"

#include "smartasync/offload.hpp"
#include "smartasync/smart_async.hpp"

#include "common/catch.hpp"

#include "common/asio_flavour.hpp"

#include SMARTASYNC_ASIO_HEADER(bind_cancellation_slot.hpp)
#include SMARTASYNC_ASIO_HEADER(cancellation_signal.hpp)
#include SMARTASYNC_ASIO_HEADER(co_spawn.hpp)
#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(post.hpp)
#include SMARTASYNC_ASIO_HEADER(steady_timer.hpp)
#include SMARTASYNC_ASIO_HEADER(this_coro.hpp)
#include SMARTASYNC_ASIO_HEADER(use_awaitable.hpp)
#include SMARTASYNC_ASIO_HEADER(use_future.hpp)

#include <atomic>
#include <chrono>
#include <stop_token>
#include <thread>

using namespace std::chrono_literals;
using test_support::deferred;
using test_support::code_of;
using test_support::run;

namespace {

struct custom_error {
  int code;
};

// Sleeps `d` on a timer; records whether it saw operation_aborted.
asio::awaitable<int> sleep_then(int value, std::chrono::steady_clock::duration d,
                                bool* aborted = nullptr) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  try {
    co_await timer.async_wait(asio::use_awaitable);
  } catch (const smartasync::system_error& e) {
    if (aborted && e.code() == asio::error::operation_aborted)
      *aborted = true;
    throw;
  }
  co_return value;
}

template <typename Awaitable>
smartasync::error_code code_of_await(Awaitable a) {
  try {
    run(std::move(a));
  } catch (...) {
    return code_of(std::current_exception());
  }
  return {};
}

} // namespace

TEST_CASE("with_timeout returns the result when the operation is fast enough", "[timeout]") {
  auto body = []() -> asio::awaitable<int> {
    co_return co_await smartasync::with_timeout(sleep_then(7, 0ms), 1h);
  };
  CHECK(run(body()) == 7);

  auto void_body = []() -> asio::awaitable<void> {
    asio::steady_timer timer(co_await asio::this_coro::executor, 1ms);
    co_await smartasync::with_timeout(timer.async_wait(deferred), 1h);
  };
  CHECK_NOTHROW(run(void_body()));
}

TEST_CASE("with_timeout cancels a slow operation and throws error::timeout", "[timeout]") {
  bool aborted = false;
  auto body = [&]() -> asio::awaitable<int> {
    co_return co_await smartasync::with_timeout(sleep_then(1, 1h, &aborted), 5ms);
  };
  smartasync::error_code code;
  try {
    run(body());
  } catch (const smartasync::system_error& e) {
    code = e.code();
  }
  CHECK(code == smartasync::error::timeout);
  CHECK(code != asio::error::operation_aborted);
  // The operation itself saw the cancellation, and had finished by the time we got the error.
  CHECK(aborted);
}

TEST_CASE("with_timeout works on deferred operations", "[timeout]") {
  auto body = []() -> asio::awaitable<void> {
    asio::steady_timer timer(co_await asio::this_coro::executor, 1h);
    co_await smartasync::with_timeout(timer.async_wait(deferred), 5ms);
  };
  CHECK(code_of_await(body()) == smartasync::error::timeout);
}

TEST_CASE("with_timeout passes the operation's own errors through unchanged", "[timeout]") {
  // A one-hour deadline: if with_timeout waited for the timer after a failure, the test would
  // hit its 60 s limit instead of passing.
  auto fails = []() -> asio::awaitable<int> {
    co_await sleep_then(0, 1ms);
    throw custom_error{5};
  };
  auto body = [&]() -> asio::awaitable<int> {
    co_return co_await smartasync::with_timeout(fails(), 1h);
  };
  try {
    run(body());
    FAIL("no exception");
  } catch (const custom_error& e) {
    CHECK(e.code == 5);
  }

  auto refused = []() -> asio::awaitable<void> {
    throw smartasync::system_error(make_error_code(std::errc::connection_refused));
    co_return;
  };
  auto body2 = [&]() -> asio::awaitable<void> {
    co_await smartasync::with_timeout(refused(), 1h);
  };
  CHECK(code_of_await(body2()) == std::errc::connection_refused);
}

TEST_CASE("a refusal completing after the deadline is thrown as the refusal and not as a timeout",
          "[timeout]") {
  // The operation ignores the cancellation and only then reports that it never ran, as a call
  // refused by a stopped or full pool does when its completion is delivered after the timer's.
  for (const auto refusal : {smartasync::error::pool_stopped, smartasync::error::queue_full,
                             smartasync::error::deadline_expired}) {
    auto refused_late = [refusal]() -> asio::awaitable<int> {
      co_await asio::this_coro::reset_cancellation_state(
          [](asio::cancellation_type) { return asio::cancellation_type::none; });
      co_await sleep_then(0, 20ms); // long after the deadline below, which fires first
      throw smartasync::system_error(make_error_code(refusal));
    };
    auto body = [&]() -> asio::awaitable<int> {
      co_return co_await smartasync::with_timeout(refused_late(), 0ms);
    };
    CHECK(code_of_await(body()) == refusal);
  }
  // Any other error after the deadline is what a cancelled operation reports: a time-out.
  auto aborted_late = []() -> asio::awaitable<int> {
    co_await asio::this_coro::reset_cancellation_state(
        [](asio::cancellation_type) { return asio::cancellation_type::none; });
    co_await sleep_then(0, 20ms);
    throw smartasync::system_error(make_error_code(asio::error::operation_aborted));
  };
  auto body = [&]() -> asio::awaitable<int> {
    co_return co_await smartasync::with_timeout(aborted_late(), 0ms);
  };
  CHECK(code_of_await(body()) == smartasync::error::timeout);
}

TEST_CASE("cancelling the caller is operation_aborted, not a timeout", "[timeout][cancellation]") {
  asio::io_context io;
  bool aborted = false;
  auto body = [&]() -> asio::awaitable<int> {
    co_return co_await smartasync::with_timeout(sleep_then(1, 1h, &aborted), 1h);
  };
  const auto outcome = test_support::run_then_cancel(io, body());
  CHECK(code_of(outcome) == asio::error::operation_aborted);
  CHECK(aborted);
}

TEST_CASE("with_timeout cancels a running offloaded call through its stop_token",
          "[timeout][offload]") {
  smartasync::blocking_pool pool{1, 16};
  std::atomic<bool> stop_seen{false};
  auto body = [&]() -> asio::awaitable<int> {
    co_return co_await smartasync::with_timeout(
        smartasync::async_offload(
            pool,
            [&](std::stop_token stop) {
              while (!stop.stop_requested())
                std::this_thread::sleep_for(1ms);
              stop_seen = true;
              return 1;
            },
            deferred),
        // The call must be running at the deadline (queued, it would never start): long
        // enough for an idle worker to take it even on a loaded sanitizer run.
        500ms);
  };
  CHECK(code_of_await(body()) == smartasync::error::timeout);
  // The worker gets the stop request; wait for it (bounded by the test's timeout, not asserted).
  while (!stop_seen)
    std::this_thread::sleep_for(1ms);
  CHECK(stop_seen);
}

TEST_CASE("with_timeout removes a queued offloaded call that never started",
          "[timeout][offload]") {
  smartasync::blocking_pool pool{1, 16};
  std::atomic<bool> release{false};
  std::atomic<bool> blocker_running{false};
  std::atomic<bool> queued_ran{false};
  // Occupy the only worker so the next call stays queued.
  auto blocker = smartasync::async_offload(
      pool,
      [&] {
        blocker_running = true;
        while (!release)
          std::this_thread::sleep_for(1ms);
      },
      asio::use_future);
  while (!blocker_running)
    std::this_thread::sleep_for(1ms);

  auto body = [&]() -> asio::awaitable<void> {
    co_await smartasync::with_timeout(
        smartasync::async_offload(pool, [&] { queued_ran = true; }, deferred), 5ms);
  };
  // Still queued at the deadline: it never ran, and says so (not error::timeout, which means
  // the call ran and overran; see deadline.test.cpp).
  CHECK(code_of_await(body()) == smartasync::error::deadline_expired);
  release = true;
  blocker.get();
  pool.shutdown(smartasync::shutdown_mode::drain);
  CHECK_FALSE(queued_ran);
  CHECK(pool.stats().expired == 1);
}

TEST_CASE("with_timeout composes with a smart_async wrapper's async form", "[timeout][offload]") {
  smartasync::blocking_pool pool{2, 16};
  auto twice = smartasync::smart_async(pool, [](int x) { return x * 2; });
  auto slow = smartasync::smart_async(pool, [](std::stop_token stop, int x) {
    while (!stop.stop_requested())
      std::this_thread::sleep_for(1ms);
    return x;
  });
  auto body = [&]() -> asio::awaitable<int> {
    const int fast = co_await smartasync::with_timeout(twice.async_call(21, deferred), 1h);
    try {
      co_await smartasync::with_timeout(slow.async_call(1, deferred), 500ms); // running by then
    } catch (const smartasync::system_error& e) {
      if (e.code() == smartasync::error::timeout)
        co_return fast;
    }
    co_return -1;
  };
  CHECK(run(body()) == 42);
}

// Awaitables are routinely made first and awaited later (a vector of tasks, a co_spawn later):
// the time between the two must not count against the timeout.
TEST_CASE("with_timeout starts its clock when awaited, not when it is made", "[timeout][offload]") {
  smartasync::blocking_pool pool{1, 16};
  auto made_then_awaited_later = [&](auto bounded) -> asio::awaitable<int> {
    // Longer than the timeout passes between making it and awaiting it.
    asio::steady_timer later(co_await asio::this_coro::executor, 1200ms);
    co_await later.async_wait(asio::use_awaitable);
    co_return co_await std::move(bounded);
  };
  SECTION("a deferred operation") {
    CHECK(run(made_then_awaited_later(smartasync::with_timeout(
              smartasync::async_offload(pool, [] { return 7; }, deferred), 1s))) == 7);
  }
  SECTION("an awaitable") {
    CHECK(run(made_then_awaited_later(
              smartasync::with_timeout(smartasync::async_offload(pool, [] { return 7; }), 1s))) == 7);
  }
  CHECK(pool.stats().expired == 0);
  CHECK(pool.stats().cancelled == 0);
}

// One meaning whatever the spelling: a call still queued at the deadline never starts, throws
// deadline_expired and is counted as expired, whether with_timeout got an awaitable (which it
// cannot give the deadline to) or a deferred operation (which it launches with the deadline).
TEST_CASE("with_timeout on a call that never started means the same for an awaitable and a "
          "deferred operation",
          "[timeout][offload]") {
  smartasync::blocking_pool pool{1, 16};
  test_support::gate hold;
  std::atomic<int> ran{0};
  // Occupies the only worker, so the bounded call stays queued.
  auto blocker = smartasync::async_offload(pool, [&] { hold.wait(); }, asio::use_future);
  auto call = smartasync::smart_async(pool, [&](int x) {
    ++ran;
    return x;
  });
  smartasync::error_code outcome;
  SECTION("a wrapper's awaitable") {
    outcome = code_of_await(smartasync::with_timeout(call.async_call(1), 20ms));
  }
  SECTION("a wrapper's deferred operation") {
    outcome = code_of_await(smartasync::with_timeout(call.async_call(1, deferred), 20ms));
  }
  SECTION("async_offload's awaitable") {
    outcome = code_of_await(
        smartasync::with_timeout(smartasync::async_offload(pool, [&] { return call(1); }), 20ms));
  }
  SECTION("async_offload's deferred operation") {
    outcome = code_of_await(smartasync::with_timeout(
        smartasync::async_offload(pool, [&] { return call(1); }, deferred), 20ms));
  }
  hold.open();
  blocker.get();
  pool.shutdown(smartasync::shutdown_mode::drain);
  CHECK(outcome == smartasync::error::deadline_expired);
  CHECK(ran == 0);
  const auto stats = pool.stats();
  CHECK(stats.expired == 1);
  CHECK(stats.cancelled == 0);
  CHECK(stats.timed_out == 0);
}

TEST_CASE("with_timeout on a running call that overruns means the same for an awaitable and a "
          "deferred operation",
          "[timeout][offload]") {
  smartasync::blocking_pool pool{1, 16};
  auto call = smartasync::smart_async(pool, [](std::stop_token stop, int x) {
    test_support::wait_for_stop(stop);
    return x;
  });
  smartasync::error_code outcome;
  // Long enough for an idle worker to pick the call up, even in a sanitizer build on a loaded
  // machine: the call must be running when the deadline passes.
  SECTION("an awaitable") {
    outcome = code_of_await(smartasync::with_timeout(call.async_call(1), 500ms));
  }
  SECTION("a deferred operation") {
    outcome = code_of_await(smartasync::with_timeout(call.async_call(1, deferred), 500ms));
  }
  pool.shutdown(smartasync::shutdown_mode::drain);
  CHECK(outcome == smartasync::error::timeout);
  const auto stats = pool.stats();
  CHECK(stats.timed_out == 1);
  CHECK(stats.cancelled == 0);
  CHECK(stats.expired == 0);
}
